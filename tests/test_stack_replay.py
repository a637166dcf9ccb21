"""The stack-distance LRU hierarchy (kernels/stack_replay.py) gives exactly what the engine
(kernels/replay.py) and the naive reference replayer give, for every capacity vector."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from kvctrace.kernels import policies
from kvctrace.kernels.reuse import stack_distances
from kvctrace.kernels.stack_replay import cumulative, lru_tiers_from_distances
from kvctrace.replay.engine import HitCounts, run_hits
from tests.naive import naive_replay

from .test_replay_engine import traces


def stack_hits(offsets, blocks, n_unique, caps_rows) -> HitCounts:
    caps_rows = np.asarray(caps_rows, np.int64)
    out = HitCounts.empty(offsets.shape[0] - 1, caps_rows.shape[1], configs=(caps_rows.shape[0],))
    dist = stack_distances(blocks, n_unique)
    lru_tiers_from_distances(offsets, blocks, dist, cumulative(caps_rows), *out.arrays())
    return out


@settings(max_examples=120, deadline=None)
@given(traces(max_req=16, max_len=10, max_id=40),
       st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=4), min_size=1, max_size=4))
def test_matches_engine_and_naive_for_every_capacity_vector(tr, rows):
    offsets, blocks, n_unique = tr
    T = min(len(r) for r in rows)
    caps_rows = [r[:T] for r in rows]
    got = stack_hits(offsets, blocks, n_unique, caps_rows)
    lru = policies.code("lru")
    for c, caps in enumerate(caps_rows):
        engine = run_hits(offsets, blocks, n_unique, caps, [lru] * T, [1] * T)
        if T > 1:   # (the one-tier engine path does not count tier traffic the same way)
            for name in ("tier_inserts", "tier_evictions"):
                assert getattr(got, name)[c].tolist() == getattr(engine, name).tolist(), (name, caps)
        for name in ("prefix_hits", "block_hits", "index_inserts", "insert_runs", "full_tier", "miss_hist"):
            assert getattr(got, name)[c].tolist() == getattr(engine, name).tolist(), (name, caps)
        ph, bh, ins, runs, full = naive_replay(offsets, blocks, caps, ["lru"] * T)
        assert (got.prefix_hits[c].tolist(), got.block_hits[c].tolist(), got.index_inserts[c].tolist(),
                got.insert_runs[c].tolist(), got.full_tier[c].tolist()) == (ph, bh, ins, runs, full)


def test_a_larger_trace_against_the_engine():
    rng = np.random.default_rng(3)
    reqs = [list(rng.integers(0, 400, rng.integers(1, 30))) for _ in range(600)]
    offsets = np.concatenate(([0], np.cumsum([len(r) for r in reqs]))).astype(np.int64)
    raw = np.concatenate(reqs)
    _, blocks = np.unique(raw, return_inverse=True)
    blocks = blocks.astype(np.int64)
    n_unique = int(blocks.max()) + 1
    rows = [[20, 50, 100], [0, 30, 0], [7, 0, 300], [400, 400, 400], [0, 0, 0]]
    got = stack_hits(offsets, blocks, n_unique, rows)
    lru = policies.code("lru")
    for c, caps in enumerate(rows):
        engine = run_hits(offsets, blocks, n_unique, caps, [lru] * 3, [1] * 3)
        for a, b in zip(got.arrays(), engine.arrays()):
            assert np.array_equal(a[c], b), caps
