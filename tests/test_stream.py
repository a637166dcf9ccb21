"""Streamed ingest (``--db``): a trace bigger than one chunk is read a bounded chunk at a time
(formats/stream.py, store.ingest_streamed) and must give exactly the store of the whole-file
ingest: the same tables (block ids, prefix tree, requests, rejects, meta) or the same one-line
error. Chunks are made tiny here so that every test file spans many of them."""
from __future__ import annotations

import gzip
import json
import re

import duckdb
import numpy as np
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kvctrace.accesses as accesses
import kvctrace.formats.containers as containers
import kvctrace.formats.source as source
import kvctrace.formats.stream as stream
import kvctrace.spool as spool
from kvctrace import KvctraceError, open_trace
from kvctrace.kernels.dense_stream import DenseIdMap
from kvctrace.synth import write_trace

from .naive import naive_dense_ids
from .test_fuzz_jsonl import RECORDS, contain, jsonl_file, line_of, mutated_line, pairs_of

# errors of a JSON array's text as a whole (containers._read_json)
DOCUMENT_ERRORS = re.compile(r"malformed JSON|not UTF-8 text|numbers must have")
TABLE_QUERIES = ("SELECT * FROM requests ORDER BY req_id", "SELECT * FROM accesses ORDER BY req_id, pos",
                 "SELECT * FROM blocks ORDER BY block", "SELECT key, value FROM meta ORDER BY key",
                 "SELECT * FROM rejects ORDER BY line_no")


