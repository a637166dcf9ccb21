"""Formats: the strict JSON line check of kernels/jsonscan.py."""
from __future__ import annotations


def naive_strict_json_line(line: str, classes: dict) -> bool:
    """Reference for kernels/jsonscan.py: the line is one JSON object (standard JSON: no NaN)
    whose fields named in ``classes`` hold exactly: 0 an integer or a list of integers, 1 a
    number, 2 a string or a number (booleans are never numbers)."""
    import json

    def no_constants(name):
        raise ValueError(name)
    try:
        rec = json.loads(line, parse_constant=no_constants)
    except ValueError:
        return False
    if not isinstance(rec, dict):
        return False

    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)

    def is_num(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    for key, cls in classes.items():
        if key not in rec:
            continue
        v = rec[key]
        if cls == 0 and not (is_int(v) or (isinstance(v, list) and all(is_int(x) for x in v))):
            return False
        if cls == 1 and not is_num(v):
            return False
        if cls == 2 and not (isinstance(v, str) or is_num(v)):
            return False
    return True
