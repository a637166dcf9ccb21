"""kernels/jsonl_extract.py against Python's json module: for lines the strict scan passes, the
columns it reads equal json.loads' values exactly (floats bit for bit, -0.0 included), it
declines (None) only the values it says it declines, and never the common ones."""
from __future__ import annotations

import json
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kvctrace.kernels import jsonl_extract as je
from kvctrace.kernels import jsonscan

FIELDS = {"i": je.INT, "l": je.INT_LIST, "f": je.FLOAT, "s": je.STRING}
SCAN = {"i": jsonscan.INT, "l": jsonscan.INT, "f": jsonscan.NUMBER, "s": jsonscan.LABEL}

INT = st.integers(-(1 << 63), (1 << 63) - 1) | st.integers(-50, 50) | st.integers(-(1 << 70), 1 << 70)
PLAIN_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\'), max_size=6)


@st.composite
def number_text(draw) -> str:
    """A JSON number as people write them: integers, decimals, exponents, signed zeros."""
    kind = draw(st.sampled_from(["int", "repr", "fixed", "exp", "zero"]))
    if kind == "int":
        return str(draw(st.integers(-(10 ** 20), 10 ** 20)))
    if kind == "zero":
        return draw(st.sampled_from(["0", "-0", "0.0", "-0.0", "0e5", "-0.000e-3"]))
    x = draw(st.floats(allow_nan=False, allow_infinity=False))
    if kind == "repr":
        return repr(x)
    if kind == "fixed":
        return f"{x:.{draw(st.integers(0, 9))}f}" if abs(x) < 1e12 else repr(x)
    return f"{x:.{draw(st.integers(0, 16))}e}"


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def exactly_readable(number: str) -> bool:
    """Whether the reader must read this number: one exact operation gives its value."""
    mant, _, exp = number.lower().partition("e")
    digits = mant.lstrip("-").replace(".", "").lstrip("0")
    power = (int(exp) if exp else 0) - len(mant.partition(".")[2])
    return len(digits) <= je.MAX_EXACT_DIGITS and (not digits or abs(power) <= je.MAX_EXACT_POWER)


def in_int64(v: int) -> bool:
    return -(1 << 63) <= v < (1 << 63)


@st.composite
def line(draw) -> tuple[str, dict, bool]:
    """One JSON object line with some of the fields (in any order, any spacing) and an
    unknown one: (text, the fields as json.loads reads them, whether the reader must decline
    one of its values)."""
    parts, want, declines = [], {}, False
    for name in draw(st.permutations(["i", "l", "f", "s", "x"])):
        if draw(st.booleans()):
            continue
        if name == "i":
            want[name] = draw(INT)
            text, declines = str(want[name]), declines or not in_int64(want[name])
        elif name == "l":
            want[name] = draw(st.lists(INT, max_size=4))
            text = "[" + draw(st.sampled_from([",", ", ", " ,\t"])).join(map(str, want[name])) + "]"
            declines = declines or not all(map(in_int64, want[name]))
        elif name == "f":
            text = draw(number_text())
            want[name], declines = float(text), declines or not exactly_readable(text)
        elif name == "s" and draw(st.booleans()):
            want[name] = draw(PLAIN_TEXT)
            text = json.dumps(want[name], ensure_ascii=False)
            declines = declines or "\\" in text   # control characters are escaped
        elif name == "s":
            text = draw(st.sampled_from(['"a\\"b"', '"\\u00e9"', "42"]))   # an escape, or a number label
            want[name], declines = json.loads(text), True
        else:
            text = json.dumps(draw(st.lists(st.integers() | st.text(max_size=3), max_size=3)))
        parts.append(f'"{name}"' + draw(st.sampled_from([":", " : "])) + text)
    return draw(st.sampled_from(["", " "])) + "{" + ", ".join(parts) + "}" + draw(st.sampled_from(["", " ", "\r"])), \
        want, declines


@settings(max_examples=150, deadline=None)
@given(st.lists(line(), min_size=1, max_size=6), st.lists(st.sampled_from(["", "  ", "\t"]), max_size=2))
def test_columns_equal_json_loads(lines, blanks):
    text = "\n".join([t for t, _, _ in lines] + blanks).encode()
    line_no, ok = jsonscan.scan_jsonl(text, SCAN)
    assert ok.all()   # every generated line is one the scan passes
    got = je.read_columns(text, line_no, FIELDS)
    # it declines exactly the values it says it declines (then DuckDB reads the text)
    assert (got is None) == any(declines for _, _, declines in lines)
    if got is None:
        return
    for name in FIELDS:
        for value, (_, want, _) in zip(got[name].to_pylist(), lines):
            if name not in want:
                assert value is None
            elif name == "f":
                assert bits(value) == bits(want["f"])
            else:
                assert value == want[name]


def test_common_values_are_read_not_declined():
    text = b'{"i": -9223372036854775808, "l": [0, 9223372036854775807], "f": 1712345678.125, "s": "chat"}\n' \
           b'{"f": -0.0, "s": "\xc3\xa9t\xc3\xa9", "l": []}\n{"f": 12e3}\n'
    line_no, ok = jsonscan.scan_jsonl(text, SCAN)
    got = je.read_columns(text, line_no, FIELDS)
    assert got is not None
    assert got["i"].to_pylist() == [-(1 << 63), None, None]
    assert got["l"].to_pylist() == [[0, (1 << 63) - 1], [], None]
    assert [bits(v) for v in got["f"].to_pylist()] == [bits(1712345678.125), bits(-0.0), bits(12e3)]
    assert got["s"].to_pylist() == ["chat", "été", None]
    for declined_line in (b'{"i": 9223372036854775808}', b'{"s": "a\\n"}', b'{"f": 1e-300}', b'{"i": [1]}',
                          b'{"l": 1}', b'{"f": 0.1234567890123456789}', b'{"s": 5}'):
        line_no, ok = jsonscan.scan_jsonl(declined_line, SCAN)
        assert ok.all() and je.read_columns(declined_line, line_no, FIELDS) is None, declined_line