def outcome(path, db=None, **options):
    """The tables of the store (as Python rows), or the error's one line."""
    try:
        tr = open_trace(path, db=db, **options)
    except KvctraceError as err:
        return str(err)
    rows = tuple(tuple(tr.sql(q).rows()) for q in TABLE_QUERIES)
    arrays = (tr.offsets.tolist(), tr.blocks.tolist(), tr.n_unique_blocks, tr.sorted_input)
    tr.con.close()
    return rows, arrays


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of ``size`` bytes of text (rows of Parquet); returns a counter of streamed chunks."""
    seen = {"chunks": 0}
    real = stream._shifted

    def counting(*args):
        seen["chunks"] += 1
        return real(*args)

    def set_size(size: int):
        monkeypatch.setattr(source, "CHUNK_BYTES", size)
        monkeypatch.setattr(stream, "PARQUET_ROWS", max(1, size // 64))
        # the first chunk holds the records --skip-bad-lines may take the options from: few here
        monkeypatch.setattr(containers, "OPTION_CANDIDATES", 3)
        monkeypatch.setattr(spool, "STREAM_BATCH_ACCESSES", max(1, size // 16))
        monkeypatch.setattr(stream, "_shifted", counting)
        return seen
    return set_size


def same_as_whole(path, tmp_path, **options):
    """The store of a whole-file read equals the streamed ones: into a database file, and into
    memory (a file bigger than one chunk is streamed there too)."""
    chunk = source.CHUNK_BYTES
    source.CHUNK_BYTES = 1 << 40  # one chunk: the file is read whole
    try:
        whole = outcome(path, **options)
    finally:
        source.CHUNK_BYTES = chunk
    db = tmp_path / f"s{len(list(tmp_path.iterdir()))}.duckdb"
    for streamed in (outcome(path, db=db, **options), outcome(path, **options)):
        if isinstance(whole, str) and "stream is truncated" in whole and isinstance(streamed, str):
            # a truncated compressed stream with a bad line before the cut: the streamed read
            # meets the bad line first and names it (docs/data-model.md, "Streamed ingest")
            assert "stream is truncated" in streamed or ", line " in streamed or ": record " in streamed, streamed
            continue
        if isinstance(whole, str) and DOCUMENT_ERRORS.search(whole) and isinstance(streamed, str):
            # a JSON array whose text is bad after a bad record: the streamed read names the
            # record (met first), the whole-file read the text (parsed before any record)
            # (or, with --skip-bad-lines, a compressed stream cut inside the array: the streamed
            # read names the cut, the whole-file read the JSON it leaves unfinished)
            assert streamed == whole or ": record " in streamed or "inside the JSON array" in streamed, \
                (streamed, whole)
            continue
        assert streamed == whole
    if isinstance(whole, str):
        assert not db.exists()
    return whole


def fuzzed_files(test):
    """A property of a fuzzed file of any JSON reader (``fmt``) in any container, with and
    without --skip-bad-lines, streamed in chunks of ``size`` bytes."""
    cases = given(fmt=st.sampled_from(["mooncake", "bailian", "tokens", "lengths"]), data=st.data(),
                  container=st.sampled_from(["plain", "gz", "zst"]), skip=st.booleans(),
                  size=st.sampled_from([1, 40, 200, 1000]))
    return settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])(cases(test))


@fuzzed_files
def test_fuzzed_jsonl_streamed_equals_whole(tmp_path_factory, small_chunks, fmt, data, container, skip, size):
    small_chunks(size)
    text = data.draw(jsonl_file(fmt, max_records=12))
    name, payload = contain(text, container)
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / name).write_bytes(payload)
    same_as_whole(folder / name, folder, format=fmt if data.draw(st.booleans()) else None, skip_bad_lines=skip)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(container=st.sampled_from(["gz", "zst"]), data=st.data(), skip=st.booleans())
def test_truncated_stream_streamed_equals_whole(tmp_path_factory, small_chunks, container, data, skip):
    small_chunks(data.draw(st.sampled_from([1, 100])))
    text = write_trace(tmp_path_factory.mktemp("src") / "t.jsonl", "mooncake", 30, seed=2).read_bytes()
    name, payload = contain(text, container)
    folder = tmp_path_factory.mktemp("cut")
    (folder / name).write_bytes(payload[:data.draw(st.integers(len(payload) // 3, len(payload) - 1))])
    same_as_whole(folder / name, folder, skip_bad_lines=skip)


# chunk sizes that cut each 400-request file into a few dozen chunks (a bailian line holds
# about 25 times the text of a mooncake one)
@pytest.mark.parametrize("fmt, chunk", [("mooncake", 4096), ("bailian", 65536)])
@pytest.mark.parametrize("options", [{}, {"coarsen": 2}, {"partial_block": "drop"}, {"coarsen": 3, "partial_block": "drop"}])
def test_synth_traces_streamed_equal_whole(tmp_path, small_chunks, fmt, chunk, options):
    seen = small_chunks(chunk)
    path = write_trace(tmp_path / "t.jsonl.zst", fmt, 400, seed=5)
    rows, _ = same_as_whole(path, tmp_path, **options)
    assert seen["chunks"] > 10 and len(rows[1]) > 1000


def test_unsorted_trace_and_parents_across_chunks(tmp_path, small_chunks):
    """Lines out of timestamp order (the streamed ingest sorts through its spool) and bailian
    parents in earlier chunks (relinked across chunks)."""
    seen = small_chunks(32768)
    lines = write_trace(tmp_path / "b.jsonl", "bailian", 300, seed=9).read_bytes().splitlines()
    rng = np.random.default_rng(0)
    for i in rng.choice(len(lines), 40, replace=False):
        rec = json.loads(lines[i])
        rec["timestamp"] = float(rng.uniform(0, 50))
        lines[i] = json.dumps(rec).encode()
    path = tmp_path / "u.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    (requests, *_), _ = same_as_whole(path, tmp_path)
    assert seen["chunks"] > 10
    assert sum(r[6] is not None for r in requests) > 50  # parent_id: many requests have their parent


def test_bad_lines_in_later_chunks(tmp_path, small_chunks):
    small_chunks(1500)
    lines = write_trace(tmp_path / "t.jsonl", "mooncake", 200, seed=1).read_bytes().splitlines()
    lines[150] = b'{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, "x"]}'
    lines[170] = b"not json"
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    error = same_as_whole(path, tmp_path)
    assert "line 151" in error and "hash_ids" in error
    rows, _ = same_as_whole(path, tmp_path, skip_bad_lines=True)
    assert [r[0] for r in rows[4]] == [151, 171]


def test_parquet_row_batches(tmp_path, small_chunks):
    import polars as pl
    seen = small_chunks(64 * 7)  # 7 rows a batch
    frame = pl.read_ndjson(write_trace(tmp_path / "t.jsonl", "mooncake", 100, seed=4))
    frame.write_parquet(tmp_path / "t.parquet", row_group_size=13)
    same_as_whole(tmp_path / "t.parquet", tmp_path)
    assert seen["chunks"] >= 14
    bad = frame.with_columns(pl.when(pl.int_range(pl.len()) == 60).then(-5).otherwise(pl.col("input_length"))
                             .alias("input_length"))
    bad.write_parquet(tmp_path / "bad.parquet")
    assert "row 61" in same_as_whole(tmp_path / "bad.parquet", tmp_path)
    same_as_whole(tmp_path / "bad.parquet", tmp_path, skip_bad_lines=True)


def test_readers_that_read_whole_files(tmp_path, small_chunks):
    """Lengths-only CSVs and token traces are read whole (formats/stream.py says why), with the
    same result; lmcache and servegen logs stream."""
    seen = small_chunks(200)
    csv = tmp_path / "l.csv"
    csv.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                   + "".join(f"2023-11-16 18:17:{i:02d}.5,{100 + i},{i}\n" for i in range(60)))
    same_as_whole(csv, tmp_path)
    tokens = write_trace(tmp_path / "k.jsonl", "tokens", 20, seed=3, user_tokens=50, system_prompt_tokens=30,
                         document_tokens=40, output_tokens=10)
    same_as_whole(tokens, tmp_path)
    assert seen["chunks"] <= 4  # one first chunk per streamed read (file, memory), then the whole-file read
    lm = tmp_path / "lm.jsonl"
    lm.write_text("".join(json.dumps({"timestamp": i, "request_id": f"r{i}", "model_name": "m", "chunk_size": 4,
                                      "seq_len": 9, "chunk_hashes": [hex(7), hex(8 + i % 3)]}) + "\n"
                          for i in range(40)))
    same_as_whole(lm, tmp_path)
    sg = tmp_path / "sg.jsonl"
    sg.write_text("".join(json.dumps({"request_id": f"r{i}", "type": "chat", "input_length": 20, "output_length": 1,
                                      "hash_ids": [1, 2 + i % 4]}) + "\n" for i in range(40)))
    same_as_whole(sg, tmp_path)
    assert seen["chunks"] > 10


def test_a_streamed_ingest_replaces_a_stored_one(tmp_path, small_chunks):
    small_chunks(4096)
    path = write_trace(tmp_path / "t.jsonl", "mooncake", 200, seed=6)
    db = tmp_path / "t.duckdb"
    open_trace(path, db=db).con.close()
    tr = open_trace(path, db=db, coarsen=2)  # other options: re-ingested in one transaction
    assert tr.meta["coarsen"] == "2"
    want = open_trace(path, coarsen=2)
    assert np.array_equal(tr.blocks, want.blocks) and tr.n_unique_blocks == want.n_unique_blocks
    tr.con.close()


def test_gzip_members_and_crlf(tmp_path, small_chunks):
    small_chunks(300)
    text = write_trace(tmp_path / "t.jsonl", "mooncake", 60, seed=8).read_bytes().replace(b"\n", b"\r\n")
    half = text.index(b"\n", len(text) // 2) + 1
    (tmp_path / "m.jsonl.gz").write_bytes(gzip.compress(text[:half]) + b"\0\0" + gzip.compress(text[half:]))
    same_as_whole(tmp_path / "m.jsonl.gz", tmp_path)
    (tmp_path / "m.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(text[:half])
                                           + zstandard.ZstdCompressor().compress(text[half:]))
    same_as_whole(tmp_path / "m.jsonl.zst", tmp_path)


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(st.integers(0, 30) | st.integers(-(1 << 63), (1 << 63) - 1), max_size=300),
       cuts=st.lists(st.integers(0, 300), max_size=6), identity_prefix=st.integers(0, 50))
def test_dense_id_map_equals_naive(keys, cuts, identity_prefix):
    """Across any chunking, the persistent map gives the naive first-appearance ids (also when
    the ids begin as first-appearance ids and then stop being so)."""
    keys = list(range(identity_prefix)) + keys
    want = naive_dense_ids(keys)
    arr = np.array(keys, np.int64)
    id_map = DenseIdMap()
    got = [id_map.map(part) for part in np.split(arr, sorted(c for c in cuts if c <= arr.shape[0]))]
    assert np.concatenate(got).tolist() == want[0]
    assert id_map.count == len(set(keys))


def _rewrite_accesses(db, select: str):
    """The store's accesses table replaced by the rows of ``select`` (over ``accesses``)."""
    import duckdb
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE a2 AS {select}")
    con.execute("DROP TABLE accesses")
    con.execute("ALTER TABLE a2 RENAME TO accesses")
    return con


