"""Strict JSON (docs/data-model.md, "Valid values"): Python's json module reads NaN/Infinity
(not JSON) and keeps the last of repeated keys; here both make a bad record, as the fast
path's scan (kernels/jsonscan.py) flags them."""
from __future__ import annotations

import json

from .common import BadLine


class _Constant:
    """A NaN, Infinity or -Infinity literal, kept for the message naming its field."""
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


class _Repeated(dict):
    """An object in which a key appears more than once (``repeated``: the first such key)."""
    repeated = ""


def _object(pairs: list) -> dict:
    rec = dict(pairs)
    if len(rec) == len(pairs):
        return rec
    seen: set = set()
    for key, _ in pairs:
        if key in seen:
            break
        seen.add(key)
    out = _Repeated(rec)
    out.repeated = key
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_Constant)


def strict_json(text: str):
    """Parse JSON text; repeated keys and NaN/Infinity are left for ``checked_record`` to name.
    Raises json.JSONDecodeError, or BadLine for a number too long or nesting too deep."""
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as err:  # int digit limit, deep nesting
        raise BadLine(f"malformed JSON ({str(err).splitlines()[0]:.80})", None,
                      "numbers must have at most 4300 digits and objects be nested at most ~900 deep") from None


def _holds_constant(value) -> bool:
    if isinstance(value, _Constant):
        return True
    if isinstance(value, list):
        return any(_holds_constant(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_constant(v) for v in value.values())
    return False


def checked_record(rec, constants: bool = True) -> dict:
    """A parsed record that is one JSON object without repeated keys or NaN/Infinity values
    (``constants``: whether the text may hold such literals at all; skips the walk if not)."""
    if not isinstance(rec, dict):
        raise BadLine(f"expected a JSON object, got a JSON {type(rec).__name__}", None,
                      "each record must be one JSON object such as {\"timestamp\": 0, ...}")
    if isinstance(rec, _Repeated):
        raise BadLine(f"key '{rec.repeated}' appears more than once in the object", rec.repeated,
                      "write each field once per record (readers disagree on which copy counts)")
    if constants:
        for key, value in rec.items():
            if _holds_constant(value):
                what = value.name if isinstance(value, _Constant) else "NaN or Infinity"
                raise BadLine(f"field '{key}' is {what}, which is not a JSON number", key,
                              "JSON has no NaN or Infinity; write a finite number")
    return rec


def may_hold_constants(text: str) -> bool:
    return "NaN" in text or "Infinity" in text


def json_object(text: bytes) -> dict:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise BadLine("line is not UTF-8 text", None, "the file may be binary or in another encoding") from None
    try:
        rec = strict_json(decoded)
    except json.JSONDecodeError as err:
        raise BadLine(f"malformed JSON ({err.msg} at column {err.colno})", None,
                      "each line must be one complete JSON object") from None
    return checked_record(rec, may_hold_constants(decoded))
