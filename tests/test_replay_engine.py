"""Replay kernels against the naive reference replayer (tests/naive/replay.py), and the properties
that must hold: prefix <= block hits, Belady >= every online policy, one-tier LRU = exact LRU,
an exclusive LRU hierarchy = one LRU of the summed size, determinism."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kvctrace.kernels import policies
from kvctrace.replay.engine import run_hits
from kvctrace.kernels.policies import s3fifo
from tests.naive import naive_lru_hit_ratio, naive_replay

POLICIES = policies.names()


@st.composite
def traces(draw, max_req=14, max_len=9, max_id=30):
    """Random small traces: requests of random ids (not chained) or chained prefixes."""
    n_req = draw(st.integers(1, max_req))
    chained = draw(st.booleans())
    reqs = []
    for _ in range(n_req):
        if chained and reqs and draw(st.booleans()):
            base = draw(st.sampled_from(reqs))
            keep = draw(st.integers(0, len(base)))
            tail = draw(st.lists(st.integers(0, max_id), max_size=max_len - keep))
            reqs.append(base[:keep] + [max_id + 1 + x for x in tail])
        else:
            reqs.append(draw(st.lists(st.integers(0, max_id), min_size=0, max_size=max_len)))
    raw = [b for r in reqs for b in r]
    ids = {}
    dense = [ids.setdefault(b, len(ids)) for b in raw]
    offsets = np.concatenate(([0], np.cumsum([len(r) for r in reqs]))).astype(np.int64)
    return offsets, np.array(dense, np.int64), max(len(ids), 1)


def _kernel(offsets, blocks, n_unique, caps, pols, admit=None, **kw):
    codes = [policies.get(p).code for p in pols]
    return run_hits(offsets, blocks, n_unique, caps, codes, admit or [1] * len(caps), **kw)


def _check_same(offsets, blocks, n_unique, caps, pols, admit=None, **kw):
    got = _kernel(offsets, blocks, n_unique, caps, pols, admit, **kw)
    ph, bh, ins, runs, full = naive_replay(offsets, blocks, caps, pols, admit, **kw)
    assert got.prefix_hits.tolist() == ph
    assert got.block_hits.tolist() == bh
    assert got.index_inserts.tolist() == ins
    assert got.insert_runs.tolist() == runs
    assert got.full_tier.tolist() == full
    return got


@settings(max_examples=60, deadline=None)
@given(traces(), st.sampled_from(POLICIES), st.integers(0, 12), st.integers(1, 3))
def test_one_tier_matches_naive(tr, pol, cap, k):
    offsets, blocks, n_unique = tr
    _check_same(offsets, blocks, n_unique, [cap], [pol], [k])


@settings(max_examples=80, deadline=None)
@given(traces(), st.lists(st.sampled_from(POLICIES), min_size=2, max_size=3),
       st.lists(st.integers(0, 8), min_size=3, max_size=3), st.lists(st.integers(1, 2), min_size=3, max_size=3),
       st.booleans(), st.booleans(), st.booleans())
def test_multi_tier_matches_naive(tr, pols, caps, admit, inclusive, promote, demote):
    offsets, blocks, n_unique = tr
    T = len(pols)
    _check_same(offsets, blocks, n_unique, caps[:T], pols, admit[:T], inclusive=inclusive,
                promote=promote, demote=demote)


@settings(max_examples=40, deadline=None)
@given(traces(max_req=20, max_len=12, max_id=40), st.integers(1, 25))
def test_belady_bounds_online_policies_and_prefix_le_block(tr, cap):
    offsets, blocks, n_unique = tr
    opt = int(_kernel(offsets, blocks, n_unique, [cap], ["belady"]).block_hits.sum())
    for pol in POLICIES:
        h = _kernel(offsets, blocks, n_unique, [cap], [pol])
        assert int(h.block_hits.sum()) <= opt, pol
        assert (h.prefix_hits <= h.block_hits).all()


@settings(max_examples=40, deadline=None)
@given(traces(max_req=20, max_len=12, max_id=40), st.integers(0, 30))
def test_one_tier_lru_fast_path_equals_engine_and_naive_lru(tr, cap):
    from kvctrace.kernels import replay as K
    offsets, blocks, n_unique = tr
    fast = _kernel(offsets, blocks, n_unique, [cap], ["lru"])  # linked-list fast path
    T = 1
    n_req = len(offsets) - 1
    out = [np.zeros((n_req, T), np.int32), np.zeros((n_req, T), np.int32), np.zeros(n_req, np.int32),
           np.zeros(n_req, np.int32), np.full(n_req, -1, np.int8), np.zeros(T, np.int64), np.zeros(T, np.int64)]
    K.replay_tiers(offsets, blocks, np.int64(n_unique), K.next_use(blocks, np.int64(n_unique)),
                   np.array([cap], np.int64), np.array([policies.code("lru")], np.int64), np.array([1], np.int64),
                   False, True, True, *out)
    assert fast.prefix_hits.tolist() == out[0].tolist()
    assert fast.block_hits.tolist() == out[1].tolist()
    assert fast.index_inserts.tolist() == out[2].tolist()
    assert fast.insert_runs.tolist() == out[3].tolist()
    assert fast.full_tier.tolist() == out[4].tolist()
    assert fast.tier_inserts.tolist() == out[5].tolist() and fast.tier_evictions.tolist() == out[6].tolist()
    n = len(blocks)
    if n:
        assert int(fast.block_hits.sum()) == round(naive_lru_hit_ratio(blocks.tolist(), cap) * n)


@settings(max_examples=40, deadline=None)
@given(traces(max_req=20, max_len=12, max_id=40), st.integers(1, 8), st.integers(1, 8), st.integers(0, 8))
def test_exclusive_lru_hierarchy_is_one_lru_of_summed_size(tr, c0, c1, c2):
    offsets, blocks, n_unique = tr
    three = _kernel(offsets, blocks, n_unique, [c0, c1, c2], ["lru"] * 3)
    one = _kernel(offsets, blocks, n_unique, [c0 + c1 + c2], ["lru"])
    assert three.block_hits.sum(axis=1).tolist() == one.block_hits[:, 0].tolist()
    assert three.prefix_hits.sum(axis=1).tolist() == one.prefix_hits[:, 0].tolist()


def test_deterministic():
    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 500, 20000)
    _, dense = np.unique(blocks, return_inverse=True)
    offsets = np.arange(0, 20001, 10, dtype=np.int64)
    for pol in POLICIES:
        a = _kernel(offsets, dense.astype(np.int64), 500, [50, 100], [pol, "lru"], [1, 2])
        b = _kernel(offsets, dense.astype(np.int64), 500, [50, 100], [pol, "lru"], [1, 2])
        assert (a.prefix_hits == b.prefix_hits).all() and (a.block_hits == b.block_hits).all()


def test_prefix_lru_evicts_tail_before_head():
    # request 0 = [0, 1, 2]; capacity 3; request 1 = [3] forces one eviction.
    # LRU evicts block 0 (touched first), leaf-first evicts block 2 (deepest).
    offsets = np.array([0, 3, 4, 7], np.int64)
    blocks = np.array([0, 1, 2, 3, 0, 1, 2], np.int64)
    lru = _kernel(offsets, blocks, 4, [3], ["lru"])
    leaf = _kernel(offsets, blocks, 4, [3], ["prefix-lru"])
    assert lru.prefix_hits[2, 0] == 0
    assert leaf.prefix_hits[2, 0] == 2


def test_unknown_policy_lists_valid_names():
    from kvctrace.errors import UnknownNameError
    with pytest.raises(UnknownNameError) as e:
        policies.get("clock")
    assert "lru" in str(e.value) and "s3fifo" in str(e.value)


def test_s3fifo_sizes():
    assert s3fifo.sizes(100) == (10, 90, 90)
    assert s3fifo.sizes(5) == (1, 4, 4)  # small kept at >= 1 block (libCacheSim would cache nothing)