def test_block_ids_of_a_table_out_of_order_from_its_middle(tmp_path, monkeypatch):
    """The reader hands out checked batches in stored order and, at the first row out of
    place, continues from the sorted read: the ids are the trace's whether the disorder
    starts in the first batch or later, and a table short of a row is an error."""
    from kvctrace.errors import KvctraceError
    from kvctrace.store import load_store
    monkeypatch.setattr(accesses, "ACCESS_BATCH_ROWS", 64)
    path = write_trace(tmp_path / "t.jsonl", "mooncake", 200, seed=8)
    want = open_trace(path)
    db = tmp_path / "t.duckdb"
    open_trace(path, db=db).con.close()
    n = int(want.offsets[-1])
    for cut in (0, 100, n // 2, n - 10):   # rows before `cut` in CSR order, the rest shuffled
        con = _rewrite_accesses(db, "SELECT * EXCLUDE (i) FROM (SELECT *, row_number() OVER (ORDER BY req_id, pos) - 1"
                                    f" AS i FROM accesses) ORDER BY i >= {cut}, CASE WHEN i >= {cut} THEN hash(i) ELSE i END")
        rows = con.sql("SELECT req_id, pos FROM accesses").fetchnumpy()
        got_order = want.offsets[rows["req_id"]] + rows["pos"]
        assert not np.array_equal(got_order, np.arange(n))   # the table is out of order somewhere
        assert np.array_equal(load_store(con, str(db)).blocks, want.blocks), cut
        assert np.array_equal(np.concatenate([c.blocks for c in accesses.iter_access_chunks(con, 300)]),
                              want.blocks), cut
        con.close()
    con = _rewrite_accesses(db, "SELECT * FROM accesses WHERE NOT (req_id = 5 AND pos = 0)")
    with pytest.raises(KvctraceError, match="does not hold"):
        load_store(con, str(db))
    with pytest.raises(KvctraceError, match="does not hold"):
        list(accesses.iter_access_chunks(con, 300))
    con.close()


@pytest.mark.parametrize("size", [1, 50, 1000, 1 << 22])
def test_access_chunks_cover_the_trace(tmp_path, size):
    """accesses.iter_access_chunks: whole requests, in order, every access once (a stored table in
    insertion order, and one whose rows are shuffled: read through a sort)."""
    path = write_trace(tmp_path / "t.jsonl", "mooncake", 300, seed=3)
    tr = open_trace(path, db=tmp_path / "t.duckdb")
    for shuffled in (False, True):
        if shuffled:
            tr.con.close()
            tr.con = _rewrite_accesses(tmp_path / "t.duckdb", "SELECT * FROM accesses ORDER BY hash(req_id * 7919 + pos)")
        chunks = list(accesses.iter_access_chunks(tr.con, size))
        assert chunks[0].first_request == 0
        for a, b in zip(chunks, chunks[1:]):
            assert b.first_request == a.first_request + a.offsets.shape[0] - 1
        offsets = np.concatenate([[0]] + [c.offsets[1:] + sum(x.blocks.shape[0] for x in chunks[:i])
                                          for i, c in enumerate(chunks)])
        assert np.array_equal(offsets, tr.offsets)
        assert np.array_equal(np.concatenate([c.blocks for c in chunks]), tr.blocks)
        assert all(c.blocks.shape[0] == c.offsets[-1] for c in chunks)
        if size > 1:
            assert all(c.offsets[-1] >= size or c is chunks[-1] for c in chunks)
    tr.con.close()


@pytest.mark.parametrize("size", [None, 1, 50, 1000])
def test_trace_access_chunks_in_memory_and_from_a_store(tmp_path, size):
    """Trace.access_chunks, what the analyses read: chunks of whole requests covering the
    trace once, in order, from the arrays in memory and from a store opened in chunks (which
    reads its ids whole only when ``blocks`` is asked for); a lengths-only count is 0."""
    from kvctrace.store import load_store
    path = write_trace(tmp_path / "t.jsonl", "mooncake", 120, seed=5)
    want = open_trace(path, db=tmp_path / "t.duckdb")
    want.con.close()
    stored = load_store(duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True), str(path), chunked=True)
    assert "_blocks" in stored.__dict__ and stored.__dict__["_blocks"] is None   # nothing read yet
    assert stored.n_accesses == int(want.offsets[-1])
    for tr in (open_trace(path), stored):
        tr.chunk_accesses = size
        chunks = list(tr.access_chunks())
        assert [c.first_request for c in chunks] == list(np.cumsum([0] + [c.offsets.shape[0] - 1 for c in chunks[:-1]]))
        assert sum(c.offsets.shape[0] - 1 for c in chunks) == want.n_requests
        assert np.array_equal(np.concatenate([c.blocks for c in chunks]), want.blocks)
        assert all(c.blocks.shape[0] == c.offsets[-1] for c in chunks)
        if size is None and tr is not stored:
            assert len(chunks) == 1 and chunks[0].blocks is tr.blocks   # the arrays themselves
    assert np.array_equal(stored.blocks, want.blocks)   # read whole on first use
    stored.con.close()


