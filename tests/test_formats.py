"""Trace formats: detection, --format override, every container (jsonl, gz, zst, json, csv,
parquet) giving the same tables, line numbering with blank lines, and the fast columnar path
agreeing with the per-record path on random traces."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from kvctrace import KvctraceError, open_trace
from kvctrace.formats import READERS, detect_format, read_columns
from kvctrace.kernels.jsonscan import read_jsonl

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

MOONCAKE = [
    {"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]},
    {"timestamp": 1500, "input_length": 1100, "output_length": 7, "hash_ids": [0, 1, 2]},
    {"timestamp": 3000, "input_length": 100, "output_length": 1, "hash_ids": [3]},
]


def jsonl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def summary(tr):
    return (tr.format, tr.block_size, tr.offsets.tolist(), tr.blocks.tolist(), tr.ts.tolist(),
            tr.input_len.tolist(), tr.output_len.tolist())


@pytest.mark.parametrize("keys, fmt", [
    ({"timestamp", "input_length", "output_length", "hash_ids"}, "mooncake"),
    ({"chat_id", "parent_chat_id", "timestamp", "input_length", "output_length", "type", "turn", "hash_ids"}, "bailian"),
    ({"timestamp", "token_ids"}, "tokens"),
    ({"timestamp", "token_ids", "session_id", "output_length"}, "tokens"),
    ({"TIMESTAMP", "ContextTokens", "GeneratedTokens"}, "lengths"),
    ({"timestamp", "input_length", "output_length"}, "lengths"),
    ({"foo", "bar"}, None),
])
def test_detect_format(keys, fmt):
    assert detect_format(keys) == fmt


READER_MEMBERS = {"NAME", "DEFAULT_BLOCK_SIZE", "SIGNATURE", "CSV", "matches", "options", "schema",
                  "from_frame", "parse_record", "from_rows"}


def test_every_registered_reader_satisfies_the_reader_protocol():
    """Each registered reader module has every ``Reader`` member: constants of the declared
    types, functions with the protocol's parameters (names, kinds, defaults)."""
    import inspect
    import typing

    from kvctrace.formats import Reader
    constants = typing.get_type_hints(Reader)
    methods = {n for n, v in vars(Reader).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert set(constants) | methods == READER_MEMBERS
    for name, reader in READERS.items():
        assert isinstance(reader, Reader), name
        assert reader.NAME == name
        for const, typ in constants.items():
            assert isinstance(getattr(reader, const), typ), (name, const)
        for method in methods:
            want = list(inspect.signature(getattr(Reader, method)).parameters.values())[1:]  # no self
            got = list(inspect.signature(getattr(reader, method)).parameters.values())
            assert [(p.name, p.kind, p.default) for p in got] == [(p.name, p.kind, p.default) for p in want], \
                (name, method)


def test_each_reader_matches_its_own_first_record():
    """``matches`` is each reader's own test; detection asks them in registry order, so each
    first record is detected as its own format (bailian's also matches mooncake's test)."""
    firsts = {"mooncake": MOONCAKE[0],
              "bailian": {"chat_id": 1, "parent_chat_id": -1, "timestamp": 0, "input_length": 3,
                          "output_length": 1, "type": "text", "turn": 1, "hash_ids": [1]},
              "tokens": {"timestamp": 0, "token_ids": [1, 2]},
              "lengths": {"timestamp": 0, "input_length": 3}}
    for name, first in firsts.items():
        assert READERS[name].matches(first.keys()), name
        assert detect_format(first.keys()) == name
    assert READERS["mooncake"].matches(firsts["bailian"].keys())  # hence bailian is asked first
    assert not any(r.matches(["foo"]) for r in READERS.values())


def test_every_container_gives_the_same_trace(tmp_path):
    text = jsonl(MOONCAKE)
    (tmp_path / "t.jsonl").write_text(text)
    (tmp_path / "t.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "t.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
    (tmp_path / "t.json").write_text(json.dumps(MOONCAKE, indent=2))
    pl.DataFrame(MOONCAKE).write_parquet(tmp_path / "t.parquet")
    want = summary(open_trace(tmp_path / "t.jsonl"))
    assert want[0] == "mooncake" and want[3] == [0, 1, 0, 1, 2, 3] and want[4] == [0.0, 1.5, 3.0]
    for name in ("t.jsonl.gz", "t.jsonl.zst", "t.json", "t.parquet"):
        tr = open_trace(tmp_path / name)
        assert summary(tr) == want, name
    assert open_trace(tmp_path / "t.jsonl.gz").meta["compression"] == "gzip"
    assert open_trace(tmp_path / "t.jsonl.zst").meta["compression"] == "zstd"


def test_container_detected_by_content_not_name(tmp_path):
    text = jsonl(MOONCAKE)
    (tmp_path / "plain.jsonl").write_bytes(gzip.compress(text.encode()))  # gzip without .gz
    assert open_trace(tmp_path / "plain.jsonl").n_requests == 3


def test_csv_lengths_and_jsonl_lengths(tmp_path):
    (tmp_path / "a.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,4808,10\n\n"
        "2023-11-16 18:17:04.0319600,3180,8\n")
    tr = open_trace(tmp_path / "a.csv")
    assert tr.format == "lengths" and not tr.has_block_ids and tr.n_accesses == 0
    assert tr.ts.tolist() == pytest.approx([0.0, 0.052])
    assert tr.requests()["line_no"].to_list() == [2, 4]
    assert tr.input_len.tolist() == [4808, 3180] and tr.output_len.tolist() == [10, 8]
    (tmp_path / "b.jsonl").write_text(jsonl([{"timestamp": 2.5, "input_tokens": 7, "output_tokens": 1},
                                             {"timestamp": 4.0, "input_tokens": 9, "output_tokens": 2}]))
    tr = open_trace(tmp_path / "b.jsonl")
    assert tr.format == "lengths" and tr.ts.tolist() == [0.0, 1.5] and tr.input_len.tolist() == [7, 9]


def test_format_override(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(jsonl(MOONCAKE))
    tr = open_trace(path, format="lengths")  # a Mooncake file read for its lengths only
    assert tr.format == "lengths" and not tr.has_block_ids and tr.n_requests == 3
    with pytest.raises(KvctraceError, match="unknown format"):
        open_trace(path, format="nope")
    with pytest.raises(KvctraceError, match="token_ids"):
        open_trace(path, format="tokens")


def test_unknown_keys_name_the_formats(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"foo": 1}\n')
    with pytest.raises(KvctraceError, match="cannot tell the trace format") as err:
        open_trace(path)
    assert err.value.line == 1 and "--format" in err.value.hint


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    lines = [json.dumps(r) for r in MOONCAKE]
    path = tmp_path / "t.jsonl"
    path.write_text("\n" + lines[0] + "\n   \n\r\n" + lines[1] + "\n\n" + lines[2])
    tr = open_trace(path)
    assert tr.requests()["line_no"].to_list() == [2, 5, 7]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab \t\r\n", max_size=40))
def test_scan_numbers_nonblank_lines(text):
    data = text.replace("a", "{}").encode()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    want = [i + 1 for i, line in enumerate(lines) if line.strip()]
    assert read_jsonl(data, {})[0].tolist() == want


record = st.fixed_dictionaries({
    "timestamp": st.integers(0, 10_000),
    "n": st.integers(0, 6),
    "tail": st.integers(1, 512),
    "output_length": st.integers(0, 1000),
    "prefix": st.integers(0, 4),
})


def _mooncake(spec):
    ids = list(range(spec["prefix"], spec["prefix"] + spec["n"]))
    length = 0 if not ids else (len(ids) - 1) * 512 + spec["tail"]
    return {"timestamp": spec["timestamp"], "input_length": length,
            "output_length": spec["output_length"], "hash_ids": ids}


@settings(max_examples=50, deadline=None)
@given(st.lists(record, min_size=1, max_size=20))
def test_fast_path_equals_per_record_path(tmp_path_factory, specs):
    path = tmp_path_factory.mktemp("fp") / "t.jsonl"
    path.write_text(jsonl([_mooncake(s) for s in specs]))
    fast, _ = read_columns(path)
    reader = READERS["mooncake"]
    original = reader.from_frame
    reader.from_frame = lambda *a, **k: None  # force the per-record path
    try:
        slow, _ = read_columns(path)
    finally:
        reader.from_frame = original
    for name in ("ts", "input_len", "output_len", "line_no", "offsets", "ids"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name


def test_bailian_and_tokens_fast_equals_slow(tmp_path):
    bailian = [{"chat_id": i, "parent_chat_id": i - 1 if i % 3 else -1, "timestamp": i * 0.25,
                "input_length": 16 * (i % 4) + 3, "output_length": 2, "type": "text", "turn": i % 3 + 1,
                "hash_ids": list(range(i % 4 + 1))} for i in range(12)]
    tokens = [{"timestamp": float(i), "token_ids": list(range(i * 3)), "session_id": i % 2} for i in range(12)]
    for name, recs in (("bailian", bailian), ("tokens", tokens)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text(jsonl(recs))
        fast, _ = read_columns(path)
        reader = READERS[name]
        original = reader.from_frame
        reader.from_frame = lambda *a, **k: None
        try:
            slow, _ = read_columns(path)
        finally:
            reader.from_frame = original
        assert fast.format == name
        for col in ("ts", "input_len", "output_len", "line_no", "offsets", "ids"):
            assert np.array_equal(getattr(fast, col), getattr(slow, col)), (name, col)
        assert fast.session_id == slow.session_id


@pytest.mark.skipif(not (DATASETS / "mooncake").is_dir(), reason="shared datasets not available")
def test_real_trace_through_gzip_and_parquet(tmp_path):
    src = DATASETS / "mooncake" / "synthetic_trace.jsonl"
    (tmp_path / "s.jsonl.gz").write_bytes(gzip.compress(src.read_bytes(), compresslevel=1))
    pl.read_ndjson(src).write_parquet(tmp_path / "s.parquet")
    want = open_trace(src)
    for name in ("s.jsonl.gz", "s.parquet"):
        tr = open_trace(tmp_path / name)
        assert (tr.n_requests, tr.n_accesses, tr.n_unique_blocks) == (3_993, 121_877, 43_924)
        assert np.array_equal(tr.blocks, want.blocks) and np.array_equal(tr.ts, want.ts)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet='ab"\\ {}[],:é', max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3),
    max_leaves=8)
SCAN_CLASSES = {"i": 0, "n": 1, "s": 2}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["i", "n", "s", "other"]),
                                json_values | st.lists(st.integers(-5, 5), max_size=4), max_size=4),
                min_size=1, max_size=8),
       st.lists(st.integers(0, 60), max_size=3), st.sampled_from([", ", ","]))
