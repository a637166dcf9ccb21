"""Hotness skew: kernels and metrics against tests/naive.py, hand-checked small traces, and
pinned numbers on the Mooncake conversation trace."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvctrace.analysis.hotness import analyze_hotness, gini, hot_set_size, top_share, zipf_fit
from kvctrace.errors import ConfigError, NoBlockIdsError
from kvctrace.kernels.hotness import block_first_position, block_heat, first_access_flags, window_top_k
from kvctrace.trace import Trace

from . import naive
from .test_access import CONVERSATION, assert_same_result, csr, mooncake_trace, results_however_cut

counts_st = st.lists(st.integers(1, 50), min_size=1, max_size=60)


@settings(max_examples=100, deadline=None)
@given(counts_st)
def test_gini_matches_naive(counts):
    assert gini(np.array(counts)) == pytest.approx(naive.naive_gini(counts), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(counts_st, st.sampled_from([0.1, 1.0, 5.0, 10.0, 33.0, 50.0, 100.0]),
       st.sampled_from([0.5, 0.8, 0.9, 0.99, 1.0]))
def test_top_share_and_hot_set_match_naive(counts, pct, q):
    desc = np.sort(np.array(counts))[::-1]
    assert top_share(desc, pct) == pytest.approx(naive.naive_top_share(counts, pct))
    assert hot_set_size(desc, q) == naive.naive_hot_set_size(counts, q)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 15), max_size=10), min_size=1, max_size=10),
       st.integers(1, 5), st.data())
def test_kernels_match_naive(reqs, k, data):
    raw_offsets, raw_blocks = csr(reqs)
    trace = Trace.from_arrays(raw_offsets, raw_blocks)   # dense first-appearance ids
    offsets, blocks, u = trace.offsets, trace.blocks, trace.n_unique_blocks
    first = first_access_flags(blocks, u)
    seen = set()
    expected = []
    for b in blocks.tolist():
        expected.append(b not in seen)
        seen.add(b)
    assert first.tolist() == expected
    depth, first_req = block_first_position(offsets, blocks, u)
    ref = naive.naive_first_positions(offsets, blocks)
    assert [(int(d), int(r)) for d, r in zip(depth, first_req)] == [ref[b] for b in range(u)]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blocks)), max_size=4)))
    bounds = np.array([0, *cuts, len(blocks)], np.int64)
    top, top_counts, n_distinct = window_top_k(blocks, bounds, u, k)
    for w, want in enumerate(naive.naive_window_top_k(blocks, bounds, k)):
        got = [(int(b), int(c)) for b, c in zip(top[w], top_counts[w]) if b >= 0]
        assert got == want
        assert n_distinct[w] == len(set(blocks[bounds[w]:bounds[w + 1]].tolist()))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 15), max_size=8),
                          st.sampled_from(["x", "y", "z", None])), min_size=1, max_size=10))
def test_heat_by_type_matches_naive_in_both_paths(rows):
    raw_offsets, raw_blocks = csr([r for r, _ in rows])
    types = [t for _, t in rows]
    if all(t is None for t in types):
        types[0] = "x"
    trace = Trace.from_arrays(raw_offsets, raw_blocks, type=types)
    seen, want = set(), {}
    for r, t in enumerate(types):
        w = want.setdefault(t, {"requests": 0, "accesses": 0, "blocks": set(), "reaccesses": 0})
        w["requests"] += 1
        for b in trace.blocks[trace.offsets[r]:trace.offsets[r + 1]].tolist():
            w["accesses"] += 1
            w["blocks"].add(b)
            w["reaccesses"] += b in seen
            seen.add(b)
    expected = {t: (w["requests"], w["accesses"], len(w["blocks"]), w["reaccesses"])
                for t, w in want.items()}
    kernel = analyze_hotness(trace).heat_by_type
    import kvctrace.analysis.hotness as hot
    saved, hot.MAX_GROUPS = hot.MAX_GROUPS, 0          # force the polars group-by path
    try:
        fallback = analyze_hotness(trace).heat_by_type
    finally:
        hot.MAX_GROUPS = saved
    for frame in (kernel, fallback):
        got = {row["type"]: (row["requests"], row["accesses"], row["distinct_blocks"],
                             row["reaccesses"]) for row in frame.to_dicts()}
        assert got == expected
    assert kernel.equals(fallback)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=2, max_size=80), st.integers(2, 80))
def test_zipf_fit_matches_least_squares(counts, max_rank):
    _zipf_fit_matches_least_squares(counts, max_rank)


def test_zipf_fit_across_slices(monkeypatch):
    """The fit's sums run over slices of ranks: slices of 3 cut the count groups and the split."""
    import kvctrace.analysis.hotness as hotness
    monkeypatch.setattr(hotness, "_FIT_PIECE", 3)
    rng = np.random.default_rng(2)
    for _ in range(20):
        counts = rng.integers(1, 6, rng.integers(2, 40)).tolist()
        _zipf_fit_matches_least_squares(counts, int(rng.integers(2, 40)))
        _zipf_fit_matches_least_squares(counts, len(counts))