# ---- JSON arrays (.json): cut between top-level elements (kernels/json_array.py) ------------

def array_of(items: list[bytes], separators: list[bytes], end: bytes = b"\n") -> bytes:
    """``[`` + the items joined by the separators (cycled) + ``]``."""
    text = [b"["]
    for i, item in enumerate(items):
        text.append((separators[i % len(separators)] if i else b"") + item)
    return b"".join(text) + b"]" + end


@st.composite
def array_items(draw, fmt: str, min_size: int, max_size: int) -> list[bytes]:
    """Valid records of ``fmt`` as JSON text, up to two of them with one field mutated."""
    recs = draw(st.lists(RECORDS[fmt], min_size=min_size, max_size=max_size))
    items = [line_of(pairs_of(r)) for r in recs]
    for i in draw(st.lists(st.integers(0, len(items) - 1), max_size=2, unique=True)):
        items[i] = draw(mutated_line(recs[i]))
    return items


SEPARATORS = st.lists(st.sampled_from([b",", b", ", b",\n", b"\n,\n  ", b" ,\r\n\t"]), min_size=1, max_size=3)


@fuzzed_files
def test_fuzzed_json_array_streamed_equals_whole(tmp_path_factory, small_chunks, fmt, data, container, skip, size):
    """Valid records, some with one field mutated (a bad record, or bad JSON: then the
    one-line error), between varied whitespace."""
    small_chunks(size)
    items = data.draw(array_items(fmt, 1, 12))
    text = array_of(items, data.draw(SEPARATORS), data.draw(st.sampled_from([b"", b"\n", b" \r\n"])))
    name, payload = contain(text, container)
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / name.replace(".jsonl", ".json")
    path.write_bytes(payload)
    same_as_whole(path, folder, format=fmt if data.draw(st.booleans()) else None, skip_bad_lines=skip)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["mooncake", "bailian"]), data=st.data(), skip=st.booleans())