def test_strict_scan_matches_naive(records, cuts, sep):
    from . import naive
    lines = [json.dumps(r, separators=(sep, ": "), ensure_ascii=False) for r in records]
    for k, cut in enumerate(cuts):  # some truncated lines (only over known fields: 'other' is skipped unchecked)
        if k < len(lines) and "other" not in records[k]:
            lines[k] = lines[k][:cut]
    data = "\n".join(lines).encode()
    numbers, ok, _ = read_jsonl(data, SCAN_CLASSES)
    want = [(i + 1, naive.naive_strict_json_line(line, SCAN_CLASSES)) for i, line in enumerate(lines) if line.strip()]
    assert list(zip(numbers.tolist(), ok.tolist())) == want


def test_fast_path_taken_on_good_files(tmp_path, monkeypatch):
    import kvctrace.formats.containers as formats
    monkeypatch.setattr(formats, "_slow", lambda *a, **k: pytest.fail("per-record path used on a good file"))
    path = tmp_path / "t.jsonl"
    path.write_text(jsonl(MOONCAKE))
    assert open_trace(path).n_requests == 3
    (tmp_path / "t.jsonl.gz").write_bytes(gzip.compress(jsonl(MOONCAKE).encode()))
    assert open_trace(tmp_path / "t.jsonl.gz").n_requests == 3
    bailian = [{"chat_id": 1, "parent_chat_id": -1, "timestamp": 0.5, "input_length": 20, "output_length": 1,
                "type": "text", "turn": 1, "hash_ids": [4, 5]}]
    (tmp_path / "b.jsonl").write_text(jsonl(bailian))
    assert open_trace(tmp_path / "b.jsonl").format == "bailian"
    (tmp_path / "k.jsonl").write_text(jsonl([{"timestamp": 1, "token_ids": [1, 2, 3], "session_id": 7}]))
    assert open_trace(tmp_path / "k.jsonl").requests()["session_id"].to_list() == ["7"]


def test_utf8_byte_order_mark_is_ignored(tmp_path, monkeypatch):
    import kvctrace.formats.containers as formats
    monkeypatch.setattr(formats, "_slow", lambda *a, **k: pytest.fail("per-record path used on a good file"))
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + jsonl(MOONCAKE).encode())
    assert open_trace(tmp_path / "bom.jsonl").n_requests == 3
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfTIMESTAMP,ContextTokens,GeneratedTokens\n1.5,10,2\n")
    tr = open_trace(tmp_path / "bom.csv")
    assert tr.format == "lengths" and tr.input_len.tolist() == [10]


def test_unsigned_64_bit_ids(tmp_path):
    big = (1 << 64) - 1
    recs = [{"timestamp": 0, "input_length": 1000, "output_length": 1, "hash_ids": [big, 5]},
            {"timestamp": 1, "input_length": 600, "output_length": 1, "hash_ids": [big, -3]}]
    path = tmp_path / "u.jsonl"
    path.write_text(jsonl(recs))
    tr = open_trace(path)
    assert tr.blocks.tolist() == [0, 1, 0, 2]
    assert tr.blocks_table()["raw_hash"].to_list() == [big, 5, (1 << 64) - 3]
