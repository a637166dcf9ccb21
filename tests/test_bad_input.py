"""Bad input: each problem gives a KvctraceError naming the file, line and field with a hint;
--skip-bad-lines ingests the rest and keeps every rejected line verbatim with its reason."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys

import pytest
import zstandard

from kvctrace import KvctraceError, open_trace

GOOD = {"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}
GOOD2 = {"timestamp": 10, "input_length": 100, "output_length": 3, "hash_ids": [1]}
BAILIAN = {"chat_id": 1, "parent_chat_id": -1, "timestamp": 1.0, "input_length": 40, "output_length": 2,
           "type": "text", "turn": 1, "hash_ids": [7, 8, 9]}


def line(rec) -> str:
    return json.dumps(rec)


def with_bad(bad: str, good=(GOOD, GOOD2)) -> str:
    """Good line, the bad line (line 2), another good line."""
    return f"{line(good[0])}\n{bad}\n{line(good[1])}\n"


BAD_LINES = {
    # name: (bad line 2, field named, words in the message)
    "malformed_json": ('{"timestamp": 1, "input_length": 600,', None, "malformed JSON"),
    "not_an_object": ("[1, 2, 3]", None, "expected a JSON object"),
    "missing_field": ('{"timestamp": 1, "output_length": 5, "hash_ids": [1, 2]}', "input_length", "missing field"),
    "null_field": ('{"timestamp": 1, "input_length": null, "output_length": 5, "hash_ids": [1, 2]}', "input_length", "null"),
    "mistyped_string": ('{"timestamp": 1, "input_length": "600", "output_length": 5, "hash_ids": [1, 2]}', "input_length", "should be an integer"),
    "mistyped_float": ('{"timestamp": 1, "input_length": 600.5, "output_length": 5, "hash_ids": [1, 2]}', "input_length", "should be an integer"),
    "mistyped_bool": ('{"timestamp": 1, "input_length": true, "output_length": 5, "hash_ids": [1, 2]}', "input_length", "should be an integer"),
    "mistyped_timestamp": ('{"timestamp": "soon", "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}', "timestamp", "should be a number"),
    "mistyped_hash_item": ('{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, "x"]}', "hash_ids", "item 1"),
    "hash_ids_not_list": ('{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": 12}', "hash_ids", "list"),
    "negative_input": ('{"timestamp": 1, "input_length": -600, "output_length": 5, "hash_ids": []}', "input_length", "negative"),
    "negative_output": ('{"timestamp": 1, "input_length": 600, "output_length": -1, "hash_ids": [1, 2]}', "output_length", "negative"),
    "too_many_ids": ('{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, 2, 3]}', "hash_ids", "ceil(600/512) = 2"),
    "too_few_ids": ('{"timestamp": 1, "input_length": 1100, "output_length": 5, "hash_ids": [1, 2]}', "hash_ids", "ceil(1100/512) = 3"),
    "not_utf8": ('{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, 2], "x": "\udcff"}', None, "UTF-8"),
}


def write_bad(tmp_path, name, bad):
    path = tmp_path / f"{name}.jsonl"
    data = with_bad(bad).encode("utf-8", errors="surrogateescape")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_bad_line_is_an_error_naming_file_line_field(tmp_path, name):
    bad, field, words = BAD_LINES[name]
    path = write_bad(tmp_path, name, bad)
    with pytest.raises(KvctraceError) as info:
        open_trace(path)
    err = info.value
    assert err.path == str(path) and err.line == 2 and err.field == field
    assert words in str(err) and err.hint
    assert str(path) in str(err) and "line 2" in str(err)


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_skip_bad_lines_keeps_the_rest_and_the_rejected_line(tmp_path, name):
    bad, _field, words = BAD_LINES[name]
    path = write_bad(tmp_path, name, bad)
    tr = open_trace(path, skip_bad_lines=True)
    assert tr.n_requests == 2 and tr.rejected_lines == 1 and tr.meta["rejected_lines"] == "1"
    assert tr.requests()["line_no"].to_list() == [1, 3]
    rej = tr.rejects()
    assert rej["line_no"].to_list() == [2]
    expected_raw = bad.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    assert rej["raw"][0] == expected_raw
    assert words.split()[0] in rej["reason"][0]
    assert tr.info()["rejected_lines"] == 1


def test_bailian_block_count_checked_at_16(tmp_path):
    bad = dict(BAILIAN, chat_id=2, input_length=33)  # ceil(33/16) = 3 ids: fine
    worse = dict(BAILIAN, chat_id=3, input_length=49)  # needs 4, has 3
    path = tmp_path / "b.jsonl"
    path.write_text(f"{line(BAILIAN)}\n{line(bad)}\n{line(worse)}\n")
    with pytest.raises(KvctraceError, match=r"ceil\(49/16\) = 4") as info:
        open_trace(path)
    assert info.value.line == 3 and info.value.field == "hash_ids"
    assert open_trace(path, skip_bad_lines=True).n_requests == 2


def test_empty_files(tmp_path):
    for name, data in (("e.jsonl", b""), ("w.jsonl", b"\n  \n\n"), ("e.jsonl.gz", gzip.compress(b"")),
                       ("e.csv", b"")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(KvctraceError, match="empty") as info:
            open_trace(path, skip_bad_lines=True)  # even skipping, an empty trace is an error
        assert info.value.path == str(path) and info.value.hint


def test_csv_header_only_is_an_error(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    with pytest.raises(KvctraceError, match="no valid requests"):
        open_trace(path)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_truncated_compressed_file(tmp_path, compression):
    text = "".join(line(dict(GOOD, timestamp=i)) + "\n" for i in range(3000)).encode()
    packed = gzip.compress(text) if compression == "gzip" else zstandard.ZstdCompressor().compress(text)
    path = tmp_path / ("t.jsonl.gz" if compression == "gzip" else "t.jsonl.zst")
    path.write_bytes(packed[: len(packed) * 2 // 3])
    with pytest.raises(KvctraceError, match="truncated") as info:
        open_trace(path)
    assert info.value.line is not None and info.value.path == str(path) and "--skip-bad-lines" in info.value.hint
    tr = open_trace(path, skip_bad_lines=True)
    # Every complete line before the damage is ingested; the cut line is a reject (not dropped).
    assert 0 < tr.n_requests < 3000 and tr.rejected_lines == 1
    rej = tr.rejects()
    assert rej["line_no"][0] == tr.n_requests + 1 and "truncated" in rej["reason"][0]
    assert tr.requests()["line_no"].to_list() == list(range(1, tr.n_requests + 1))


def test_binary_file(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_bytes(os.urandom(4096) + b"\x00" * 16)
    with pytest.raises(KvctraceError, match="binary file") as info:
        open_trace(path, skip_bad_lines=True)
    assert info.value.line == 1 and info.value.hint


def test_garbage_compressed_file(tmp_path):
    path = tmp_path / "g.jsonl.gz"
    path.write_bytes(b"\x1f\x8b" + os.urandom(200))
    with pytest.raises(KvctraceError, match="gzip"):
        open_trace(path)


def test_unsorted_trace_is_sorted_and_reported_not_rejected(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text(f"{line(dict(GOOD, timestamp=5000))}\n{line(GOOD2)}\n{line(dict(GOOD, timestamp=0))}\n")
    tr = open_trace(path)
    assert not tr.sorted_input and tr.rejected_lines == 0 and tr.n_requests == 3
    assert tr.requests()["line_no"].to_list() == [3, 2, 1]  # ts 0 (line 3) ties ts 0? no: 0 < 10 < 5000
    assert tr.ts.tolist() == [0.0, 0.01, 5.0]


def test_all_lines_bad_is_an_error_even_when_skipping(tmp_path):
    path = tmp_path / "all.jsonl"
    path.write_text("not json\n{\"timestamp\": 1}\n")
    with pytest.raises(KvctraceError, match="no line holds a JSON object|no valid requests"):
        open_trace(path, skip_bad_lines=True, format="mooncake")


def test_first_line_bad_with_skip_detects_from_next(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text(f"garbage\n{line(GOOD)}\n")
    tr = open_trace(path, skip_bad_lines=True)
    assert tr.format == "mooncake" and tr.n_requests == 1 and tr.rejects()["raw"].to_list() == ["garbage"]


def test_csv_bad_rows(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:17:03.97,4808,10\n"
                    "2023-11-16 18:17:04.03,lots,8\n"
                    "2023-11-16 18:17:05.00,12\n"
                    "yesterday,5,5\n"
                    "2023-11-16 18:17:06.00,-3,5\n"
                    "2023-11-16 18:17:07.00,30,5\n")
    with pytest.raises(KvctraceError) as info:
        open_trace(path)
    assert info.value.line == 3 and info.value.field == "ContextTokens"
    tr = open_trace(path, skip_bad_lines=True)
    assert tr.n_requests == 2 and tr.requests()["line_no"].to_list() == [2, 7]
    rej = tr.rejects()
    assert rej["line_no"].to_list() == [3, 4, 5, 6]
    assert rej["raw"][1] == "2023-11-16 18:17:05.00,12"
    assert "columns" in rej["reason"][1] and "date-time" in rej["reason"][2] and "negative" in rej["reason"][3]


def test_parquet_mistyped_column(tmp_path):
    import polars as pl
    path = tmp_path / "t.parquet"
    pl.DataFrame({"timestamp": [0, 1], "input_length": ["600", "x"], "output_length": [1, 1],
                  "hash_ids": [[1, 2], [3, 4]]}).write_parquet(path)
    with pytest.raises(KvctraceError, match="Parquet column holds String values; kvctrace needs an integer column") as info:
        open_trace(path)
    assert info.value.field == "input_length" and "JSON" not in str(info.value)


def test_json_array_bad_record(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps([GOOD, dict(GOOD, output_length=-1), GOOD2], indent=2))
    with pytest.raises(KvctraceError, match="record 2: field 'output_length' is negative") as info:
        open_trace(path)
    assert info.value.field == "output_length"
    tr = open_trace(path, skip_bad_lines=True)
    assert tr.n_requests == 2 and tr.rejects()["line_no"].to_list() == [2]
    assert json.loads(tr.rejects()["raw"][0])["output_length"] == -1


def test_bad_options(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(line(GOOD) + "\n")
    for kwargs, words in (({"block_size": 0}, "block-size"), ({"coarsen": 0}, "coarsen"),
                          ({"partial_block": "half"}, "partial-block")):
        with pytest.raises(KvctraceError, match=words):
            open_trace(path, **kwargs)
    with pytest.raises(KvctraceError, match="no such file"):
        open_trace(tmp_path / "missing.jsonl")
    with pytest.raises(KvctraceError, match="directory"):
        open_trace(tmp_path)


def test_skip_bad_lines_on_a_large_file_keeps_the_fast_path(tmp_path, monkeypatch):
    """A few bad lines among many: only they are parsed one by one; the result equals the
    per-record path's."""
    import kvctrace.formats.containers as formats
    lines = [line(dict(GOOD, timestamp=i, hash_ids=[i % 7, 100 + i])) for i in range(400)]
    lines[10] = "{broken"
    lines[200] = line(dict(GOOD, input_length="600"))
    lines[399] = ""
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    slow_calls = []
    original = formats._slow
    monkeypatch.setattr(formats, "_slow", lambda *a, **k: slow_calls.append(1) or original(*a, **k))
    fast = open_trace(path, skip_bad_lines=True)
    assert slow_calls == []
    assert fast.rejects()["line_no"].to_list() == [11, 201]
    assert fast.rejects()["raw"].to_list() == ["{broken", lines[200]]
    monkeypatch.setattr(formats, "_FEW_BAD", 0.0)  # force the per-record path for comparison
    slow = open_trace(path, skip_bad_lines=True)
    assert slow_calls == [1]
    assert fast.requests().equals(slow.requests()) and fast.rejects().equals(slow.rejects())
    assert (fast.blocks == slow.blocks).all()