def test_fuzzed_json_array_streamed_meets_the_oracle(tmp_path_factory, small_chunks, fmt, data, skip):
    """The streamed read of an array (in memory) against the independent oracle of
    tests/fuzz_oracle.py, as tests/test_fuzz_containers.py holds the whole-file read to it."""
    from . import fuzz_oracle as oracle
    seen = small_chunks(data.draw(st.sampled_from([1, 64, 300])))
    items = data.draw(array_items(fmt, 2, 10))
    text = array_of(items, data.draw(SEPARATORS))
    path = tmp_path_factory.mktemp("oracle") / "t.json"
    path.write_bytes(text)
    before = seen["chunks"]
    tr = oracle.check(path, oracle.expect_json_array(text, fmt), format=fmt, skip_bad_lines=skip, unit="record",
                      run_analyses=False)
    if tr is not None and len(text) > 2 * source.CHUNK_BYTES:
        assert seen["chunks"] > before  # it was streamed


TRICKY = [json.dumps(text, ensure_ascii=ascii) for text in
          ("a,b", "[", "]", '{"x": [1, 2], "y": "]"}', "back\\slash\\", '"', ",,]]}}{{[[", "\\", '\\"],[{',
           "\u00e9\u4e2d\U0001f600,]") for ascii in (True, False)] + [r'"\u005b\u005d\u002c\u0022"']