def _zipf_fit_matches_least_squares(counts, max_rank):
    desc = np.sort(np.array(counts))[::-1]
    max_rank = min(max_rank, desc.shape[0])
    x, y = np.log(np.arange(1, max_rank + 1)), np.log(desc[:max_rank].astype(float))
    alpha, r2 = zipf_fit(desc, max_rank)
    assert alpha == pytest.approx(-np.polyfit(x, y, 1)[0], abs=1e-9)
    if len(set(desc[:max_rank].tolist())) > 1:
        assert r2 == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, abs=1e-9)
    else:
        assert r2 is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 15), max_size=10), min_size=1, max_size=10))
def test_block_heat_matches_naive(reqs):
    raw_offsets, raw_blocks = csr(reqs)
    trace = Trace.from_arrays(raw_offsets, raw_blocks)
    counts, by_count, by_depth = block_heat(trace.offsets, trace.blocks, trace.n_unique_blocks)
    want = naive.naive_access_counts(trace.blocks)
    assert counts.tolist() == [want[b] for b in range(trace.n_unique_blocks)]
    assert by_count.tolist() == np.bincount(counts, minlength=1).tolist()
    first = naive.naive_first_positions(trace.offsets, trace.blocks)
    for depth in range(by_depth.shape[1]):
        at = [b for b in range(trace.n_unique_blocks) if first[b][0] == depth]
        assert by_depth[:, depth].tolist() == [len(at), sum(want[b] for b in at), sum(want[b] == 1 for b in at)]


