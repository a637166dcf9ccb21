"""The strict JSON-lines scan (kernels/jsonscan.py) against its reference (tests/naive.py:
Python's json, strict) on hostile bytes: escapes, every kind of UTF-8 (valid, overlong,
surrogates, cut), control characters, NaN/Infinity, trailing commas, repeated keys, deep
nesting, long integers. The scan may flag a line the reference accepts only for the reasons
its docstring names (escaped keys, nesting deeper than MAX_DEPTH); it never passes a line the
reference refuses."""
from __future__ import annotations

import json
import re
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from kvctrace.kernels import jsonscan

from . import naive
from .test_fuzz_jsonl import EXAMPLES

CLASSES = {"i": jsonscan.INT, "n": jsonscan.NUMBER, "s": jsonscan.LABEL}
PIECES = [b'"', b"\\", b"\\u", b"\\ud800", b"\\udc00", b"\\ud83d\\ude00", b"\\u00e9", b"\\x", b"\\n", b"\\/",
          b"\xc3\xa9", b"\xc3", b"\xe2\x82\xac", b"\xe2\x82", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"\xf4\x90\x80\x80",
          b"\xc0\xaf", b"\xe0\x80\xaf", b"\xff", b"\x01", b"\x1f", b"\x7f", b"\t", b"\r", b" ", b"\x0c",
          b"NaN", b"Infinity", b"-Infinity", b"-", b"0", b"01", b"1.", b".5", b"1e", b"1e+5", b"-0", b"1" * 30,
          b"true", b"tru", b"false", b"null", b"[", b"]", b"{", b"}", b",", b":", b"[1,]", b'{"a":1,}']
KEYS = st.sampled_from([b'"i"', b'"n"', b'"s"', b'"x"', b'"\\u0069"', b'"i\\n"', b'""'])
SCALAR = st.sampled_from([b"1", b"-0", b"1.5", b"1e400", b'"a"', b"true", b"null", b"[1, 2]", b"[]", b"{}",
                          b'{"i": 1, "i": 2}', b"[" * 300 + b"]" * 300, b"1" + b"0" * 5000])
NOISY = st.lists(st.sampled_from(PIECES), max_size=6).map(b"".join)


@st.composite
def line(draw) -> bytes:
    pairs = draw(st.lists(st.tuples(KEYS, SCALAR | NOISY | (NOISY.map(lambda b: b'"' + b + b'"'))), max_size=4))
    text = b"{" + b", ".join(k + b": " + v for k, v in pairs) + b"}"
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(NOISY) + text[at:]
    return text.replace(b"\n", b" ")


def expected(raw: bytes) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return naive.naive_strict_json_line(text, CLASSES)


def escaped_top_level_key(text: str) -> bool:
    """Whether a key of the line's own object is written with an escape (the scan compares keys
    byte for byte, so it sends such lines to the per-record path; nested keys are not checked)."""
    decoder, ws = json.JSONDecoder(), re.compile(r"[ \t\r\n]*")
    i = ws.match(text, 1).end()  # after the opening brace
    while i < len(text) and text[i] == '"':
        _, end = json.decoder.scanstring(text, i + 1)
        if "\\" in text[i:end]:
            return True
        i = ws.match(text, ws.match(text, end).end() + 1).end()  # past the colon
        _, i = decoder.raw_decode(text, i)
        i = ws.match(text, i).end()
        i = ws.match(text, i + 1).end() if text[i:i + 1] == "," else len(text)
    return False


def deliberately_flagged(raw: bytes) -> bool:
    """Lines the scan sends to the per-record path though they are valid (its docstring)."""
    text = raw.decode("utf-8").strip(" \t\r")
    nested = raw.count(b"[") + raw.count(b"{") > jsonscan.MAX_DEPTH
    return nested or escaped_top_level_key(text) or len(json.loads(text)) > jsonscan.MAX_KEYS


@settings(max_examples=max(200, 3 * EXAMPLES), deadline=None)
@given(st.lists(line(), min_size=1, max_size=6))
def test_scan_matches_the_strict_reference(lines):
    data = b"\n".join(lines)
    numbers, ok, _ = jsonscan.read_jsonl(data, CLASSES)
    blank = [i for i, raw in enumerate(lines, 1) if not raw.strip(b" \t\r")]
    assert set(numbers.tolist()) == set(range(1, len(lines) + 1)) - set(blank)
    for number, passed in zip(numbers.tolist(), ok.tolist()):
        raw = lines[number - 1]
        want = expected(raw)
        if passed:
            assert want, raw  # never a line the reference refuses
        elif want:
            assert deliberately_flagged(raw), raw


def test_digit_limit_follows_python():
    limit = sys.get_int_max_str_digits()
    ok_line = b'{"x": ' + b"1" * limit + b"}"
    long_line = b'{"x": ' + b"1" * (limit + 1) + b"}"
    float_line = b'{"x": 1' + b"0" * limit + b".5}"  # a float: Python has no digit limit there
    _, ok, _ = jsonscan.read_jsonl(b"\n".join([ok_line, long_line, float_line]), {})
    assert ok.tolist() == [True, False, True]