def tricky_array(n: int, fmt: str = "mooncake") -> bytes:
    """A pretty-printed array whose records hold strings of brackets, commas, braces, escaped
    quotes and backslashes (and multi-byte characters) in an extra field, and nested lists."""
    from kvctrace.synth import write_trace
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        lines = write_trace(f"{tmp}/t.jsonl", fmt, n, seed=7).read_bytes().splitlines()
    items = []
    for i, line in enumerate(lines):
        note = TRICKY[i % len(TRICKY)].encode()
        items.append(line[:-1] + b', "note": ' + note + b', "nested": [[{"k": "]"}], [], {}]}')
    return array_of(items, [b",\n  ", b",", b"\n,"])


@pytest.mark.parametrize("size", [1, 7, 64, 333, 4096])
def test_json_array_elements_across_chunk_edges(tmp_path, small_chunks, size):
    """Chunk edges fall inside strings, after backslashes, between a character's bytes and
    between elements: the streamed store is the whole-file one, and the array was streamed."""
    seen = small_chunks(size)
    path = tmp_path / "t.json"
    path.write_bytes(tricky_array(60))
    rows, arrays = same_as_whole(path, tmp_path)
    assert len(rows[0]) == 60 and seen["chunks"] > 2
    gz = tmp_path / "t.json.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    gz_rows, gz_arrays = same_as_whole(gz, tmp_path)
    assert gz_rows[:3] == rows[:3] and gz_arrays == arrays  # the meta differs: sha256, compression


def test_element_ends_across_any_cut():
    """The scan cut into two pieces anywhere finds the same last comma and close as in one."""
    from kvctrace.kernels.json_array import element_ends, new_state
    text = tricky_array(6)
    body = np.frombuffer(text, np.uint8)[1:]
    whole_comma, whole_close = element_ends(body, new_state())
    assert whole_close == len(text) - 3  # the closing bracket, before "]\n"... of body: "]" then "\n"
    for cut in range(whole_close + 1):
        state = new_state()
        comma, close = element_ends(body[:cut], state)
        assert close == -1
        comma2, close2 = element_ends(body[cut:], state)
        assert close2 + cut == whole_close
        assert (comma2 + cut if comma2 >= 0 else comma) == whole_comma


def naive_element_ends(text: str) -> tuple[int, int]:
    """The slow reference of ``kernels.json_array.element_ends`` for a valid JSON array:
    Python's json decodes the elements one by one; returns (byte position of the last comma
    between elements, of the closing bracket), counted in the bytes after the opening bracket."""
    decoder = json.JSONDecoder()
    i, last_comma = text.index("[") + 1, -1

    def skip(i):
        while text[i] in " \t\r\n":
            i += 1
        return i
    i = skip(i)
    if text[i] != "]":
        while True:
            _, i = decoder.raw_decode(text, i)
            i = skip(i)
            if text[i] == "]":
                break
            assert text[i] == ","
            last_comma = len(text[:i].encode()) - 1
            i = skip(i + 1)
    return last_comma, len(text[:i].encode()) - 1


_JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                            max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(_JSON_VALUES, max_size=6), st.booleans(), st.sampled_from([None, 0, 1, 2]), st.data())
def test_element_ends_equal_the_naive_json_reference(values, ascii_only, indent, data):
    """The scan over any pieces of an array finds the last comma between its elements and its
    closing bracket where Python's json decoder does."""
    from kvctrace.kernels.json_array import element_ends, new_state
    text = json.dumps(values, ensure_ascii=ascii_only, indent=indent)
    want = naive_element_ends(text)
    body = np.frombuffer(text.encode(), np.uint8)[1:]
    cuts = sorted(data.draw(st.lists(st.integers(0, body.shape[0]), max_size=4)))
    state, comma, close, start = new_state(), -1, -1, 0
    for end in cuts + [body.shape[0]]:
        c, close = element_ends(body[start:end], state)
        comma = c + start if c >= 0 else comma
        if close >= 0:
            close += start
            break
        start = end
    assert (comma, close) == want


