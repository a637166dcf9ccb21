"""The DuckDB store and open_trace: golden numbers on the real traces, the prefix tree and CSR
kernels against tests/naive.py, tables vs arrays, db files (reuse, replace, atomic ingest),
ordering of unsorted input, coarsening and partial-block policies."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvctrace
from kvctrace import Trace, open_trace, store, tables as store_tables
from kvctrace.formats.bailian import chat_sessions
from kvctrace.kernels.hashing import hash_token_blocks
from kvctrace.kernels.tree import access_rows, gather_csr, prefix_tree, truncate_csr

from . import naive

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
MOONCAKE = DATASETS / "mooncake"
AZURE = DATASETS / "azure-llm-2023"
needs_data = pytest.mark.skipif(not MOONCAKE.is_dir(), reason="shared datasets not available")


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def mooncake_records(n=30, seed=0, block_size=512, shuffle=False):
    """Small Mooncake-style trace: a few shared prefixes, chained integer ids."""
    rng = np.random.default_rng(seed)
    prefixes = [list(range(i * 100, i * 100 + 3)) for i in range(3)]
    recs, next_id = [], 10_000
    for i in range(n):
        ids = list(prefixes[rng.integers(0, 3)][: rng.integers(1, 4)])
        extra = int(rng.integers(0, 4))
        ids += list(range(next_id, next_id + extra))
        next_id += extra
        length = (len(ids) - 1) * block_size + int(rng.integers(1, block_size + 1))
        recs.append({"timestamp": int(i * 100 if not shuffle else rng.integers(0, 2000)),
                     "input_length": length, "output_length": int(rng.integers(0, 50)), "hash_ids": ids})
    return recs


# ---- golden numbers --------------------------------------------------------------------------

@needs_data
@pytest.mark.parametrize("name, requests, accesses, unique", [
    ("conversation_trace", 12_031, 288_500, 182_790),
    ("synthetic_trace", 3_993, 121_877, 43_924),
])
def test_mooncake_golden(name, requests, accesses, unique):
    tr = open_trace(MOONCAKE / f"{name}.jsonl")
    assert (tr.format, tr.block_size) == ("mooncake", 512)
    assert (tr.n_requests, tr.n_accesses, tr.n_unique_blocks) == (requests, accesses, unique)
    assert tr.sorted_input and tr.rejected_lines == 0 and tr.has_block_ids
    counts = tr.sql("SELECT (SELECT count(*) FROM requests) r, (SELECT count(*) FROM accesses) a, "
                    "(SELECT count(*) FROM blocks) b").row(0)
    assert counts == (requests, accesses, unique)
    # Mooncake ids are already first-appearance integers: dense ids equal them.
    raw = np.concatenate([json.loads(line)["hash_ids"] for line in (MOONCAKE / f"{name}.jsonl").open()])
    assert np.array_equal(tr.blocks, raw)
    assert tr.ts[0] == 0.0 and np.all(np.diff(tr.ts) >= 0)


@needs_data
@pytest.mark.parametrize("name, requests", [("AzureLLMInferenceTrace_code", 8_819),
                                            ("AzureLLMInferenceTrace_conv", 19_366)])
def test_azure_lengths_golden(name, requests):
    tr = open_trace(AZURE / f"{name}.csv")
    assert tr.format == "lengths" and not tr.has_block_ids
    assert tr.n_requests == requests and tr.n_accesses == 0 and tr.offsets.shape == (requests + 1,)
    assert tr.ts[0] == 0.0 and np.all(np.diff(tr.ts) >= 0)
    first = tr.sql("SELECT input_len, output_len, line_no FROM requests ORDER BY req_id LIMIT 1").row(0)
    assert first[2] == 2  # line 1 is the CSV header
    if name.endswith("code"):
        assert first[:2] == (4808, 10)
        assert tr.ts[1] == pytest.approx(0.052, abs=1e-6)  # 18:17:04.0319600 - 18:17:03.9799600


@needs_data
def test_tables_match_arrays_and_prefix_tree():
    tr = open_trace(MOONCAKE / "synthetic_trace.jsonl")
    acc = tr.accesses()
    assert np.array_equal(acc["block"].to_numpy(), tr.blocks)
    req = tr.requests()
    assert np.array_equal(np.concatenate([[0], np.cumsum(req["n_blocks"].to_numpy())]), tr.offsets)
    assert np.array_equal(req["ts"].to_numpy(), tr.ts)
    blocks = tr.blocks_table()
    lists = [tr.blocks[tr.offsets[r]:tr.offsets[r + 1]].tolist() for r in range(tr.n_requests)]
    expected = naive.naive_prefix_tree(lists, tr.input_len.tolist(), tr.block_size)
    got = list(zip(blocks["block"].to_list(), blocks["first_req"].to_list(), blocks["parent_block"].to_list(),
                   blocks["depth"].to_list(), blocks["tokens"].to_list()))
    assert got == [row[:5] for row in expected]
    # Partial last blocks hold the remainder of input_length.
    assert blocks["tokens"].sum() <= int(tr.input_len.sum())


# ---- kernels against naive -------------------------------------------------------------------

lists_strategy = st.lists(st.lists(st.integers(0, 30), max_size=8), min_size=1, max_size=25)


def to_csr(lists):
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
    flat = np.array([x for ids in lists for x in ids], np.int64)
    return flat, offsets


def from_csr(values, offsets):
    return [values[offsets[r]:offsets[r + 1]].tolist() for r in range(offsets.shape[0] - 1)]


@settings(max_examples=40, deadline=None)
@given(lists_strategy, st.randoms(use_true_random=False))
def test_gather_and_truncate_match_naive(lists, rnd):
    flat, offsets = to_csr(lists)
    order = list(range(len(lists)))
    rnd.shuffle(order)
    got, got_off = gather_csr(flat, offsets, np.array(order))
    assert from_csr(got, got_off) == naive.naive_gather_csr(lists, order)
    keep = [rnd.randint(0, 9) for _ in lists]
    got, got_off = truncate_csr(flat, offsets, np.array(keep))
    assert from_csr(got, got_off) == naive.naive_truncate_csr(lists, keep)
    req, pos = access_rows(offsets)
    assert req.tolist() == [r for r, ids in enumerate(lists) for _ in ids]
    assert pos.tolist() == [p for ids in lists for p in range(len(ids))]


@settings(max_examples=40, deadline=None)
@given(lists_strategy, st.integers(1, 64), st.randoms(use_true_random=False))
def test_prefix_tree_matches_naive(lists, block_size, rnd):
    flat, offsets = to_csr(lists)
    input_len = [max(0, len(ids) * block_size - rnd.randint(0, block_size)) for ids in lists]
    tr = Trace.from_arrays(offsets, flat, input_len=input_len, block_size=block_size)
    expected = naive.naive_prefix_tree(lists, input_len, block_size)
    blocks = tr.blocks_table()
    got = list(zip(blocks["block"].to_list(), blocks["first_req"].to_list(), blocks["parent_block"].to_list(),
                   blocks["depth"].to_list(), blocks["tokens"].to_list(), blocks["raw_hash"].to_list()))
    assert got == expected
    # and the kernel directly
    dense = np.array([{raw: i for i, *_, raw in expected}[x] for x in flat.tolist()], np.int64)
    first_req, parent, depth, tokens, first_access = prefix_tree(dense, offsets, len(expected),
                                                                 np.array(input_len), block_size)
    assert first_req.tolist() == [row[1] for row in expected]
    assert parent.tolist() == [-1 if row[2] is None else row[2] for row in expected]
    assert flat[first_access].tolist() == [row[5] for row in expected]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 40)), min_size=1, max_size=30))
def test_chat_sessions_match_naive(spec):
    # chat ids 0..n-1 in file order; each request's parent is none, an earlier chat, or absent (>= 1000)
    chat = np.arange(len(spec), dtype=np.int64)
    parents = []
    for i, (kind, x) in enumerate(spec):
        if kind == 0 or i == 0:
            parents.append(-1 if x % 2 else 1000 + x)
        else:
            parents.append(x % i)
    parent_row, session = chat_sessions(chat, np.array(parents, np.int64))
    want_parents, want_sessions = naive.naive_chat_sessions(chat.tolist(), parents)
    assert parent_row.tolist() == want_parents
    assert session.tolist() == want_sessions


# ---- Trace.from_arrays stays as it was -------------------------------------------------------

def test_from_arrays_contract():
    tr = Trace.from_arrays([0, 2, 5], [7, 9, 7, 9, 11], ts=[5.0, 6.5], block_size=16,
                           session_id=["a", "b"], type=["x", "y"])
    assert tr.blocks.tolist() == [0, 1, 0, 1, 2] and tr.n_unique_blocks == 3
    assert tr.ts.tolist() == [0.0, 1.5] and tr.input_len.tolist() == [32, 48]
    req = tr.requests()
    assert req["session_id"].to_list() == ["a", "b"] and req["type"].to_list() == ["x", "y"]
    assert tr.sql("SELECT count(*) AS n FROM blocks")["n"][0] == 3
    assert tr.rejects().height == 0


# ---- ordering ----------------------------------------------------------------------------------

def test_unsorted_input_is_sorted_by_timestamp_then_line(tmp_path):
    recs = mooncake_records(40, seed=3, shuffle=True)
    recs[5]["timestamp"] = recs[6]["timestamp"] = 7  # a tie: line order decides
    tr = open_trace(write_jsonl(tmp_path / "u.jsonl", recs))
    assert not tr.sorted_input and tr.meta["sorted_input"] == "false"
    order = sorted(range(len(recs)), key=lambda i: (recs[i]["timestamp"], i))
    req = tr.requests()
    assert req["line_no"].to_list() == [i + 1 for i in order]
    t0 = recs[order[0]]["timestamp"]
    assert req["ts"].to_list() == pytest.approx([(recs[i]["timestamp"] - t0) / 1000 for i in order])
    # The accesses follow their requests: request k's raw ids are those of line order[k].
    dense_of = {}
    for i in order:
        for h in recs[i]["hash_ids"]:
            dense_of.setdefault(h, len(dense_of))
    assert tr.blocks.tolist() == [dense_of[h] for i in order for h in recs[i]["hash_ids"]]
    assert tr.info()["sorted_input"] is False


# ---- db files ----------------------------------------------------------------------------------

def test_db_file_written_reopened_and_reused(tmp_path, monkeypatch):
    trace = write_jsonl(tmp_path / "t.jsonl", mooncake_records(25))
    db = tmp_path / "t.duckdb"
    first = open_trace(trace, db=db)
    arrays = (first.offsets.copy(), first.blocks.copy(), first.ts.copy())
    first.con.close()
    assert db.exists()
    # Opening the database directly: no source parsing at all.
    monkeypatch.setattr(store, "read_columns", lambda *a, **k: pytest.fail("re-ingested"))
    again = open_trace(db)
    assert again.format == "mooncake" and again.meta["sha256"] == first.meta["sha256"]
    for a, b in zip(arrays, (again.offsets, again.blocks, again.ts)):
        assert np.array_equal(a, b)
    again.con.close()
    # Same trace and options into the same db: reused, not re-ingested.
    reused = open_trace(trace, db=db)
    assert np.array_equal(reused.blocks, arrays[1])
    reused.con.close()
    monkeypatch.undo()
    # Other options: the store is replaced (one transaction) with the new ingest.
    coarse = open_trace(trace, db=db, coarsen=2)
    assert coarse.block_size == 1024 and coarse.meta["coarsen"] == "2"
    coarse.con.close()
    con = duckdb.connect(str(db))
    assert dict(con.sql("SELECT key, value FROM meta").fetchall())["block_size"] == "1024"
    con.close()
    # The duckdb CLI view: plain tables.
    con = duckdb.connect(str(db), read_only=True)
    assert {r[0] for r in con.sql("SHOW TABLES").fetchall()} == {"requests", "accesses", "blocks", "meta", "rejects"}
    con.close()


def test_opening_a_foreign_duckdb_is_an_error(tmp_path):
    db = tmp_path / "other.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE x(a INT)")
    con.close()
    with pytest.raises(kvctrace.KvctraceError, match="not a kvctrace database"):
        open_trace(db)


@pytest.mark.parametrize("on_disk", [False, True])
def test_failed_ingest_leaves_no_tables(tmp_path, on_disk):
    con = duckdb.connect(str(tmp_path / "x.duckdb") if on_disk else ":memory:")
    good = pa.table({"a": [1]})
    tables = {name: good for name in store_tables.TABLES}  # wrong columns: the inserts fail part-way
    tables["requests"] = pa.table({
        "req_id": [0], "ts": [0.0], "input_len": [1], "output_len": [1], "n_blocks": [0],
        "session_id": pa.nulls(1, pa.string()), "parent_id": pa.nulls(1, pa.int64()),
        "turn": pa.nulls(1, pa.int64()), "type": pa.nulls(1, pa.string()), "line_no": [1]})
    with pytest.raises(duckdb.Error):
        store_tables.write_tables(con, tables, replace=False)
    assert con.sql("SELECT count(*) FROM duckdb_tables()").fetchall()[0][0] == 0
    con.close()


# ---- re-blocking -------------------------------------------------------------------------------

def token_records(n=20, seed=0, vocab=5):
    rng = np.random.default_rng(seed)
    shared = rng.integers(0, vocab, 40).tolist()
    recs = []
    for i in range(n):
        toks = shared[: int(rng.integers(0, 40))] + rng.integers(0, vocab, int(rng.integers(0, 30))).tolist()
        recs.append({"timestamp": float(i), "token_ids": toks, "output_length": 3, "session_id": f"s{i % 4}"})
    return recs


@pytest.mark.parametrize("partial", ["include", "drop"])
@pytest.mark.parametrize("k", [2, 4])
def test_coarsen_equals_hashing_at_the_coarse_size(tmp_path, partial, k):
    trace = write_jsonl(tmp_path / "tok.jsonl", token_records())
    fine = open_trace(trace, block_size=4, coarsen=k, partial_block=partial)
    direct = open_trace(trace, block_size=4 * k, partial_block=partial)
    assert fine.block_size == direct.block_size == 4 * k
    assert np.array_equal(fine.offsets, direct.offsets)
    assert np.array_equal(fine.blocks, direct.blocks)  # same prefix classes -> same dense ids
    assert fine.blocks_table()["tokens"].to_list() == direct.blocks_table()["tokens"].to_list()


@needs_data
def test_coarsen_mooncake_conversation():
    tr = open_trace(MOONCAKE / "conversation_trace.jsonl", coarsen=4)
    assert tr.block_size == 2048
    expected = -(-tr.input_len // 2048)
    assert np.array_equal(np.diff(tr.offsets), expected)
    assert tr.n_unique_blocks < 182_790


def test_partial_drop_keeps_full_blocks_only(tmp_path):
    trace = write_jsonl(tmp_path / "m.jsonl", mooncake_records(30, seed=1, block_size=16))
    inc = open_trace(trace, block_size=16)
    drop = open_trace(trace, block_size=16, partial_block="drop")
    assert np.array_equal(np.diff(drop.offsets), drop.input_len // 16)
    assert np.array_equal(np.diff(inc.offsets), -(-inc.input_len // 16))
    assert set(drop.blocks_table()["tokens"].to_list()) <= {16}


def test_tokens_trace_hashes_blocks(tmp_path):
    recs = token_records()
    tr = open_trace(write_jsonl(tmp_path / "tok.jsonl", recs), block_size=8)
    assert tr.format == "tokens"
    flat = np.array([t for r in recs for t in r["token_ids"]], np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(r["token_ids"]) for r in recs])])
    ids, id_off = hash_token_blocks(flat, offsets, 8, "include")
    assert np.array_equal(id_off, tr.offsets)
    raw = tr.blocks_table()["raw_hash"].to_numpy()
    assert np.array_equal(raw[tr.blocks], ids)
    assert tr.requests()["session_id"].to_list() == [r["session_id"] for r in recs]
    assert tr.input_len.tolist() == [len(r["token_ids"]) for r in recs]


def test_bailian_rechains_and_builds_sessions(tmp_path):
    # Content hash 5 follows two different prefixes: two different blocks once rechained.
    recs = [
        {"chat_id": 10, "parent_chat_id": -1, "timestamp": 0.5, "input_length": 32, "output_length": 4,
         "type": "text", "turn": 1, "hash_ids": [1, 5]},
        {"chat_id": 11, "parent_chat_id": 10, "timestamp": 1.0, "input_length": 40, "output_length": 4,
         "type": "text", "turn": 2, "hash_ids": [1, 5, 6]},
        {"chat_id": 12, "parent_chat_id": -1, "timestamp": 1.5, "input_length": 20, "output_length": 2,
         "type": "image", "turn": 1, "hash_ids": [2, 5]},
    ]
    tr = open_trace(write_jsonl(tmp_path / "b.jsonl", recs))
    assert (tr.format, tr.block_size) == ("bailian", 16)
    assert tr.blocks.tolist() == [0, 1, 0, 1, 2, 3, 4]
    req = tr.requests()
    assert req["session_id"].to_list() == ["10", "10", "12"]
    assert req["parent_id"].to_list() == [None, 0, None]
    assert req["turn"].to_list() == [1, 2, 1] and req["type"].to_list() == ["text", "text", "image"]
    assert tr.ts.tolist() == [0.0, 0.5, 1.0]


@needs_data
def test_synth_formats_agree_after_ingest(tmp_path):
    """One synthetic workload in three formats: tokens hashed at 512 and bailian rechained and
    coarsened by 32 give the same prefix classes as the mooncake ids."""
    synth = pytest.importorskip("kvctrace.synth")
    paths = {fmt: synth.write_trace(tmp_path / f"w.{fmt}.jsonl", format=fmt, n_requests=150, seed=7)
             for fmt in ("mooncake", "bailian", "tokens")}
    moon = open_trace(paths["mooncake"])
    tok = open_trace(paths["tokens"], block_size=512)
    bai = open_trace(paths["bailian"], coarsen=32)
    assert moon.format == "mooncake" and tok.format == "tokens" and bai.format == "bailian"
    for other in (tok, bai):
        assert np.array_equal(other.offsets, moon.offsets)
        assert np.array_equal(other.blocks, moon.blocks)


def test_db_guards(tmp_path):
    trace = write_jsonl(tmp_path / "t.jsonl", mooncake_records(5))
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE requests(a INT)")
    con.close()
    with pytest.raises(kvctrace.KvctraceError, match="did not write"):
        open_trace(trace, db=foreign)
    con = duckdb.connect(str(foreign))
    assert con.sql("SELECT count(*) FROM requests").fetchall()[0][0] == 0  # untouched
    con.close()
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello")
    with pytest.raises(kvctrace.KvctraceError, match="not a DuckDB database"):
        open_trace(trace, db=not_db)
    db = tmp_path / "t.duckdb"
    open_trace(trace, db=db).con.close()
    with pytest.raises(kvctrace.KvctraceError, match="--coarsen apply when a trace file is ingested"):
        open_trace(db, coarsen=2)


def naive_ingest(records):
    """Reference ingest of Mooncake records: order by (timestamp, line), seconds from the
    first request, first-appearance dense ids."""
    order = sorted(range(len(records)), key=lambda i: (records[i]["timestamp"], i))
    dense = {}
    blocks = [dense.setdefault(h, len(dense)) for i in order for h in records[i]["hash_ids"]]
    t0 = records[order[0]]["timestamp"]
    return ([i + 1 for i in order], [(records[i]["timestamp"] - t0) / 1000 for i in order], blocks,
            [len(records[i]["hash_ids"]) for i in order])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.lists(st.integers(0, 12), max_size=5), st.integers(1, 512)),
                min_size=1, max_size=15))
def test_open_trace_matches_naive_ingest(tmp_path_factory, spec):
    records = [{"timestamp": ts, "input_length": (len(ids) - 1) * 512 + tail if ids else 0,
                "output_length": 1, "hash_ids": ids} for ts, ids, tail in spec]
    path = write_jsonl(tmp_path_factory.mktemp("ni") / "t.jsonl", records)
    tr = open_trace(path)
    line_no, ts, blocks, counts = naive_ingest(records)
    assert tr.requests()["line_no"].to_list() == line_no
    assert tr.ts.tolist() == pytest.approx(ts)
    assert tr.blocks.tolist() == blocks and np.diff(tr.offsets).tolist() == counts
    assert tr.sorted_input == (line_no == sorted(line_no))


def test_unsorted_bailian_keeps_parent_links(tmp_path):
    recs = [{"chat_id": c, "parent_chat_id": p, "timestamp": t, "input_length": 16, "output_length": 1,
             "type": "text", "turn": 1, "hash_ids": [c]}
            for c, p, t in [(1, -1, 5.0), (2, 1, 6.0), (3, -1, 1.0), (4, 3, 2.0), (5, 2, 0.5)]]
    tr = open_trace(write_jsonl(tmp_path / "b.jsonl", recs))
    assert not tr.sorted_input
    req = tr.requests()
    line_of_req = dict(zip(req["req_id"].to_list(), req["line_no"].to_list()))
    chat_of_line = {i + 1: r["chat_id"] for i, r in enumerate(recs)}
    parent_of_chat = {r["chat_id"]: r["parent_chat_id"] for r in recs}
    for rid, parent, line in zip(req["req_id"].to_list(), req["parent_id"].to_list(), req["line_no"].to_list()):
        want = parent_of_chat[chat_of_line[line]]
        assert (parent is None and want == -1) or chat_of_line[line_of_req[parent]] == want
    sessions = dict(zip((chat_of_line[x] for x in req["line_no"].to_list()), req["session_id"].to_list()))
    assert sessions == {1: "1", 2: "1", 5: "1", 3: "3", 4: "3"}


def test_failed_replacement_keeps_the_previous_store(tmp_path, monkeypatch):
    trace = write_jsonl(tmp_path / "t.jsonl", mooncake_records(12))
    db = tmp_path / "t.duckdb"
    before = open_trace(trace, db=db)
    blocks = before.blocks.copy()
    before.con.close()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt  # interrupted in the middle of writing the new tables

    monkeypatch.setattr(store_tables, "prefix_tree", fail)
    with pytest.raises(KeyboardInterrupt):
        open_trace(trace, db=db, coarsen=2)
    monkeypatch.undo()
    after = open_trace(db)
    assert after.meta["coarsen"] == "1" and np.array_equal(after.blocks, blocks)
    assert after.sql("SELECT count(*) AS n FROM blocks")["n"][0] == after.n_unique_blocks


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-2**63, 2**63 - 1), max_size=60), st.randoms(use_true_random=False))
def test_first_values_matches_naive(raw, rnd):
    """The raw id of each dense id (the blocks table's raw_hash), repeats included."""
    from kvctrace.kernels.hashing import dense_ids
    from kvctrace.kernels.tree import first_values
    raw = raw + [rnd.choice(raw) for _ in range(len(raw))] if raw else raw
    ids = np.array(raw, np.int64)
    dense, n_unique = dense_ids(ids)
    assert first_values(dense, ids, n_unique).tolist() == naive.naive_first_values(dense.tolist(), raw)


def test_read_tree_in_any_row_order():
    """The prefix analysis reads the blocks table back (tables.read_tree): rows in any order
    give the same per-block arrays; a table that does not hold the meta's blocks is an error."""
    from kvctrace.tables import read_tree
    lists = [[1, 2, 3], [1, 2, 4], [5], [1, 6, 7, 8]]
    offsets = np.cumsum([0] + [len(x) for x in lists])
    tr = Trace.from_arrays(offsets, [b for x in lists for b in x], input_len=[40, 35, 3, 60], block_size=16)
    want = read_tree(tr.con, tr.n_unique_blocks)
    table = tr.blocks_table()
    assert want["parent"].tolist() == table["parent_block"].fill_null(-1).to_list()
    assert want["tokens"].tolist() == table["tokens"].to_list() == [16, 16, 8, 3, 3, 16, 16, 12]
    shuffled = table.sample(fraction=1.0, shuffle=True, seed=3).to_arrow()
    assert shuffled.column("block").to_pylist() != list(range(tr.n_unique_blocks))
    con = duckdb.connect()
    con.register("shuffled", shuffled)
    con.execute("CREATE TABLE blocks AS SELECT * FROM shuffled")
    got = read_tree(con, tr.n_unique_blocks)
    for name, values in want.items():
        assert np.array_equal(got[name], values), name
    with pytest.raises(kvctrace.KvctraceError, match="blocks table"):
        read_tree(con, tr.n_unique_blocks + 1)


def test_request_extras_are_declared_once_and_every_store_has_them():
    """The request columns after ``line_no`` are exactly ``tables.REQUEST_EXTRAS`` (names, order,
    DuckDB types) in every store; a reader column not declared there is refused."""
    from kvctrace.errors import KvctraceError
    from kvctrace.tables import REQUEST_EXTRAS, request_extras
    trace = Trace.from_arrays(np.array([0, 2, 3]), np.array([5, 6, 5]))
    described = trace.sql("DESCRIBE requests")
    names, types = described["column_name"].to_list(), described["column_type"].to_list()
    start = names.index("line_no") + 1
    assert names[start:] == list(REQUEST_EXTRAS)
    assert types[start:] == [duck for _, duck in REQUEST_EXTRAS.values()]
    assert trace.sql("SELECT count(*) AS n FROM requests WHERE model IS NULL AND tokens IS NULL")["n"][0] == 2
    with pytest.raises(KvctraceError, match="not declared"):
        request_extras({"no_such_column": [1, 2]}, 2)


def test_in_memory_views_equal_the_tables_written_on_first_use():
    """An in-memory store answers the analyses' SQL from views over its Arrow data (the fixed
    columns typed as queries/store_create_tables.sql declares them: ``REQUEST_COLUMNS``) and
    writes its five tables only when the connection is used; views and tables agree."""
    from kvctrace.tables import REQUEST_COLUMNS
    trace = Trace.from_arrays(np.array([0, 2, 3, 3]), np.array([5, 6, 5]), ts=[0.0, 1.0, 2.5],
                              session_id=["a", None, "b"])
    assert trace.tables_pending
    con = trace.connection(all_tables=False)
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'kvctrace'").fetchall()[0][0] == 0
    view = {name: trace.request_sql(f"SELECT * FROM {name}") for name in ("requests", "meta", "rejects")}
    view_types = trace.request_sql("DESCRIBE requests")
    assert trace.sql("SELECT count(*) AS n FROM accesses")["n"][0] == 3   # first use: the tables are written
    assert not trace.tables_pending
    assert trace.sql("SELECT count(*) AS n FROM duckdb_tables() WHERE database_name = 'kvctrace'")["n"][0] == 5
    table_types = trace.sql("DESCRIBE requests")
    assert view_types["column_name"].to_list() == table_types["column_name"].to_list()
    assert view_types["column_type"].to_list() == table_types["column_type"].to_list()
    assert dict(zip(table_types["column_name"], table_types["column_type"])).items() >= REQUEST_COLUMNS.items()
    for name, frame in view.items():
        assert trace.sql(f"SELECT * FROM {name}").equals(frame), name


def test_analyses_write_no_table():
    """`kvctrace analyze` reads the arrays and the views: the in-memory tables stay pending."""
    from kvctrace.analysis import analyze
    trace = Trace.from_arrays(np.array([0, 2, 3, 5]), np.array([5, 6, 5, 6, 7]), ts=[0.0, 1.0, 2.5],
                              type=["chat", "chat", "api"], session_id=["a", "a", "b"])
    analyze(trace)
    assert trace.tables_pending
    # a copy shares the database: its first use writes the tables for both
    import dataclasses
    copy = dataclasses.replace(trace, has_block_ids=True)
    assert copy.sql("SELECT count(*) AS n FROM blocks")["n"][0] == 3 and not trace.tables_pending


def test_a_dropped_in_memory_trace_frees_its_arrays():
    """The tables an in-memory store has still to write are held for its connection only while
    that lives: dropping the trace frees its arrays (no reference cycle through the writer)."""
    import gc
    import weakref
    trace = Trace.from_arrays(np.array([0, 2, 3]), np.array([5, 6, 5]))
    blocks = weakref.ref(trace.blocks)
    del trace
    gc.collect()
    assert blocks() is None