def test_skip_keeps_fast_path_only_when_flagged_lines_are_really_bad(tmp_path):
    # tokens: a null optional output_length is flagged by the strict scan but valid.
    recs = [{"timestamp": i, "token_ids": [1, 2, i], "output_length": None if i == 3 else 2} for i in range(200)]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    tr = open_trace(path, skip_bad_lines=True)
    assert tr.n_requests == 200 and tr.rejected_lines == 0 and tr.output_len[3] == 0


def test_csv_non_finite_timestamp(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("timestamp,input_tokens\n1.0,5\nnan,6\ninf,7\n2.0,8\n")
    with pytest.raises(KvctraceError, match="finite") as info:
        open_trace(path)
    assert info.value.line == 3 and info.value.field == "timestamp"
    tr = open_trace(path, skip_bad_lines=True)
    assert tr.n_requests == 2 and tr.rejected_lines == 2



# ---- valid values (docs/data-model.md "Valid values"): every reader, every container ----------

def mooncake_line(**fields) -> str:
    return json.dumps(dict(GOOD, **fields))


def error_at(path, line, field, words, **options) -> KvctraceError:
    """The error opening ``path``, checked to name ``line``, ``field`` and ``words``."""
    with pytest.raises(KvctraceError) as info:
        open_trace(path, **options)
    err = info.value
    assert (err.line, err.field) == (line, field) and re.search(words, str(err)) and err.hint, str(err)
    return err


OUT_OF_RANGE = {
    # name: (bad line 2, field, words)
    "timestamp_1e400": ('{"timestamp": 1e400, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}', "timestamp", "infinite"),
    "timestamp_minus_1e400": ('{"timestamp": -1e400, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}', "timestamp", "infinite"),
    "timestamp_1e300": ('{"timestamp": 1e300, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}', "timestamp", "valid range"),
    "timestamp_beyond_2_53_s": ('{"timestamp": 9.1e18, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}', "timestamp", "valid range"),
    "timestamp_nan": ('{"timestamp": NaN, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}', "timestamp", "NaN"),
    "timestamp_infinity": ('{"timestamp": -Infinity, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}', "timestamp", "Infinity"),
    "input_length_2_31": ('{"timestamp": 1, "input_length": 2147483648, "output_length": 5, "hash_ids": [1, 2]}', "input_length", "limit"),
    "output_length_huge": ('{"timestamp": 1, "input_length": 600, "output_length": 9223372036854775807, "hash_ids": [1, 2]}', "output_length", "limit"),
    "output_length_beyond_int64": ('{"timestamp": 1, "input_length": 600, "output_length": 9223372036854775808, "hash_ids": [1, 2]}', "output_length", "valid range"),
    "integral_float_id": ('{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1.0, 2]}', "hash_ids", "item 0 should be an integer"),
    "integral_float_length": ('{"timestamp": 1, "input_length": 600.0, "output_length": 5, "hash_ids": [1, 2]}', "input_length", "should be an integer"),
    "exponent_length": ('{"timestamp": 1, "input_length": 6e2, "output_length": 5, "hash_ids": [1, 2]}', "input_length", "should be an integer"),
    "repeated_key": ('{"timestamp": 1, "input_length": 600, "input_length": 1100, "output_length": 5, "hash_ids": [1, 2]}', "input_length", "more than once"),
    "repeated_escaped_key": ('{"timestamp": 1, "input_length": 600, "input_lengt\\u0068": 600, "output_length": 5, "hash_ids": [1, 2]}', "input_length", "more than once"),
    "escaped_key_lenient_value": ('{"timestamp": 1, "input_lengt\\u0068": "600", "output_length": 5, "hash_ids": [1, 2]}', "input_length", "should be an integer"),
    "trailing_comma_elsewhere": ('{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, 2], "x": [1,]}', None, "malformed JSON"),
    "nan_elsewhere": ('{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, 2], "x": [NaN]}', "x", "NaN"),
    "huge_integer_digits": ('{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, 2], "x": 1' + "0" * 5000 + "}", None, "malformed JSON"),
}


@pytest.mark.parametrize("name", sorted(OUT_OF_RANGE))
def test_out_of_range_and_non_json_values_are_bad_lines(tmp_path, name):
    bad, field, words = OUT_OF_RANGE[name]
    path = write_bad(tmp_path, name, bad)
    assert "got number nan" not in str(error_at(path, 2, field, re.escape(words)))
    tr = open_trace(path, skip_bad_lines=True)  # the fast path (few flagged lines) rejects it too
    assert tr.n_requests == 2 and tr.rejects()["line_no"].to_list() == [2]


def test_timestamps_at_the_bound_are_accepted_and_analyze_runs(tmp_path):
    """The largest valid timestamps ingest, and every analysis finishes with strict JSON."""
    from kvctrace.analysis import analyze
    bound_ms = 2.0 ** 53 * 1000
    path = tmp_path / "edge.jsonl"
    path.write_text("".join(mooncake_line(timestamp=t, hash_ids=[1, 2 + i]) + "\n"
                            for i, t in enumerate([-bound_ms, 0, bound_ms])))
    tr = open_trace(path)
    assert tr.duration_s == 2.0 ** 54
    text = analyze(tr).to_json()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the analysis JSON"))


def test_request_over_the_token_limit_is_rejected_at_ingest(tmp_path):
    """2**31 tokens at block size 2**30: two blocks, formerly ingested and then fatal in analyze."""
    path = tmp_path / "long.jsonl"
    path.write_text(mooncake_line(input_length=2 ** 31, hash_ids=[1, 2]) + "\n")
    error_at(path, 1, "input_length", "limit of 1,073,741,824 tokens", block_size=2 ** 30)
    with pytest.raises(KvctraceError, match="--block-size must be 1 .. 1,073,741,824"):
        open_trace(path, block_size=2 ** 31)
    lengths = tmp_path / "long.csv"
    lengths.write_text("timestamp,input_tokens\n0,5\n1,2147483648\n")
    error_at(lengths, 3, "input_tokens", "limit")


def test_largest_valid_request_ingests(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(mooncake_line(input_length=2 ** 30, hash_ids=[1]) + "\n")
    tr = open_trace(path, block_size=2 ** 30)
    assert tr.input_len.tolist() == [2 ** 30]


def write_parquet(path, columns: dict, schema: dict | None = None):
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table(columns, schema=pa.schema(schema) if schema else None), path)
    return path


@pytest.mark.parametrize("column, values, words", [
    ("hash_ids", [[1.5, 2.7], [3.0]], "list<double>|List\\(Float64\\)"),
    ("hash_ids", [[1.0, 2.0], [3.0]], "List\\(Float64\\)"),   # integral floats: refused too
    ("input_length", [600.0, 100.0], "Float64"),
    ("timestamp", [True, False], "Boolean"),
])
def test_parquet_column_types(tmp_path, column, values, words):
    cols = {"timestamp": [0.0, 10.0], "input_length": [600, 100], "output_length": [5, 3], "hash_ids": [[1, 2], [1]]}
    cols[column] = values
    path = write_parquet(tmp_path / "t.parquet", cols)
    with pytest.raises(KvctraceError, match=words) as info:
        open_trace(path, skip_bad_lines=True)
    err = info.value
    assert err.field == column and "JSON" not in str(err) and "column" in str(err)


@pytest.mark.parametrize("value, words", [(float("inf"), "infinite"), (float("nan"), "NaN"), (1e300, "valid range")])
def test_parquet_non_finite_timestamp(tmp_path, value, words):
    path = write_parquet(tmp_path / "t.parquet", {"timestamp": [0.0, value, 20.0], "input_length": [600, 100, 100],
                                                  "output_length": [5, 3, 3], "hash_ids": [[1, 2], [1], [1]]})
    with pytest.raises(KvctraceError, match=f"row 2: field 'timestamp' is .*{words}") as info:
        open_trace(path)
    assert info.value.field == "timestamp" and "JSON" not in str(info.value)
    tr = open_trace(path, skip_bad_lines=True)
    assert tr.n_requests == 2 and tr.rejects()["line_no"].to_list() == [2]


def test_parquet_unsigned_ids_and_datetimes(tmp_path):
    import pyarrow as pa
    path = write_parquet(tmp_path / "u.parquet",
                         {"timestamp": [0, 10], "input_length": [600, 100], "output_length": [5, 3],
                          "hash_ids": [[2 ** 64 - 1, 5], [2 ** 64 - 1]]},
                         {"timestamp": pa.int64(), "input_length": pa.uint16(), "output_length": pa.int8(),
                          "hash_ids": pa.list_(pa.uint64())})
    tr = open_trace(path)
    assert tr.blocks_table()["raw_hash"].to_list() == [2 ** 64 - 1, 5]
    from datetime import datetime
    times = [datetime(2023, 11, 16, 18, 17, 3, 979960), datetime(2023, 11, 16, 18, 17, 5)]
    lengths = write_parquet(tmp_path / "l.parquet", {"TIMESTAMP": pa.array(times, pa.timestamp("ns")),
                                                     "ContextTokens": [10, 20]})
    assert open_trace(lengths).ts.tolist() == [0.0, 1_020_040_000 / 1e9]


@pytest.mark.parametrize("cell, words", [("600.0", "should be an integer"), ("6e2", "should be an integer"),
                                         ("5_000", "should be an integer"), ("\u0665", "should be an integer"),
                                         ("2147483648", "limit")])
def test_csv_integer_cells(tmp_path, cell, words):
    path = tmp_path / "c.csv"
    path.write_text(f"timestamp,input_tokens\n0,5\n1,{cell}\n2,7\n", encoding="utf-8")
    error_at(path, 3, "input_tokens", words)


@pytest.mark.parametrize("cell", ["1e300", "1_0", "infinity", "-inf"])
def test_csv_timestamp_cells(tmp_path, cell):
    path = tmp_path / "c.csv"
    path.write_text(f"timestamp,input_tokens\n0,5\n{cell},6\n2,7\n")
    assert "JSON" not in str(error_at(path, 3, "timestamp", "timestamp"))


def test_csv_repeated_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("timestamp,input_tokens,input_tokens\n0,5,6\n")
    error_at(path, 1, "input_tokens", "'input_tokens' appears more than once")


def test_csv_mixed_numbers_and_datetimes(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:17:03.97,5\n1700158624,6\n")
    error_at(path, 3, "TIMESTAMP", "date-time like the first")


def test_datetimes_exact_to_the_nanosecond_on_both_paths(tmp_path):
    rows = ["2023-11-16 18:17:03.9799607,5", "2023-11-16 18:17:04.0000001,6", "2023-11-16 18:17:05,7"]
    good = tmp_path / "g.csv"
    good.write_text("TIMESTAMP,ContextTokens\n" + "\n".join(rows) + "\n")
    mixed = tmp_path / "b.csv"
    mixed.write_text("TIMESTAMP,ContextTokens\n" + "\n".join(rows) + "\n2023-11-16 18:17:06,x\n")
    fast = open_trace(good).ts
    slow = open_trace(mixed, skip_bad_lines=True).ts  # a bad row: the per-record path
    assert fast.tolist() == slow.tolist() == [0.0, 20_039_400 / 1e9, 1_020_039_300 / 1e9]


def test_json_array_repeated_key_and_nan(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]},\n'
                    ' {"timestamp": 1, "timestamp": 2, "input_length": 100, "output_length": 5, "hash_ids": [1]},\n'
                    ' {"timestamp": NaN, "input_length": 100, "output_length": 5, "hash_ids": [1]}]')
    with pytest.raises(KvctraceError, match="record 2: key 'timestamp' appears more than once"):
        open_trace(path)
    tr = open_trace(path, skip_bad_lines=True)
    assert tr.n_requests == 1 and "NaN" in tr.rejects()["reason"][1]