def test_json_array_bad_records_in_later_chunks(tmp_path, small_chunks):
    """Bad records (a bad value, a repeated key, NaN, not an object) far from the first chunk: the same error naming the record, and with
    --skip-bad-lines the same rejects (their JSON text), numbered in the file."""
    small_chunks(500)
    from kvctrace.synth import write_trace
    recs = [json.loads(line) for line in write_trace(tmp_path / "t.jsonl", "mooncake", 200, seed=1).read_bytes()
            .splitlines()]
    items = [json.dumps(r).encode() for r in recs]
    items[120] = b'{"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, "x"]}'
    items[140] = items[140][:-1] + b', "timestamp": 3}'
    items[150] = items[150].replace(b'"output_length": ', b'"output_length": NaN, "x": ')
    items[170] = b"[1, 2]"
    path = tmp_path / "bad.json"
    path.write_bytes(array_of(items, [b", "]))
    error = same_as_whole(path, tmp_path)
    assert "record 121" in error and "hash_ids" in error
    rows, _ = same_as_whole(path, tmp_path, skip_bad_lines=True)
    assert [r[0] for r in rows[4]] == [121, 141, 151, 171]
    reasons = [r[2] for r in rows[4]]
    assert "more than once" in reasons[1] and "NaN" in reasons[2] and "JSON list" in reasons[3]
    assert json.loads(rows[4][0][1])["hash_ids"] == [1, "x"]  # the rejected record's JSON text


def test_json_array_huge_number_and_deep_nesting(tmp_path, small_chunks):
    """strict_json's limits hold in a later chunk: the whole text's one-line error, also with
    --skip-bad-lines (they stop the parse)."""
    small_chunks(300)
    from kvctrace.synth import write_trace
    items = write_trace(tmp_path / "t.jsonl", "mooncake", 100, seed=1).read_bytes().splitlines()
    for name, bad in (("digits", b'{"timestamp": 1' + b"0" * 5000 + b"}"), ("deep", b"[" * 5000 + b"]" * 5000)):
        items_bad = items[:80] + [bad] + items[80:]
        path = tmp_path / f"{name}.json"
        path.write_bytes(array_of(items_bad, [b",\n"]))
        for skip in (False, True):
            error = same_as_whole(path, tmp_path, skip_bad_lines=skip)
            assert "4300 digits" in error, error