def test_zipf_fit_exact_power_law():
    counts = np.array([840 // r for r in range(1, 9)])   # exactly 840 / r
    alpha, r2 = zipf_fit(counts, 8)
    assert alpha == pytest.approx(1.0) and r2 == pytest.approx(1.0)
    # as a trace: block r accessed 840 / r times, one access per request
    blocks = np.repeat(np.arange(8), counts)
    trace = Trace.from_arrays(np.arange(blocks.shape[0] + 1), blocks,
                              ts=np.arange(blocks.shape[0], dtype=float))
    res = analyze_hotness(trace)
    assert res.zipf_alpha == pytest.approx(1.0) and res.zipf_fit_ranks == (1, 8)


def test_small_trace_by_hand():
    # requests: [0 1 2] [0 1 3] [0 4] [0 1 2] at t = 0, 1, 2, 3
    # accesses: block 0 x4, 1 x3, 2 x2, 3 x1, 4 x1 -> 11 accesses over 5 blocks
    offsets = [0, 3, 6, 8, 11]
    blocks = [0, 1, 2, 0, 1, 3, 0, 4, 0, 1, 2]
    trace = Trace.from_arrays(offsets, blocks, ts=[0.0, 1.0, 2.0, 3.0],
                              type=["chat", "chat", "api", None])
    res = analyze_hotness(trace, window_s=2.0, top_k=2)
    s = res.summary()
    assert s["one_hit_blocks"] == 2 and s["one_hit_block_share"] == pytest.approx(0.4)
    assert s["top_1pct_access_share"] == pytest.approx(4 / 11)     # ceil(0.05) = 1 block
    assert s["top_50pct_access_share"] == pytest.approx(9 / 11)    # ceil(2.5) = 3 blocks
    assert s["hot_set_blocks_50pct"] == 2                          # 4 + 3 >= 5.5
    assert s["hot_set_blocks_90pct"] == 4                          # 4+3+2+1 = 10 >= 9.9
    assert s["gini"] == pytest.approx(naive.naive_gini([4, 3, 2, 1, 1]))
    assert res.lorenz.rows()[0] == (0.0, 0.0) and res.lorenz.rows()[-1] == (1.0, 1.0)
    # windows [0, 2): requests 0-1, top-2 {0, 1}; [2, 4): requests 2-3, top-2 {0, 1}
    assert res.drift["requests"].to_list() == [2, 2]
    assert res.drift["jaccard_with_previous"].to_list() == [None, 1.0]
    depth = res.heat_by_depth.to_dicts()
    assert [d["depth"] for d in depth] == [0, 1, 2]
    assert [d["blocks"] for d in depth] == [1, 2, 2]          # {0}, {1, 4}, {2, 3}
    assert [d["accesses"] for d in depth] == [4, 4, 3]
    by_type = {row["type"]: row for row in res.heat_by_type.to_dicts()}
    assert by_type["chat"]["accesses"] == 6 and by_type["chat"]["reaccesses"] == 2
    assert by_type["api"]["reaccesses"] == 1 and by_type[None]["reaccesses"] == 3
    json.dumps(s)


def test_no_types_no_type_heat_and_bad_options():
    trace = Trace.from_arrays([0, 2], [0, 1])
    assert analyze_hotness(trace).heat_by_type is None
    with pytest.raises(ConfigError):
        analyze_hotness(trace, top_k=0)
    with pytest.raises(ConfigError):
        analyze_hotness(trace, window_s=-1.0)
    trace.has_block_ids = False
    with pytest.raises(NoBlockIdsError):
        analyze_hotness(trace)


def test_hotness_is_the_same_however_the_ids_are_cut(tmp_path, monkeypatch):
    """Per-block heat, drift over several windows (some empty) and heat by type, the last over
    more than 64 types too (several passes over the ids), identical whole and in chunks."""
    cases = [(60, 3, lambda tr: analyze_hotness(tr, window_s=4.0, top_k=2)),
             (220, 70, lambda tr: analyze_hotness(tr, window_s=25.0, top_k=5)),
             (30, 1, analyze_hotness)]
    frames = ("access_histogram", "lorenz", "rank_frequency", "top_shares", "hot_sets", "drift",
              "heat_by_depth", "heat_by_type", "per_block")
    type_counts = set()
    for whole, cut in results_however_cut(tmp_path, monkeypatch, cases):
        assert_same_result(whole, cut, frames)
        assert whole.drift.height > 1
        type_counts.add(whole.heat_by_type.height)
    assert max(type_counts) > 64


@pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets not present")
def test_golden_conversation_hotness():
    res = analyze_hotness(mooncake_trace(CONVERSATION))
    s = res.summary()
    # every request starts with the same block (a shared system prompt): 12,031 accesses
    assert s["max_accesses_per_block"] == 12031
    assert s["unique_blocks"] == 182790 and s["accesses"] == 288500
    # unique / accesses agrees with the published ideal hit ratio 0.3664 = 1 - 182790/288500
    assert 1 - s["unique_blocks"] / s["accesses"] == pytest.approx(0.3664, abs=1e-4)
    assert s["one_hit_blocks"] == 138646
    assert s["top_1pct_access_share"] == pytest.approx(0.12231, abs=1e-5)
    assert s["top_10pct_access_share"] == pytest.approx(0.33870, abs=1e-5)
    assert s["gini"] == pytest.approx(0.32013, abs=1e-5)
    assert s["zipf_alpha"] == pytest.approx(0.44454, abs=1e-5)
    assert s["hot_set_blocks_50pct"] == 41342
    # plotting frames are downsampled, ordered and end where they must
    lorenz = res.lorenz
    assert lorenz.height <= 1001 and lorenz.row(0) == (0.0, 0.0) and lorenz.row(-1) == (1.0, 1.0)
    assert lorenz["block_share"].is_sorted() and lorenz["access_share"].is_sorted()
    rf = res.rank_frequency
    assert rf.height <= 1000 and rf["rank"][0] == 1 and rf["rank"][-1] == s["unique_blocks"]
    assert rf["accesses"].is_sorted(descending=True)
