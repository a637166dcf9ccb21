"""The fused reuse kernels (kvctrace/kernels/reuse_stats.py) against tests/naive and numpy,
over the trace cut into chunks of whole requests anywhere: one pass giving distance counts,
per-request hits and tokens and the reuse-time histograms; exact quantiles of the reuse time
in seconds without a float per access."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kvctrace.accesses import AccessChunk
from kvctrace.kernels.reuse_stats import linear_quantiles, reuse_pass, reuse_seconds_quantiles

from . import naive

QS = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]


@st.composite
def traces(draw):
    """A CSR trace of dense first-appearance ids (int32 or int64), input lengths around the
    block counts (some inconsistent), arrival times (sometimes unordered or tied) and a
    sorted sample of access indices."""
    lengths = draw(st.lists(st.integers(0, 8), min_size=1, max_size=25))
    n = sum(lengths)
    raw = draw(st.lists(st.integers(0, draw(st.integers(0, 15))), min_size=n, max_size=n))
    seen: dict = {}
    dense = [seen.setdefault(b, len(seen)) for b in raw]
    blocks = np.asarray(dense, dtype=draw(st.sampled_from([np.int32, np.int64])))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    block_size = draw(st.integers(1, 8))
    slack = draw(st.lists(st.integers(-3, block_size + 3), min_size=len(lengths), max_size=len(lengths)))
    input_len = np.maximum(np.asarray(lengths) * block_size - np.asarray(slack), 0)
    ts = np.asarray(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.5, 7.0, 1e3, 3e6, -4.0]),
                                  min_size=len(lengths), max_size=len(lengths))))
    if draw(st.booleans()):
        ts = np.sort(ts)
    sample = np.unique(np.asarray(draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=6)), np.int64)) \
        if n else np.zeros(0, np.int64)
    cuts = draw(st.lists(st.integers(1, len(lengths) - 1), max_size=4)) if len(lengths) > 1 else []
    return offsets, blocks, len(seen), input_len, block_size, ts, sample, chunked(offsets, blocks, cuts)


def chunked(offsets, blocks, cuts):
    """The trace as chunks of whole requests, cut before each request of ``cuts``, as the
    kernels take them (a ``Trace.access_chunks``: each call streams them again)."""
    edges = sorted({0, offsets.shape[0] - 1, *cuts})
    chunks = [AccessChunk(a, offsets[a:b + 1] - offsets[a], blocks[offsets[a]:offsets[b]])
              for a, b in zip(edges[:-1], edges[1:])]
    return lambda: iter(chunks)


@settings(max_examples=150, deadline=None)
@given(traces())
def test_reuse_pass_equals_naive(trace):
    offsets, blocks, n_unique, input_len, block_size, ts, sample, chunks = trace
    got = reuse_pass(offsets, chunks, n_unique, input_len, block_size, ts, sample)
    dist = np.asarray(naive.naive_stack_distances(blocks.tolist()), np.int64)
    warm = dist[dist >= 0]
    assert got["distance_counts"].tolist() == np.bincount(warm, minlength=0).tolist()
    assert got["cold"] == int((dist < 0).sum())
    per_block = np.bincount(blocks, minlength=n_unique)
    assert got["reaccessed_blocks"] == int((per_block >= 2).sum())
    want_req, want_s = naive.naive_reuse_times(offsets.tolist(), blocks.tolist(), ts.tolist())
    req = [d for d in want_req if d >= 0]
    assert got["request_counts"].tolist() == np.bincount(req, minlength=max(offsets.shape[0] - 1, 1)).tolist()
    want_bins = np.bincount([0 if v < 1 else int(np.floor(np.log2(v))) + 1 for v in want_s] or [0])
    if not want_s:
        want_bins[0] = 0
    assert got["seconds_bins"].tolist() == want_bins.tolist()
    assert int(got["seconds_digits"].sum()) == len(want_s)
    hits, prefix = naive.naive_request_hits(offsets.tolist(), blocks.tolist())
    assert got["hits"].tolist() == hits and got["prefix_hits"].tolist() == prefix
    for prefix_only, key in ((False, "hit_tokens"), (True, "prefix_hit_tokens")):
        hit_tok, all_tok = naive.naive_hit_tokens(offsets.tolist(), blocks.tolist(), input_len.tolist(),
                                                  block_size, prefix_only)
        assert got[key].tolist() == hit_tok and got["tokens"].tolist() == all_tok
    assert got["sample_warm"].tolist() == (dist[sample] >= 0).tolist()
    assert got["sample_blocks"].tolist() == blocks[sample].tolist()


@settings(max_examples=150, deadline=None)
@given(traces())
def test_reuse_seconds_quantiles_equal_numpy_on_naive_times(trace):
    offsets, blocks, n_unique, input_len, block_size, ts, _, chunks = trace
    got = _seconds_quantiles(offsets, chunks, n_unique, input_len, block_size, ts)
    _, want_s = naive.naive_reuse_times(offsets.tolist(), blocks.tolist(), ts.tolist())
    if want_s:
        # exactly numpy's values, not approximately: summary.json prints them
        assert got == np.quantile(np.asarray(want_s), QS).tolist()
    else:
        assert got is None


def _seconds_quantiles(offsets, chunks, n_unique, input_len, block_size, ts):
    """``reuse_seconds_quantiles`` after ``reuse_pass``, both over ``chunks``."""
    digits = reuse_pass(offsets, chunks, n_unique, input_len, block_size, ts)["seconds_digits"]
    return reuse_seconds_quantiles(offsets, chunks, n_unique, ts, digits, QS)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e12, 1e12, allow_nan=False), st.sampled_from([0.0, 1.0, 0.1, 3.0])),
                min_size=1, max_size=60),
       st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_linear_quantiles_equal_numpy(values, qs):
    ordered = np.sort(np.asarray(values, np.float64))
    got = linear_quantiles(len(values), qs, lambda ranks: {k: float(ordered[k]) for k in ranks})
    assert got == np.quantile(np.asarray(values, np.float64), qs).tolist()


@pytest.mark.parametrize("case", ["ties", "spread", "negative"])
@pytest.mark.parametrize("cap", [0, 40, 1 << 22])
def test_quantiles_of_many_times_select_exactly(case, cap, monkeypatch):
    """Thousands of warm accesses whose times share long key prefixes (ties, one octave) or
    straddle zero, read out after the first digit (the default cap), after a few, or never
    (cap 0: every radix level), over the trace in chunks: the values still equal numpy's."""
    import kvctrace.kernels.reuse_stats as reuse_stats
    monkeypatch.setattr(reuse_stats, "_COLLECT_CAP", cap)
    rng = np.random.default_rng(3)
    n_req = 3000
    offsets = np.arange(0, 2 * n_req + 1, 2, dtype=np.int64)
    blocks = rng.integers(0, 400, 2 * n_req)
    seen: dict = {}
    blocks = np.asarray([seen.setdefault(int(b), len(seen)) for b in blocks], np.int32)
    ts = {"ties": np.repeat(np.arange(n_req // 100) * 0.25, 100),
          "spread": np.sort(1000.0 + rng.random(n_req)),
          "negative": rng.normal(0, 5, n_req)}[case]
    chunks = chunked(offsets, blocks, [1, 700, 701, 2999])
    got = _seconds_quantiles(offsets, chunks, len(seen), np.full(n_req, 8), 4, ts)
    _, want_s = naive.naive_reuse_times(offsets.tolist(), blocks.tolist(), ts.tolist())
    assert got == np.quantile(np.asarray(want_s), QS).tolist()


def test_reuse_pass_rejects_bad_input():
    one = np.array([4]), 4, np.array([0.0])
    with pytest.raises(ValueError):  # a chunk short of its request's accesses
        reuse_pass(np.array([0, 3]), lambda: iter([AccessChunk(0, np.array([0, 2]), np.array([0, 1], np.int32))]),
                   2, *one)
    good = lambda: iter([AccessChunk(0, np.array([0, 2]), np.array([0, 1], np.int32))])  # noqa: E731
    with pytest.raises(ValueError):
        reuse_pass(np.array([0, 2]), good, 2, *one, sample=[1, 0])
    with pytest.raises(ValueError):  # chunks that stop before the last request
        reuse_pass(np.array([0, 2, 2]), good, 2, np.array([4, 0]), 4, np.array([0.0, 1.0]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=300), st.sampled_from([0.05, 0.3, 1.0]), st.booleans(),
       st.lists(st.integers(-2, 600), min_size=1, max_size=12))
def test_sparse_shards_curves_equal_dense(raw, rate, adjust, caps):
    """The analysis evaluates the SHARDS curves from their non-zero entries: the same floats as
    from the dense histograms (which hold an entry per possible distance)."""
    from kvctrace.kernels.sampling import (curve_at, curve_at_sparse, shards_fixed_rate, shards_fixed_size,
                                           sparse_histogram)
    seen: dict = {}
    blocks = np.asarray([seen.setdefault(b, len(seen)) for b in raw], np.int32)
    dense, total, _ = shards_fixed_rate(blocks, len(seen), rate, adjust=adjust)
    (keys, weights), total_sparse, _ = shards_fixed_rate(blocks, len(seen), rate, adjust=adjust, sparse=True)
    assert total_sparse == total
    assert curve_at_sparse(keys, weights, total, caps).tolist() == curve_at(dense, total, caps).tolist()
    hist, total, _, _ = shards_fixed_size(blocks, len(seen), 7, adjust=adjust)
    assert curve_at_sparse(*sparse_histogram(hist), total, caps).tolist() == curve_at(hist, total, caps).tolist()
