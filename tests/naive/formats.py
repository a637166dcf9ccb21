"""Formats: the strict JSON line check of kernels/jsonscan.py."""
from __future__ import annotations


def naive_strict_json_line(line: str, classes: dict) -> bool:
    """Reference for kernels/jsonscan.py: the line is one JSON object (standard JSON: no NaN,
    no repeated top-level key) whose fields named in ``classes`` hold exactly: 0 an integer or
    a list of integers, 1 a number, 2 a string or an integer (booleans are never numbers)."""
    import json

    def no_constants(name):
        raise ValueError(name)
    objects = []  # key/value pairs of each object, innermost first: the line's own object last

    def keep_pairs(pairs):
        objects.append(pairs)
        return dict(pairs)
    try:
        rec = json.loads(line, parse_constant=no_constants, object_pairs_hook=keep_pairs)
    except ValueError:
        return False
    if isinstance(rec, dict) and len(rec) != len(objects[-1]):
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
        if cls == 2 and not (isinstance(v, str) or is_int(v)):
            return False
    return True
