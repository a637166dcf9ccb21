"""Prefix structure: prefix tree and maximal shared prefixes against brute force over
prefixes (tests/naive.py) on random chained traces, session sharing, and the Mooncake traces."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from hypothesis import given, settings
from hypothesis import strategies as st

from types import SimpleNamespace

from kvctrace import open_trace
from kvctrace.analysis.prefix import analyze_prefix, prefix_tree_of
from kvctrace.errors import NoBlockIdsError
from kvctrace.kernels.prefix import session_reuse
from kvctrace.store import load_store
from kvctrace.trace import Trace

from . import naive
from .test_access import CONVERSATION, csr, mooncake_trace

# Few contents and short requests make shared prefixes (and branching) likely.
contents_st = st.lists(st.lists(st.integers(0, 2), max_size=6), min_size=1, max_size=10)
sessions_st = st.lists(st.sampled_from(["a", "b", "c", None]), min_size=10, max_size=10)


def chained_trace(contents, sessions=None, **kw):
    requests = naive.naive_chain(contents)
    offsets, blocks = csr(requests)
    if sessions is not None:
        sessions = sessions[:len(requests)]
    return requests, Trace.from_arrays(offsets, blocks, session_id=sessions, **kw)


@settings(max_examples=50, deadline=None)
@given(contents_st)
def test_tree_and_groups_match_naive(contents):
    requests, trace = chained_trace(contents)
    u = trace.n_unique_blocks
    t = prefix_tree_of(trace)  # the store's tree (blocks table) and its groups
    parent = {}
    for req in requests:
        for i, b in enumerate(req):
            parent.setdefault(b, req[i - 1] if i else -1)
    assert t.parent.tolist() == [parent[b] for b in range(u)]
    assert t.n_children.tolist() == [sum(1 for c in parent.values() if c == b) for b in range(u)]
    expected = naive.naive_shared_prefixes(requests)
    got_nodes = np.flatnonzero(t.shared).tolist()
    assert sorted(got_nodes) == sorted(expected)
    seg = t.segment_blocks
    for b in got_nodes:
        length, n, enclosing = expected[b]
        assert (t.depth[b] + 1, t.n_requests[b], seg[b]) == (length, n, length - enclosing)

    res = analyze_prefix(trace)
    # exclusive reusable blocks over all groups = every access that is not a first access
    assert int(res.groups["exclusive_reusable_blocks"].sum()) == trace.n_accesses - u
    json.dumps(res.summary())


def _reference_groups(t) -> pl.DataFrame:
    """The groups frame from the full prefix tree (``prefix_tree_of``, checked against brute
    force above): how the analysis built it before ``prefix_structure``."""
    idx = np.flatnonzero(t.shared)
    seg_blocks, seg_tokens = t.segments(idx)
    n_req = t.n_requests[idx].astype(np.int64)
    return pl.DataFrame({
        "node": idx.astype(np.int64), "root": t.root[idx].astype(np.int64),
        "prefix_blocks": t.depth[idx].astype(np.int64) + 1, "prefix_tokens": t.cum_tokens[idx].astype(np.int64),
        "n_requests": n_req, "n_ending": t.n_ending[idx].astype(np.int64),
        "n_children": t.n_children[idx].astype(np.int64), "segment_blocks": seg_blocks,
        "segment_tokens": seg_tokens, "reusable_tokens": (n_req - 1) * t.cum_tokens[idx],
        "exclusive_reusable_tokens": (n_req - 1) * seg_tokens, "exclusive_reusable_blocks": (n_req - 1) * seg_blocks,
        "first_req": t.first_req[idx].astype(np.int64), "top_level": t.shared_anc[idx] < 0,
    }).sort(["n_requests", "prefix_tokens", "node"], descending=[True, True, False])


@settings(max_examples=60, deadline=None)
@given(contents_st, st.lists(st.integers(0, 40), min_size=10, max_size=10), st.integers(1, 12))
def test_compact_structure_equals_full_tree(contents, lengths, block_size):
    """``prefix_structure`` (what the analysis runs, about 21 bytes per block) gives the groups
    and tree statistics of the full tree, with input lengths that cut blocks short."""
    requests, trace = chained_trace(contents, block_size=block_size,
                                    input_len=np.asarray(lengths[:len(contents)]))
    t = prefix_tree_of(trace)
    res = analyze_prefix(trace)
    assert res.groups.equals(_reference_groups(t))
    u = trace.n_unique_blocks
    internal = t.n_children != 0
    first_blocks = trace.blocks[trace.offsets[:-1][np.diff(trace.offsets) > 0]]
    want = {"nodes": u, "roots": int((t.parent < 0).sum()), "leaves": int((~internal).sum()),
            "internal_nodes": int(internal.sum()), "max_depth": int(t.depth.max()) if u else None,
            "mean_depth": float(t.depth.mean()) if u else None,
            "mean_fanout_internal": float(t.n_children[internal].mean()) if internal.any() else None,
            "max_fanout": int(t.n_children.max()) if u else None,
            "branching_nodes": int((t.n_children >= 2).sum())}
    assert res.tree == want
    share = res.groups_summary["requests_starting_with_shared_prefix_share"]
    assert share == (float((t.n_requests[first_blocks] >= 2).mean()) if first_blocks.shape[0] else None)
    depths, counts = np.unique(t.depth, return_counts=True)
    assert res.depth_distribution.rows() == list(zip(depths.tolist(), counts.tolist()))
    fanouts, counts = np.unique(t.n_children, return_counts=True)
    assert res.fanout_distribution.rows() == list(zip(fanouts.tolist(), counts.tolist()))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), max_size=7), min_size=1, max_size=10))
def test_compact_structure_equals_full_tree_on_unchained_ids(requests):
    """Ids that are not chained (a block may repeat, also inside a request): the same tree rules
    (a block's parent is the block before its first access) give the same groups."""
    offsets, blocks = csr(requests)
    trace = Trace.from_arrays(offsets, blocks)
    assert analyze_prefix(trace).groups.equals(_reference_groups(prefix_tree_of(trace)))


@settings(max_examples=100, deadline=None)
@given(contents_st, sessions_st)
def test_session_reuse_matches_naive(contents, sessions):
    requests, trace = chained_trace(contents, sessions)
    codes = np.array([-1 if s is None else "abc".index(s) for s in sessions[:len(requests)]])
    by_first, by_prev, multi, multi_accesses = session_reuse(trace.access_chunks, trace.n_unique_blocks, codes)
    want_first, want_prev = naive.naive_session_reuse(requests, sessions[:len(requests)])
    assert by_first.tolist() == want_first and by_prev.tolist() == want_prev
    seen: dict = {}
    for req, s in zip(requests, sessions):
        for b in req:
            seen.setdefault(b, set())
            if s is not None:
                seen[b].add(s)
    assert multi.tolist() == [len(seen[b]) >= 2 for b in range(trace.n_unique_blocks)]
    assert multi_accesses == sum(len(seen[b]) >= 2 for req in requests for b in req)


def test_system_prompt_groups_by_hand():
    # contents: two conversations behind one 2-block system prompt S = (9, 9):
    #   r0: S a        r1: S a b      r2: S c      r3: S c d     r4: x (alone)
    contents = [[9, 9, 1], [9, 9, 1, 2], [9, 9, 3], [9, 9, 3, 4], [7]]
    requests, trace = chained_trace(
        contents, ["u1", "u1", "u2", "u2", None], block_size=10,
        input_len=np.array([25, 40, 30, 33, 5]))
    res = analyze_prefix(trace)
    # groups: S (4 requests, top level), S a (2), S c (2)
    assert res.groups["n_requests"].to_list() == [4, 2, 2]
    assert res.groups["prefix_blocks"].to_list() == [2, 3, 3]
    top = res.groups.filter("top_level").to_dicts()
    assert len(top) == 1 and top[0]["n_requests"] == 4 and top[0]["prefix_tokens"] == 20
    assert top[0]["reusable_tokens"] == 3 * 20 and top[0]["n_children"] == 2
    # S a: the 'a' block is r0's partial last block (25 - 2*10 = 5 tokens)
    sa = res.groups.filter(pl.col("node") == requests[0][2]).to_dicts()[0]
    assert sa["prefix_tokens"] == 25 and sa["segment_tokens"] == 5
    assert sa["exclusive_reusable_tokens"] == 5 and sa["reusable_tokens"] == 25
    s = res.summary()
    assert s["tree"]["roots"] == 2 and s["tree"]["max_fanout"] == 2
    assert s["groups"]["requests_starting_with_shared_prefix_share"] == pytest.approx(0.8)
    # re-accesses: r1 S,S,a ; r2 S,S ; r3 S,S,c -> 8; by first: r1 3 same, r2 2 other,
    # r3 S,S other + c same; by previous: r1 3 same, r2 2 other, r3 S,S same (r2) + c same
    sess = {row["reading"]: row for row in res.session_sharing.to_dicts()}
    assert (sess["by_first"]["within"], sess["by_first"]["across"]) == (4, 4)
    assert (sess["by_previous"]["within"], sess["by_previous"]["across"]) == (6, 2)
    assert s["sessions"]["blocks_in_multiple_sessions"] == 2   # the two system-prompt blocks


def test_no_block_ids():
    trace = Trace.from_arrays([0, 1], [0])
    trace.has_block_ids = False
    with pytest.raises(NoBlockIdsError):
        analyze_prefix(trace)


@pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets not present")
def test_golden_conversation_prefix():
    trace = mooncake_trace(CONVERSATION)
    res = analyze_prefix(trace)
    s = res.summary()
    # every conversation request starts with the same 512-token block
    assert s["tree"]["roots"] == 1 and s["tree"]["max_fanout"] == 7373
    assert s["groups"]["top_level_groups"] == 1
    assert s["groups"]["largest_top_level_group_requests"] == 12031
    assert s["groups"]["shared_prefix_groups"] == 3970
    assert int(res.groups["exclusive_reusable_blocks"].sum()) == 288500 - 182790


@pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets not present")
def test_prefix_tree_equals_store_blocks_table():
    """The tree the analysis reads is the store's blocks table, and that table equals the
    naive walk over the requests (tests/naive.py) on a real trace."""
    from kvctrace import store
    if not hasattr(store, "open_trace"):
        pytest.skip("kvctrace.open_trace not implemented yet")
    trace = mooncake_trace(CONVERSATION)
    bounds = trace.offsets.tolist()
    lists = [trace.blocks[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]
    rows = naive.naive_prefix_tree(lists, trace.input_len.tolist(), trace.block_size)
    t = SimpleNamespace(parent=np.array([-1 if r[2] is None else r[2] for r in rows]),
                        depth=np.array([r[3] for r in rows]), first_req=np.array([r[1] for r in rows]),
                        tokens=np.array([r[4] for r in rows]))
    table = trace.blocks_table()
    assert (table["parent_block"].fill_null(-1).to_numpy() == t.parent).all()
    assert (table["depth"].to_numpy() == t.depth).all()
    assert (table["first_req"].to_numpy() == t.first_req).all()
    assert (table["tokens"].to_numpy() == t.tokens).all()
    read = prefix_tree_of(trace)
    for name in ("parent", "depth", "first_req", "tokens"):
        assert np.array_equal(getattr(read, name), getattr(t, name)), name


def test_synthetic_bailian_trace_with_sessions_types_turns(tmp_path):
    """End to end through ingest: a generated Bailian-format trace (sessions, types, turns)."""
    from kvctrace import open_trace, store
    if not hasattr(store, "open_trace"):
        pytest.skip("kvctrace.open_trace not implemented yet")
    from kvctrace.analysis.hotness import analyze_hotness
    from kvctrace.analysis.workload import analyze_workload
    from kvctrace.synth import write_trace
    trace = open_trace(write_trace(tmp_path / "b.jsonl", format="bailian", n_requests=300, seed=3))
    reaccesses = trace.n_accesses - trace.n_unique_blocks
    p = analyze_prefix(trace)
    for row in p.session_sharing.to_dicts():
        assert row["within"] + row["across"] + row["unknown"] == reaccesses
    assert int(p.groups["exclusive_reusable_blocks"].sum()) == reaccesses
    by_type = analyze_hotness(trace).heat_by_type
    assert int(by_type["accesses"].sum()) == trace.n_accesses
    assert int(by_type["reaccesses"].sum()) == reaccesses
    w = analyze_workload(trace)
    s = w.summary()
    assert sum(s["types"].values()) == trace.n_requests
    assert int(w.sessions["requests"].sum()) == trace.n_requests
    assert w.turns is not None and int(w.turns["requests"].sum()) == trace.n_requests
    json.dumps(p.summary(), allow_nan=False)
    json.dumps(s, allow_nan=False)


# ---- the same result however the block ids are cut into chunks (Trace.access_chunks) ----------

def write_random_bailian(path, rng, n_requests: int = 40, block_size: int = 16):
    """A Bailian JSONL trace (per-block content hashes, rechained at ingest; sessions from the
    chat links) of requests that often share prefixes: cuts of a few base prompts with short
    tails, follow-up turns extending an earlier request, and empty prompts."""
    bases = [list(rng.integers(0, 3, int(rng.integers(1, 12)))) for _ in range(3)]
    contents, lines = [], []
    for chat in range(n_requests):
        kind, parent = int(rng.integers(0, 5)), -1
        if kind == 0:
            content = []
        elif kind == 1 and chat:
            parent = int(rng.integers(0, chat))
            content = contents[parent] + list(rng.integers(0, 3, int(rng.integers(0, 4))))
        else:
            base = bases[int(rng.integers(0, len(bases)))]
            content = base[:int(rng.integers(0, len(base) + 1))] + list(rng.integers(0, 3, int(rng.integers(0, 3))))
        contents.append(content)
        input_length = len(content) * block_size - (int(rng.integers(0, block_size)) if content else 0)
        lines.append(json.dumps({"chat_id": chat, "parent_chat_id": parent, "timestamp": chat * 0.5,
                                 "input_length": input_length, "output_length": 7, "type": "text", "turn": 1,
                                 "hash_ids": [int(c) for c in content]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_same_analysis(got, want) -> None:
    """Two results of one analysis equal bit for bit: the summary and every result frame."""
    assert got.summary() == want.summary()
    for name, value in vars(want).items():
        if isinstance(value, pl.DataFrame):
            assert_frame_equal(getattr(got, name), value, check_exact=True)
        else:
            assert (getattr(got, name) is None) == (value is None), name


def check_chunking_changes_nothing(analyze, tmp_path, seeds=(0, 1, 2)) -> None:
    """``analyze`` gives the same result on random traces with their accesses whole (one
    chunk), one request per chunk and a few accesses per chunk, and from a store opened in
    chunks, which it must stream without reading its block ids whole."""
    for seed in seeds:
        rng = np.random.default_rng(seed)
        path = write_random_bailian(tmp_path / f"r{seed}.jsonl", rng)
        trace = open_trace(path)
        want = analyze(trace)
        for size in (1, int(rng.integers(2, 30))):
            trace.chunk_accesses = size
            assert_same_analysis(analyze(trace), want)
    db = tmp_path / "r.duckdb"
    open_trace(path, db=db).con.close()
    stored = load_store(duckdb.connect(str(db), read_only=True), str(path), chunked=True)
    stored.chunk_accesses = 7
    assert_same_analysis(analyze(stored), want)
    assert stored.__dict__["_blocks"] is None   # streamed, never read whole
    stored.con.close()


def test_prefix_is_the_same_however_the_accesses_are_chunked(tmp_path):
    check_chunking_changes_nothing(analyze_prefix, tmp_path)
