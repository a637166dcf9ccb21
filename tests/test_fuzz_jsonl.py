"""Fuzzing the JSON-lines readers (mooncake, bailian, tokens, lengths) through their fast path
(strict scan + DuckDB), their per-record path and the --skip-bad-lines fast path, in plain,
gzip and zstd files: valid records, records with one field mutated (type, range, encoding,
repetition, escapes), random bytes and truncations. The property is tests/fuzz_oracle.py's."""
from __future__ import annotations

import gzip
import json
import os

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import fuzz_oracle as oracle

# KVCTRACE_FUZZ_EXAMPLES raises the example count for a deeper run (the suite keeps it small).
EXAMPLES = int(os.environ.get("KVCTRACE_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
ID = st.integers(0, 40) | st.integers(-(1 << 63), (1 << 64) - 1)


# ---- valid records -----------------------------------------------------------------------------

def ids_for(draw, length, bs):
    return draw(st.lists(ID, min_size=-(-length // bs), max_size=-(-length // bs)))


def length_for(draw, bs, max_blocks=4):
    blocks = draw(st.integers(0, max_blocks))
    return 0 if blocks == 0 else (blocks - 1) * bs + draw(st.integers(1, bs))


TIMESTAMP = st.integers(0, 10 ** 7) | st.floats(-1e9, 1e9, allow_nan=False) | st.sampled_from([0, -0.0, 1e-300])


@st.composite
def mooncake_record(draw):
    n_in = length_for(draw, 512)
    return {"timestamp": draw(TIMESTAMP), "input_length": n_in, "output_length": draw(st.integers(0, 1 << 30)),
            "hash_ids": ids_for(draw, n_in, 512)}


@st.composite
def bailian_record(draw):
    n_in = length_for(draw, 16)
    return {"chat_id": draw(st.integers(0, 30)), "parent_chat_id": draw(st.integers(-1, 30)),
            "timestamp": draw(TIMESTAMP), "input_length": n_in, "output_length": draw(st.integers(0, 100)),
            "type": draw(st.sampled_from(["text", "image", "", "é\u2028"])), "turn": draw(st.integers(-1, 5)),
            "hash_ids": ids_for(draw, n_in, 16)}


@st.composite
def tokens_record(draw):
    rec = {"timestamp": draw(TIMESTAMP), "token_ids": draw(st.lists(ID, max_size=40))}
    if draw(st.booleans()):
        rec["output_length"] = draw(st.integers(0, 100) | st.none())
    if draw(st.booleans()):
        rec["session_id"] = draw(st.integers(-5, 5) | st.text(max_size=4) | st.none())
    return rec


@st.composite
def lengths_record(draw):
    rec = {"timestamp": draw(TIMESTAMP), "input_tokens": draw(st.integers(0, 1 << 30))}
    if draw(st.booleans()):
        rec["output_tokens"] = draw(st.integers(0, 5000))
    return rec


RECORDS = {"mooncake": mooncake_record(), "bailian": bailian_record(), "tokens": tokens_record(),
           "lengths": lengths_record()}


# ---- one mutated field -------------------------------------------------------------------------

SPECIAL = ["0", "-0", "1", "-1", "1073741824", "1073741825", "2147483648", "9223372036854775807",
           "9223372036854775808", "18446744073709551615", "18446744073709551616", "-9223372036854775808",
           "-9223372036854775809", "1e400", "-1e400", "1e300", "9007199254740992000", "9007199254740993000",
           "9.007199254740992e15", "9.007199254740993e15", "1.5", "0.0", "1e3", "-0.0", "5e-324", "NaN",
           "Infinity", "-Infinity", "true", "false", "null", '"600"', '"12.5"', '"x"', "[]", "[1.0]", "[1, 2]",
           "[true]", "[null]", "[-1, 18446744073709551615]", "{}", '{"a": 1}', "[[1]]", '"\\ud800"',
           '"\\ud83d\\ude00"', '"\\u00e9"', "1" + "0" * 4400, "01", "+1", ".5", "1.", "0x10", "[1,]", "1 2",
           '"a\x01b"', '"\\q"', "[" * 300 + "]" * 300]
VALUE = st.sampled_from(SPECIAL) | st.integers(-(1 << 70), 1 << 70).map(str) | \
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps) | \
    st.text(max_size=6).map(json.dumps) | st.lists(ID, max_size=5).map(json.dumps)


def line_of(pairs) -> bytes:
    return b"{" + b", ".join(k + b": " + v for k, v in pairs) + b"}"


def pairs_of(rec: dict) -> list:
    return [(json.dumps(k).encode(), json.dumps(v, ensure_ascii=False).encode()) for k, v in rec.items()]


def escaped(key: str) -> bytes:
    """The key with its first character written as a \\u escape: the same key after decoding."""
    return b'"' + f"\\u{ord(key[0]):04x}".encode() + json.dumps(key)[2:].encode()


@st.composite
def mutated_line(draw, rec: dict) -> bytes:
    pairs = pairs_of(rec)
    keys = list(rec) + ["extra"]
    k = draw(st.integers(0, len(keys) - 1))
    key = json.dumps(keys[k]).encode()
    kind = draw(st.sampled_from(["value", "value", "value", "drop", "repeat", "escape", "extra", "bytes",
                                 "cut", "non_utf8", "space"]))
    if kind == "value":
        return line_of([(a, draw(VALUE).encode() if a == key else b) for a, b in pairs] +
                       ([(key, draw(VALUE).encode())] if keys[k] == "extra" else []))
    if kind == "drop":
        return line_of([p for p in pairs if p[0] != key])
    if kind == "repeat":
        return line_of(pairs + [(key, draw(VALUE).encode() if draw(st.booleans()) else dict(pairs).get(key, b"1"))])
    if kind == "escape":
        return line_of([(escaped(keys[k]) if a == key else a, b) for a, b in pairs])
    if kind == "extra":
        return line_of(pairs + [(b'"extra"', draw(VALUE).encode())])
    text = line_of(pairs)
    at = draw(st.integers(0, len(text)))
    if kind == "bytes":
        return text[:at] + draw(st.binary(min_size=1, max_size=4)).replace(b"\n", b" ") + text[at:]
    if kind == "cut":
        return text[:at]
    if kind == "non_utf8":
        return text[:at] + b"\xff" + text[at:]
    return draw(st.sampled_from([b" ", b"\t", b"\r", b""])) + text + draw(st.sampled_from([b" ", b"\r", b"\t"]))


@st.composite
def jsonl_file(draw, fmt: str, max_records=8):
    """(file bytes, explicit block size or None): valid records, some mutated, blank lines."""
    recs = draw(st.lists(RECORDS[fmt], min_size=1, max_size=max_records))
    lines = [line_of(pairs_of(r)) for r in recs]
    for i in draw(st.lists(st.integers(0, len(lines) - 1), max_size=2, unique=True)):
        lines[i] = draw(mutated_line(recs[i]))
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([b"", b"  ", b"\r", b"\t \r"])))
    end = draw(st.sampled_from([b"\n", b"", b"\r\n"]))
    return b"\n".join(lines) + end


def contain(data: bytes, container: str) -> tuple[str, bytes]:
    if container == "gz":
        return "t.jsonl.gz", gzip.compress(data, mtime=0)
    if container == "zst":
        return "t.jsonl.zst", zstandard.ZstdCompressor().compress(data)
    return "t.jsonl", data


FORMATS = st.sampled_from(["mooncake", "bailian", "tokens", "lengths"])


@FUZZ
@given(fmt=FORMATS, data=st.data(), container=st.sampled_from(["plain", "plain", "gz", "zst"]),
       skip=st.booleans())
def test_records_with_one_field_mutated(tmp_path_factory, fmt, data, container, skip):
    text = data.draw(jsonl_file(fmt))
    name, payload = contain(text, container)
    path = tmp_path_factory.mktemp("jsonl") / name
    path.write_bytes(payload)
    oracle.check(path, oracle.expect_jsonl(text, fmt), format=fmt, skip_bad_lines=skip)


@settings(max_examples=max(25, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=FORMATS, data=st.data())
def test_skip_fast_path_with_one_bad_line_among_many(tmp_path_factory, fmt, data):
    """Over 100 lines with one or two bad: --skip-bad-lines keeps the fast path for the rest."""
    good = [line_of(pairs_of(r)) for r in data.draw(st.lists(RECORDS[fmt], min_size=3, max_size=3))]
    lines = [good[i % 3] for i in range(150)]
    recs = [json.loads(g) for g in good]
    for i in data.draw(st.lists(st.integers(0, 149), min_size=1, max_size=2, unique=True)):
        lines[i] = data.draw(mutated_line(recs[i % 3]))
    text = b"\n".join(lines) + b"\n"
    path = tmp_path_factory.mktemp("many") / "t.jsonl"
    path.write_bytes(text)
    oracle.check(path, oracle.expect_jsonl(text, fmt), format=fmt, skip_bad_lines=True, run_analyses=False)


@FUZZ
@given(fmt=FORMATS, data=st.data())
def test_format_detected_from_a_valid_first_line(tmp_path_factory, fmt, data):
    first = line_of(pairs_of(data.draw(RECORDS[fmt])))
    text = first + b"\n" + data.draw(jsonl_file(fmt, max_records=4))
    path = tmp_path_factory.mktemp("detect") / "t.jsonl"
    path.write_bytes(text)
    tr = oracle.check(path, oracle.expect_jsonl(text, fmt), run_analyses=False)
    assert tr is None or tr.format == fmt


@settings(max_examples=EXAMPLES, deadline=None)
@given(payload=st.binary(max_size=300), name=st.sampled_from(["t.jsonl", "t.json", "t.csv", "t.jsonl.gz",
                                                              "t.parquet", "t.duckdb"]),
       skip=st.booleans())
def test_random_bytes_never_a_traceback(tmp_path_factory, payload, name, skip):
    from kvctrace import KvctraceError, open_trace
    path = tmp_path_factory.mktemp("bytes") / name
    path.write_bytes(payload)
    try:
        tr = open_trace(path, skip_bad_lines=skip)
    except KvctraceError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    oracle.strict_json(json.dumps(tr.info(), allow_nan=False))


@FUZZ
@given(fmt=FORMATS, data=st.data(), container=st.sampled_from(["plain", "gz", "zst"]), skip=st.booleans())
def test_truncated_files(tmp_path_factory, fmt, data, container, skip):
    """A valid file cut anywhere: the complete lines are the oracle's, the cut one is bad (or,
    compressed, lost with the stream: an error, or with --skip-bad-lines a reject)."""
    from kvctrace import KvctraceError, open_trace
    recs = data.draw(st.lists(RECORDS[fmt], min_size=1, max_size=6))
    text = b"".join(line_of(pairs_of(r)) + b"\n" for r in recs)
    name, payload = contain(text, container)
    cut = data.draw(st.integers(1, len(payload) - 1)) if len(payload) > 1 else 1
    path = tmp_path_factory.mktemp("cut") / name
    path.write_bytes(payload[:cut])
    if container == "plain":
        oracle.check(path, oracle.expect_jsonl(payload[:cut], fmt), format=fmt, skip_bad_lines=skip,
                     run_analyses=False)
        return
    try:
        tr = open_trace(path, format=fmt, skip_bad_lines=skip)
    except KvctraceError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert skip or cut == len(payload), "a truncated stream was ingested without --skip-bad-lines"
    complete = text[:sum(len(line_of(pairs_of(r))) + 1 for r in recs[:tr.n_requests])]
    oracle.compare_store(tr, oracle.expect_jsonl(complete, fmt)) if not tr.rejected_lines else None
    assert tr.n_requests <= len(recs)