def test_text_file_named_duckdb(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text('{"timestamp": 0}\n')
    with pytest.raises(KvctraceError, match="not a DuckDB database") as info:
        open_trace(path)
    assert "malformed" not in str(info.value) and "\n" not in str(info.value)


def test_rejected_line_kept_byte_for_byte(tmp_path):
    bad = b'{"timestamp": 1, "input_length": "x\xff\xfe", "output_length": 5, "hash_ids": [1, 2]}\r'
    path = tmp_path / "r.jsonl"
    path.write_bytes(line(GOOD).encode() + b"\n" + bad + b"\n" + line(GOOD2).encode() + b"\n")
    tr = open_trace(path, skip_bad_lines=True)
    rej = tr.rejects()
    assert rej["raw_bytes"].to_list() == [bad]
    assert rej["raw"][0] == bad.decode("utf-8", errors="replace").rstrip("\r")


def test_failed_ingest_into_a_new_db_leaves_no_file(tmp_path):
    path = write_bad(tmp_path, "bad", '{"timestamp": "soon"}')
    db = tmp_path / "new.duckdb"
    with pytest.raises(KvctraceError):
        open_trace(path, db=db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]
    # an existing database is kept as it was
    good = tmp_path / "good.jsonl"
    good.write_text(line(GOOD) + "\n")
    open_trace(good, db=db).con.close()
    with pytest.raises(KvctraceError):
        open_trace(path, db=db)
    assert open_trace(db).n_requests == 1


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvctrace", *map(str, args)], capture_output=True, text=True)


def test_rejects_command(tmp_path):
    hostile = b'{"timestamp": 1, "input_length": "x\xff\x1b[31m", "output_length": 5, "hash_ids": [1, 2]}\r'
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join([line(GOOD).encode(), hostile, b'{"timestamp": 2}', line(GOOD2).encode(), b""]))
    res = run_cli("rejects", path)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0] == f"{path}: 2 rejected lines" and out[1] == "line 2: line is not UTF-8 text"
    assert "\x1b" not in res.stdout and "\\x1b[31m" in out[2] and "\\xff" in out[2]
    assert out[3].startswith("line 3: missing field")
    res = run_cli("rejects", path, "--json", "--limit", "1")
    found = json.loads(res.stdout, parse_constant=lambda name: pytest.fail(name))
    assert found["rejected_lines"] == 2 and [r["line"] for r in found["rejects"]] == [2]
    assert bytes.fromhex(found["rejects"][0]["raw_hex"]) == hostile
    db = tmp_path / "r.duckdb"
    assert run_cli("ingest", path, "--skip-bad-lines", "--db", db).returncode == 0
    from_db = json.loads(run_cli("rejects", db, "--json", "--limit", "0").stdout)
    assert from_db["rejected_lines"] == 2 and [r["line"] for r in from_db["rejects"]] == [2, 3]
    res = run_cli("rejects", db, "--limit", "-1")
    assert res.returncode == 1 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr
