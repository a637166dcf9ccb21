"""The columns kernels/jsonscan.py reads against Python's json module: for lines the strict
scan passes, the columns it reads equal json.loads' values exactly (floats bit for bit, -0.0
included), it declines (None) only the values it says it declines, and never the common ones;
lines the scan flags leave nothing in the columns."""
from __future__ import annotations

import json
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kvctrace.kernels import json_lex, jsonscan

FIELDS = {"i": jsonscan.INT, "l": jsonscan.INT_LIST, "f": jsonscan.NUMBER, "s": jsonscan.LABEL}

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
    return len(digits) <= json_lex.MAX_EXACT_DIGITS and (not digits or abs(power) <= json_lex.MAX_EXACT_POWER)


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
    line_no, ok, got = jsonscan.read_jsonl(text, FIELDS)
    assert ok.all()   # every generated line is one the scan passes
    # it declines exactly the values it says it declines (then DuckDB reads the text)
    assert (got is None) == any(declines for _, _, declines in lines)
    if got is None:
        return
    assert_columns(got, [want for _, want, _ in lines])


def assert_columns(got: dict, wants: list[dict]) -> None:
    for name in FIELDS:
        assert len(got[name]) == len(wants)
        for value, want in zip(got[name].to_pylist(), wants):
            if name not in want:
                assert value is None
            elif name == "f":
                assert bits(value) == bits(want["f"])
            else:
                assert value == want[name]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(line(), st.booleans(), st.floats(0, 1)), min_size=1, max_size=8))
def test_flagged_lines_leave_no_trace(items):
    """Lines cut short before their closing brace (mid-list, mid-number, ...) are flagged; the
    columns hold the other lines' values only, and only their values may decline."""
    texts, flagged, good = [], [], []
    for (text, want, declines), cut, where in items:
        if cut:
            text = text[:int(where * text.rindex("}"))]
            if text.strip(" \r"):   # cut to nothing: a blank line
                flagged.append(len(texts) + 1)
        else:
            good.append((want, declines))
        texts.append(text)
    line_no, ok, got = jsonscan.read_jsonl("\n".join(texts).encode(), FIELDS)
    assert line_no[~ok].tolist() == flagged
    assert (got is None) == any(declines for _, declines in good)
    if got is not None:
        assert_columns(got, [want for want, _ in good])


def test_common_values_are_read_not_declined():
    text = b'{"i": -9223372036854775808, "l": [0, 9223372036854775807], "f": 1712345678.125, "s": "chat"}\n' \
           b'{"f": -0.0, "s": "\xc3\xa9t\xc3\xa9", "l": []}\n{"f": 12e3}\n'
    _, _, got = jsonscan.read_jsonl(text, FIELDS)
    assert got is not None
    assert got["i"].to_pylist() == [-(1 << 63), None, None]
    assert got["l"].to_pylist() == [[0, (1 << 63) - 1], [], None]
    assert [bits(v) for v in got["f"].to_pylist()] == [bits(1712345678.125), bits(-0.0), bits(12e3)]
    assert got["s"].to_pylist() == ["chat", "été", None]
    for declined_line in (b'{"i": 9223372036854775808}', b'{"s": "a\\n"}', b'{"f": 1e-300}', b'{"i": [1]}',
                          b'{"l": 1}', b'{"f": 0.1234567890123456789}', b'{"s": 5}',
                          b'{"f": 123456789012345678901.5}'):   # an integer part beyond int64
        _, ok, got = jsonscan.read_jsonl(declined_line, FIELDS)
        assert ok.all() and got is None, declined_line


def test_parts_of_a_large_text_join_up():
    """Text above 2 MiB is walked in parts (in parallel); lists of any length, blank and
    flagged lines anywhere (a flagged line's list values half written), compact JSON or not
    (the room left for list values about full, or not) come out in order."""
    rng = np.random.default_rng(7)
    texts, good = [], []
    while sum(map(len, texts)) < 5 << 20:
        rec = {"i": int(rng.integers(-1000, 1000)), "l": rng.integers(0, 1 << 40, rng.integers(0, 300)).tolist(),
               "f": float(rng.integers(0, 10 ** 6)) / 8, "s": "x" * int(rng.integers(0, 4))}
        text = json.dumps(rec, separators=(",", ":") if rng.random() < 0.5 else (", ", ": "))
        kind = rng.random()
        if kind < 0.02:
            text = ""
        elif kind < 0.04:
            text = text[:text.index("]") - 1]   # cut inside the list
        else:
            good.append(rec)
        texts.append(text)
    line_no, ok, got = jsonscan.read_jsonl("\n".join(texts).encode(), FIELDS)
    assert ok.sum() == len(good) and got is not None
    assert_columns(got, good)
