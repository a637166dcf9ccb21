"""Reuse: stack distances, MRC, per-request hit rates, SHARDS; properties against tests/naive.py
and golden numbers on the shared Mooncake traces."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kvctrace import Trace
from kvctrace.analysis.reuse import analyze_reuse, exact_mrc, log_capacities
from kvctrace.errors import ConfigError, NoBlockIdsError
from kvctrace.kernels.reuse import (distance_counts, hit_ratio_at, hit_tokens, per_request_hits,
                                    quantiles_from_counts, reuse_request_counts, reuse_seconds,
                                    stack_distances, stack_distances_by_request)
from kvctrace.kernels.sampling import curve_at, shards_fixed_rate, shards_fixed_size

from . import naive

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
MOONCAKE = DATASETS / "mooncake"

# Random traces: small alphabets so that reuse happens often.
block_lists = st.lists(st.integers(0, 12), min_size=0, max_size=120)


@st.composite
def csr_traces(draw):
    lengths = draw(st.lists(st.integers(0, 8), min_size=1, max_size=25))
    n = sum(lengths)
    blocks = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return offsets, np.asarray(blocks, dtype=np.int64)


def _dense(raw):
    """First-appearance dense ids, as the store assigns them."""
    out, seen = [], {}
    for b in raw:
        seen.setdefault(int(b), len(seen))
        out.append(seen[int(b)])
    return np.asarray(out, dtype=np.int64), len(seen)


@settings(max_examples=100, deadline=None)
@given(block_lists)
def test_stack_distances_equal_naive(raw):
    blocks, n_unique = _dense(np.asarray(raw, dtype=np.int64))
    dist = stack_distances(blocks, n_unique)
    assert dist.tolist() == naive.naive_stack_distances(blocks.tolist())


def test_stack_distances_cross_word_boundaries():
    # long gaps cross many 64-bit words of the bitmap and the Fenwick levels above them
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 300, 5000)
    blocks, n_unique = _dense(raw)
    dist = stack_distances(blocks, n_unique)
    assert dist.tolist() == naive.naive_stack_distances(blocks.tolist())


@settings(max_examples=60, deadline=None)
@given(block_lists, st.integers(0, 14))
def test_mrc_equals_naive_lru(raw, capacity):
    blocks, n_unique = _dense(np.asarray(raw, dtype=np.int64))
    dist = stack_distances(blocks, n_unique)
    counts, _ = distance_counts(dist)
    got = hit_ratio_at(counts, blocks.shape[0], [capacity])[0]
    assert got == pytest.approx(naive.naive_lru_hit_ratio(blocks.tolist(), capacity))


@settings(max_examples=60, deadline=None)
@given(csr_traces())
def test_reuse_times_equal_naive(trace):
    offsets, raw = trace
    blocks, n_unique = _dense(raw)
    ts = np.cumsum(np.arange(offsets.shape[0] - 1)) * 0.5  # distinct, increasing arrival times
    dist, reuse_req = stack_distances_by_request(offsets, blocks, n_unique)
    assert dist.tolist() == naive.naive_stack_distances(blocks.tolist())
    want_req, want_s = naive.naive_reuse_times(offsets.tolist(), blocks.tolist(), ts.tolist())
    assert reuse_req.tolist() == want_req
    secs, bins = reuse_seconds(offsets, reuse_req, ts)
    assert secs.tolist() == pytest.approx(want_s)
    want_bins = np.bincount([0 if v < 1 else int(np.floor(np.log2(v))) + 1 for v in want_s] or [0],
                            minlength=1)
    if not want_s:
        want_bins[0] = 0
    assert bins.tolist() == want_bins.tolist()
    counts = reuse_request_counts(reuse_req, offsets.shape[0] - 1)
    assert counts.tolist()[:max(want_req) + 1 if want_req else 0] == \
        np.bincount([d for d in want_req if d >= 0], minlength=max(want_req) + 1 if want_req else 0).tolist()[:max(want_req) + 1 if want_req else 0]
    assert counts.sum() == sum(1 for d in want_req if d >= 0)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=200))
def test_quantiles_from_counts_equal_numpy(values):
    qs = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]
    got = quantiles_from_counts(np.bincount(values), qs)
    assert got.tolist() == pytest.approx(np.quantile(values, qs).tolist())


@settings(max_examples=60, deadline=None)
@given(csr_traces())
def test_per_request_hits_equal_naive(trace):
    offsets, raw = trace
    blocks, n_unique = _dense(raw)
    dist = stack_distances(blocks, n_unique)
    hits, prefix = per_request_hits(offsets, dist)
    want_hits, want_prefix = naive.naive_request_hits(offsets.tolist(), blocks.tolist())
    assert hits.tolist() == want_hits
    assert prefix.tolist() == want_prefix
    assert (prefix <= hits).all()


@settings(max_examples=60, deadline=None)
@given(csr_traces(), st.integers(1, 8), st.booleans(), st.integers(0, 2**32 - 1))
def test_hit_tokens_equal_naive(trace, block_size, prefix_only, seed):
    offsets, raw = trace
    blocks, n_unique = _dense(raw)
    n = np.diff(offsets)
    # input lengths around the block count, including inconsistent ones (clipped)
    input_len = np.maximum(n * block_size - np.random.default_rng(seed).integers(-3, block_size + 3, n.shape[0]), 0)
    dist = stack_distances(blocks, n_unique)
    got_hit, got_all = hit_tokens(offsets, dist, input_len, block_size, prefix_only)
    want_hit, want_all = naive.naive_hit_tokens(offsets.tolist(), blocks.tolist(), input_len.tolist(),
                                                block_size, prefix_only)
    assert got_hit.tolist() == want_hit and got_all.tolist() == want_all


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=300), st.sampled_from([0.05, 0.3, 1.0]),
       st.booleans())
def test_shards_fixed_rate_equals_naive(raw, rate, adjust):
    blocks, n_unique = _dense(np.asarray(raw, dtype=np.int64))
    caps = [0, 1, 2, 5, 10, 50, 200, 1000]
    counts, total, _ = shards_fixed_rate(blocks, n_unique, rate, adjust=adjust)
    got = curve_at(counts, total, caps)
    want = naive.naive_shards_fixed_rate_curve(blocks.tolist(), rate, caps, adjust=adjust)
    assert got == pytest.approx(want, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=250), st.integers(1, 20), st.booleans())
def test_shards_fixed_size_equals_naive(raw, s_max, adjust):
    blocks, n_unique = _dense(np.asarray(raw, dtype=np.int64))
    caps = [0, 1, 2, 3, 5, 10, 30, 100]
    counts, total, _, _ = shards_fixed_size(blocks, n_unique, s_max, adjust=adjust)
    got = curve_at(counts, total, caps)
    want = naive.naive_shards_fixed_size_curve(blocks.tolist(), s_max, caps, adjust=adjust)
    assert got == pytest.approx(want, abs=1e-9)


def test_shards_fixed_size_compaction_matches_naive():
    # s_max small relative to the trace so the time index is compacted many times
    rng = np.random.default_rng(3)
    raw = (rng.zipf(1.3, 6000) % 500).astype(np.int64)
    blocks, n_unique = _dense(raw)
    caps = [1, 2, 4, 8, 16, 64, 256, 1024]
    counts, total, _, _ = shards_fixed_size(blocks, n_unique, 7)
    assert curve_at(counts, total, caps) == pytest.approx(
        naive.naive_shards_fixed_size_curve(blocks.tolist(), 7, caps), abs=1e-9)


def test_shards_fixed_size_compaction_across_words_matches_naive():
    # a time index of many 64-bit words (and Fenwick levels), compacted repeatedly
    rng = np.random.default_rng(5)
    raw = (rng.zipf(1.2, 40000) % 2500).astype(np.int64)
    blocks, n_unique = _dense(raw)
    caps = [1, 4, 16, 64, 256, 1024, 4096]
    counts, total, _, n_sampled = shards_fixed_size(blocks, n_unique, 300)
    assert n_sampled > 4 * 1268  # several compactions of the 1268-slot time index
    assert curve_at(counts, total, caps) == pytest.approx(
        naive.naive_shards_fixed_size_curve(blocks.tolist(), 300, caps), abs=1e-9)


def _zipf_trace(n, n_blocks, seed):
    rng = np.random.default_rng(seed)
    # Zipf popularity over a shuffled id space, so hashing sees no order.
    raw = rng.permutation(n_blocks)[(rng.zipf(1.1, n) - 1) % n_blocks]
    return _dense(raw)


def test_shards_accuracy_on_generated_trace():
    """1M accesses of a heavily skewed Zipf(1.1) trace, 10% fixed-rate and 16k-block fixed-size
    sampling: within 0.02 MAE (measured ~0.008 and ~0.006; the benchmark checks the
    10M-access, 1% case against 0.01)."""
    blocks, n_unique = _zipf_trace(1_000_000, 200_000, seed=11)
    dist = stack_distances(blocks, n_unique)
    counts, _ = distance_counts(dist)
    caps = np.unique(np.linspace(1, counts.shape[0], 200).round().astype(np.int64))
    exact = hit_ratio_at(counts, blocks.shape[0], caps)
    fr_counts, fr_total, _ = shards_fixed_rate(blocks, n_unique, 0.1)
    fs_counts, fs_total, _, _ = shards_fixed_size(blocks, n_unique, 16_384)
    assert np.abs(curve_at(fr_counts, fr_total, caps) - exact).mean() < 0.02
    assert np.abs(curve_at(fs_counts, fs_total, caps) - exact).mean() < 0.02
    # unadjusted fixed-rate is far off on this skew: the test can tell good from bad sampling
    raw_counts, raw_total, _ = shards_fixed_rate(blocks, n_unique, 0.1, adjust=False)
    assert np.abs(curve_at(raw_counts, raw_total, caps) - exact).mean() > 0.02


def test_analyze_reuse_small_trace_by_hand():
    # r0: [a b c]  r1: [a b d]  r2: [e]  r3: [a x b]  (r3 not chained: prefix reading differs)
    offsets = np.array([0, 3, 6, 7, 10])
    blocks = np.array([10, 11, 12, 10, 11, 13, 14, 10, 15, 11])
    tr = Trace.from_arrays(offsets, blocks, ts=[0.0, 1.0, 2.0, 3.0], block_size=4,
                           input_len=[12, 10, 1, 12])
    r = analyze_reuse(tr, shards=False)
    assert r.requests["hit_blocks"].to_list() == [0, 2, 0, 2]
    assert r.requests["prefix_hit_blocks"].to_list() == [0, 2, 0, 1]
    assert r.ideal_hit_ratio_blocks == pytest.approx(4 / 10)
    assert r.ideal_prefix_hit_ratio_blocks == pytest.approx(3 / 10)
    assert not r.prefix_and_block_hits_agree and r.requests_prefix_differs == 1
    # tokens: r1 = 4+4+2, hits 8; r3 = 4+4+4, block hits 8, prefix hits 4; r2 = 1 token
    assert r.requests["tokens"].to_list() == [12, 10, 1, 12]
    assert r.ideal_hit_ratio_tokens == pytest.approx(16 / 35)
    assert r.ideal_prefix_hit_ratio_tokens == pytest.approx(12 / 35)
    assert r.request_hit_rate_shares == {"ge_0_5": 0.5, "ge_0_8": 0.0, "gt_0_5": 0.5, "gt_0_8": 0.0}
    assert r.request_prefix_hit_rate_shares["ge_0_5"] == 0.25
    assert r.one_hit_block_share == pytest.approx(4 / 6)
    # a's second access (t=3): b, c between -> distance 2; reuse 1 request, 1 s
    assert r.distance_counts.sort("distance").rows() == [(2, 2), (3, 1), (4, 1)]
    assert r.hit_ratio_at([0, 2, 3, 4, 5, 100]).tolist() == pytest.approx([0, 0, 0.2, 0.3, 0.4, 0.4])
    assert r.mrc["hit_ratio"].to_list()[-1] == pytest.approx(0.4)
    assert r.mrc["unlimited"].to_list()[-1]
    assert r.block_time.height == 10
    # reuse in requests and seconds: a, b at r1 (1 request, 1 s), a, b at r3 (2 requests, 2 s)
    for unit in ("requests", "seconds"):
        h = r.reuse_time_hist.filter(r.reuse_time_hist["unit"] == unit)
        assert h.select("lo", "hi", "count").rows() == [(0.0, 1.0, 0), (1.0, 2.0, 2), (2.0, 4.0, 2)]
    q = {row["quantile"]: row for row in r.reuse_time.iter_rows(named=True)}
    assert q[0.5]["requests"] == 1.5 and q[0.5]["seconds"] == 1.5 and q[0.1]["requests"] == 1.0


def test_mrc_grid_has_50_points_and_unlimited():
    blocks, n_unique = _zipf_trace(20_000, 5_000, seed=1)
    tr = Trace.from_arrays(np.array([0, blocks.shape[0]]), blocks)
    r = analyze_reuse(tr, shards=False)
    assert r.mrc.height >= 51
    assert r.mrc_points()[-1]["hit_ratio"] == pytest.approx(r.ideal_hit_ratio_blocks)
    hr = r.mrc["hit_ratio"].to_numpy()
    assert (np.diff(hr) >= 0).all()
    caps = r.mrc["capacity_blocks"].to_list()
    want = [naive.naive_lru_hit_ratio(tr.blocks.tolist(), c) for c in caps[::16]]
    assert hr[::16].tolist() == pytest.approx(want)


def test_lengths_only_trace_raises_typed_error():
    tr = Trace.from_arrays(np.array([0, 0, 0]), np.zeros(0, np.int64))
    object.__setattr__(tr, "has_block_ids", False)
    with pytest.raises(NoBlockIdsError):
        analyze_reuse(tr)


@pytest.mark.parametrize("opts", [{"window_s": 0}, {"shards_rate": 0}, {"shards_rate": 1.5},
                                  {"shards_s_max": 0}, {"mrc_points": 1}])
def test_bad_options_are_config_errors(opts):
    tr = Trace.from_arrays(np.array([0, 2]), np.array([1, 2]))
    with pytest.raises(ConfigError) as err:
        analyze_reuse(tr, **opts)
    assert err.value.field


def test_log_capacities_small_and_large():
    assert log_capacities(0).shape[0] == 0
    assert log_capacities(60).shape[0] >= 50
    caps = log_capacities(1_000_000)
    assert caps[0] == 1 and caps[-1] == 1_000_000 and caps.shape[0] >= 50


# ---- golden numbers on the shared Mooncake traces -------------------------------------------

def _mooncake(name):
    path = MOONCAKE / f"{name}.jsonl"
    if not path.exists():
        pytest.skip("shared datasets not available")
    from kvctrace import open_trace
    return open_trace(path)


@pytest.fixture(scope="module")
def conversation():
    return analyze_reuse(_mooncake("conversation_trace"))


@pytest.fixture(scope="module")
def synthetic():
    return analyze_reuse(_mooncake("synthetic_trace"))


def test_golden_conversation(conversation):
    r = conversation
    assert r.n_requests == 12031
    assert r.ideal_hit_ratio_blocks == pytest.approx(0.3664, abs=5e-5)
    assert r.request_hit_rate_shares["ge_0_5"] == pytest.approx(0.4247, abs=5e-4)
    assert r.request_hit_rate_shares["ge_0_8"] == pytest.approx(0.1994, abs=5e-4)
    # many requests sit exactly at 0.5 (e.g. 1 of 2 blocks): ">" is a different number
    assert r.request_hit_rate_shares["gt_0_5"] == pytest.approx(0.2932, abs=5e-4)
    # chained trace, unlimited cache: the prefix and block readings agree
    assert r.prefix_and_block_hits_agree
    assert r.ideal_prefix_hit_ratio_blocks == r.ideal_hit_ratio_blocks
    assert r.ideal_hit_ratio_tokens == pytest.approx(0.3736, abs=5e-5)


def test_golden_synthetic(synthetic):
    r = synthetic
    assert r.n_requests == 3993
    assert r.ideal_hit_ratio_blocks == pytest.approx(0.6396, abs=5e-5)
    assert r.prefix_and_block_hits_agree
    # paper: about 45% of synthetic requests have hit rate > 0.8
    assert r.request_hit_rate_shares["gt_0_8"] == pytest.approx(0.4360, abs=5e-4)


GOLDEN_MRC = {
    # capacity (blocks): exact block-LRU hit ratio, pinned from naive.naive_lru_hit_ratio
    "conversation_trace": {1: 0.0, 16: 0.02294627383015598, 256: 0.04191334488734835,
                           4096: 0.0875528596187175, 32768: 0.33489774696707103},
    "synthetic_trace": {1: 0.0, 16: 0.00031178975524504216, 256: 0.02057812384617278,
                        4096: 0.2368863690442003, 32768: 0.6291342911295814},
}


@pytest.mark.parametrize("name", ["conversation_trace", "synthetic_trace"])
def test_golden_mrc(name, conversation, synthetic):
    r = conversation if name == "conversation_trace" else synthetic
    pinned = GOLDEN_MRC[name]
    got = r.hit_ratio_at(list(pinned))
    assert got.tolist() == pytest.approx(list(pinned.values()), abs=1e-12)


def test_exact_mrc_matches_analysis(synthetic):
    tr = _mooncake("synthetic_trace")
    caps = [1, 10, 1000, 20000]
    assert exact_mrc(tr, caps)["hit_ratio"].to_list() == pytest.approx(synthetic.hit_ratio_at(caps).tolist())


# ---- the same results however the accesses are read (Trace.access_chunks) --------------------

def _assert_same_reuse(got, want):
    from polars.testing import assert_frame_equal
    assert got.summary() == want.summary()
    for name in ("requests", "hit_rate_cdf", "windows", "block_time", "distance_counts", "mrc", "reuse_time",
                 "reuse_time_hist", "shards"):
        assert_frame_equal(getattr(got, name), getattr(want, name))
    assert np.array_equal(got._cum_hits, want._cum_hits) and np.array_equal(got._hit_distances, want._hit_distances)


def test_analyze_reuse_is_the_same_in_chunks_and_from_a_store(tmp_path):
    """``analyze_reuse`` reads the ids through ``Trace.access_chunks``: cut into one request per
    chunk or a few accesses (requests without blocks included; few SHARDS blocks, so that the
    fixed-size sample evicts and compacts), or streamed from a store opened in chunks (whose
    ids are then never read whole), every number and frame is the in-memory one's."""
    import duckdb

    from kvctrace import open_trace
    from kvctrace.store import load_store
    from kvctrace.synth import write_trace
    rng = np.random.default_rng(20)
    opts = {"shards_s_max": 4, "shards_rate": 0.5, "plot_points": 9}
    for _ in range(3):
        n_req = int(rng.integers(1, 40))
        lengths = np.where(rng.random(n_req) < 0.25, 0, rng.integers(1, 9, n_req))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        tr = Trace.from_arrays(offsets, rng.integers(0, int(rng.integers(1, 40)), int(offsets[-1])),
                               ts=np.sort(rng.choice([0.0, 0.5, 3.0, 90.0, 1e4], n_req)),
                               input_len=lengths * 4 - rng.integers(0, 4, n_req), block_size=4)
        want = analyze_reuse(tr, **opts)
        for size in (1, int(rng.integers(2, 12))):
            tr.chunk_accesses = size
            _assert_same_reuse(analyze_reuse(tr, **opts), want)
    path, db = write_trace(tmp_path / "t.jsonl", "mooncake", 150, seed=3), tmp_path / "t.duckdb"
    open_trace(path, db=db).con.close()
    stored = load_store(duckdb.connect(str(db), read_only=True), str(path), chunked=True)
    stored.chunk_accesses = 100
    _assert_same_reuse(analyze_reuse(stored, **opts), analyze_reuse(open_trace(path), **opts))
    assert stored.__dict__["_blocks"] is None  # streamed, never loaded whole
    stored.con.close()