@pytest.mark.parametrize("container", ["plain", "gz", "zst"])
def test_json_array_truncated_anywhere(tmp_path, small_chunks, container):
    """A file cut anywhere: the same one-line error as the whole-file read (the array is not
    closed; a damaged stream), or, with --skip-bad-lines and a stream cut after the array's end,
    the same store and reject."""
    small_chunks(97)
    text = tricky_array(12)
    for cut in sorted({len(text) - 1, len(text) - 2, len(text) // 2, 3, 40, 777, 1200, 2000}):
        name, payload = contain(text if container != "plain" else text[:cut], container)
        payload = payload[:max(cut * len(payload) // len(text), 10)] if container != "plain" else payload
        path = tmp_path / f"c{cut}.json{name[len('t.jsonl'):]}"
        path.write_bytes(payload)
        for skip in (False, True):
            got = same_as_whole(path, tmp_path, skip_bad_lines=skip)
            if not isinstance(got, str):  # cut after the array: its final newline, a stream's end marker
                assert len(got[0][0]) == 12 and cut >= len(text) - 2
                continue
            assert isinstance(got, str) and "\n" not in got and str(path) in got
            assert ("malformed JSON" in got and ", line " in got) or "stream is truncated" in got, got


def test_json_array_damaged_stream_after_its_end(tmp_path, small_chunks):
    """A gzip stream cut in its trailer, after the array and its last newline: with
    --skip-bad-lines the records and the (empty) cut line, as the whole-file read."""
    small_chunks(100)
    text = tricky_array(20)
    path = tmp_path / "t.json.gz"
    path.write_bytes(gzip.compress(text)[:-4])
    assert "stream is truncated" in same_as_whole(path, tmp_path)
    rows, _ = same_as_whole(path, tmp_path, skip_bad_lines=True)
    assert len(rows[0]) == 20 and rows[4][0][0] == text.count(b"\n") + 1


def test_json_array_errors_name_line_and_column(tmp_path, small_chunks):
    """Garbage between elements and a wrong closing bracket in a later chunk: the whole-file
    read's message, line and column."""
    small_chunks(64)
    text = tricky_array(30)
    lines = text.split(b"\n")
    assert len(lines) > 15
    for bad in (b"\n".join(lines[:10]) + b" x " + b"\n".join(lines[10:]),
                b"\n".join(lines[:10]) + b",,\n" + b"\n".join(lines[10:]),
                b"\n".join(lines[:-2]) + b"\n}\n",
                b"\n".join(lines[:10]) + b'"\xff",' + b"\n".join(lines[10:])):
        path = tmp_path / "bad.json"
        path.write_bytes(bad)
        for skip in (False, True):
            error = same_as_whole(path, tmp_path, skip_bad_lines=skip)
            assert "malformed JSON" in error or "not UTF-8" in error, error


def test_empty_and_blank_arrays(tmp_path, small_chunks):
    small_chunks(4)
    for text in (b"[" + b" " * 50 + b"]", b"\n\n  [\n\n]\n\n", b"[]" + b"\n" * 30):
        path = tmp_path / "e.json"
        path.write_bytes(text)
        assert "empty trace: no records" in same_as_whole(path, tmp_path)


def test_json_files_that_are_not_one_array_are_read_whole(tmp_path, small_chunks):
    """JSON lines named .json, one object, and an array followed by more JSON (taken for JSON
    lines by the whole-file read) keep the whole-file behaviour."""
    seen = small_chunks(200)
    from kvctrace.synth import write_trace
    lines = write_trace(tmp_path / "t.jsonl", "mooncake", 40, seed=2).read_bytes()
    for text in (lines, b"  \n" + lines, lines.splitlines()[0] + b"\n",
                 b"[" + lines.splitlines()[0] + b"]\n" + lines, b"[1, 2]\n" + lines):
        path = tmp_path / "n.json"
        path.write_bytes(text)
        for skip in (False, True):
            same_as_whole(path, tmp_path, skip_bad_lines=skip)
    assert seen["chunks"] == 0


def test_text_after_a_long_array_is_one_error(tmp_path, small_chunks):
    """An array longer than the first chunk followed by more text: the whole-file read takes
    the file for JSON lines; the streamed read, past the first chunk, names the extra text."""
    small_chunks(300)
    text = tricky_array(30)
    path = tmp_path / "x.json"
    path.write_bytes(text + b"\n  {\"timestamp\": 1}\n")
    streamed = outcome(path, db=tmp_path / "x.duckdb")
    line = text.count(b"\n") + 2
    assert streamed == (f"{path}, line {line}: malformed JSON (Extra data at column 3) "
                        "(hint: a .json trace is one array of request objects)")


def test_json_array_cli_error_is_one_line(tmp_path, small_chunks):
    import subprocess
    import sys
    text = tricky_array(400)
    path = tmp_path / "t.json"
    path.write_bytes(text[:len(text) * 2 // 3])
    env_code = ("import sys; sys.argv[0] = 'kvctrace'; import kvctrace.formats.source as s; s.CHUNK_BYTES = 4096; "
                "from kvctrace.__main__ import main; main()")
    proc = subprocess.run([sys.executable, "-c", env_code, "ingest", str(path), "--db", str(tmp_path / "t.duckdb")],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and "malformed JSON" in proc.stderr and ", line " in proc.stderr



def test_analyze_streams_a_big_store_and_matches_the_whole_read(tmp_path, monkeypatch):
    """`kvctrace analyze DB` on a store above ANALYZE_IN_CHUNKS_ABOVE reads its accesses a chunk
    at a time and never the whole id array, and writes the same summary.json as the whole read."""
    import kvctrace.commands as commands
    path = write_trace(tmp_path / "t.jsonl", "mooncake", 400, seed=11)
    db = tmp_path / "t.duckdb"
    open_trace(path, db=db).con.close()
    whole = commands.analyze(db, out=tmp_path / "whole").summary_path.read_text()
    monkeypatch.setattr(commands, "ANALYZE_IN_CHUNKS_ABOVE", 0)
    monkeypatch.setattr(accesses, "STORE_CHUNK_ACCESSES", 97)

    def whole_read(*args):
        raise AssertionError("an analysis read every block id at once")
    monkeypatch.setattr(accesses, "read_block_ids", whole_read)
    chunked = commands.analyze(db, out=tmp_path / "chunked").summary_path.read_text()
    assert chunked == whole
