"""Replay kernels against the naive reference replayer (tests/naive/replay.py), and the properties
that must hold: prefix <= block hits, Belady >= every online policy, one-tier LRU = exact LRU,
an exclusive LRU hierarchy = one LRU of the summed size, determinism, and the miss taxonomy
(the naive's classification; it sums to the misses; cold = distinct blocks)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kvctrace.kernels import policies
from kvctrace.replay.engine import MISS_CAUSES, HitCounts, miss_taxonomy, run_hits
from kvctrace.kernels.policies import s3fifo
from tests.naive import naive_lru_hit_ratio, naive_replay_run

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


def _taxonomy(hits, caps, n_accesses) -> list[dict]:
    return [dict(zip(MISS_CAUSES, row.tolist())) for row in miss_taxonomy(hits, caps, n_accesses)]


def _check_same(offsets, blocks, n_unique, caps, pols, admit=None, wide=False, **kw):
    """The engine against the naive replayer; ``wide``: the engine's per-block rows in 8-byte
    fields (the width of traces of 2**30 accesses or more) instead of 4-byte ones."""
    from kvctrace.kernels import replay as K
    nu = K.next_use(blocks, np.int64(n_unique)) if wide else K.next_use_for_rows(blocks, n_unique)
    assert nu.dtype == (np.int64 if wide else np.int32)
    got = _kernel(offsets, blocks, n_unique, caps, pols, admit, next_use=nu, **kw)
    naive = naive_replay_run(offsets, blocks, caps, pols, admit, **kw)
    assert got.prefix_hits.tolist() == naive["prefix_hits"]
    assert got.block_hits.tolist() == naive["block_hits"]
    assert got.index_inserts.tolist() == naive["index_inserts"]
    assert got.insert_runs.tolist() == naive["insert_runs"]
    assert got.full_tier.tolist() == naive["full_tier"]
    taxonomy = _taxonomy(got, caps, len(blocks))
    assert taxonomy == naive["misses"]
    # per tier k the causes add up to the accesses tiers 0..k do not serve as prefix hits
    served = np.cumsum(got.prefix_hits.sum(axis=0))
    assert [sum(t.values()) for t in taxonomy] == (len(blocks) - served).tolist()
    assert all(t["cold"] == len(set(blocks.tolist())) for t in taxonomy)
    return got


@settings(max_examples=60, deadline=None)
@given(traces(), st.sampled_from(POLICIES), st.integers(0, 12), st.integers(1, 3))
def test_one_tier_matches_naive(tr, pol, cap, k):
    offsets, blocks, n_unique = tr
    _check_same(offsets, blocks, n_unique, [cap], [pol], [k])


@settings(max_examples=80, deadline=None)
@given(traces(), st.lists(st.sampled_from(POLICIES), min_size=2, max_size=3),
       st.lists(st.integers(0, 8), min_size=3, max_size=3), st.lists(st.integers(1, 2), min_size=3, max_size=3),
       st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_multi_tier_matches_naive(tr, pols, caps, admit, inclusive, promote, demote, wide):
    offsets, blocks, n_unique = tr
    T = len(pols)
    _check_same(offsets, blocks, n_unique, caps[:T], pols, admit[:T], wide=wide, inclusive=inclusive,
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
           np.zeros(n_req, np.int32), np.full(n_req, -1, np.int8), np.zeros(T, np.int64), np.zeros(T, np.int64),
           np.zeros((T + 1, T + 1, K.MISS_KINDS), np.int64)]
    K.replay_tiers(offsets, blocks, np.int64(n_unique), K.next_use(blocks, np.int64(n_unique)),
                   np.array([cap], np.int64), np.array([policies.code("lru")], np.int64), np.array([1], np.int64),
                   False, True, True, *out)
    assert fast.prefix_hits.tolist() == out[0].tolist()
    assert fast.block_hits.tolist() == out[1].tolist()
    assert fast.index_inserts.tolist() == out[2].tolist()
    assert fast.insert_runs.tolist() == out[3].tolist()
    assert fast.full_tier.tolist() == out[4].tolist()
    assert fast.tier_inserts.tolist() == out[5].tolist() and fast.tier_evictions.tolist() == out[6].tolist()
    engine = HitCounts(*out)
    assert miss_taxonomy(fast, [cap], len(blocks)).tolist() == miss_taxonomy(engine, [cap], len(blocks)).tolist()
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


@settings(max_examples=40, deadline=None)
@given(traces(max_req=20, max_len=12, max_id=40), st.sampled_from(POLICIES), st.integers(0, 6),
       st.integers(1, 3), st.booleans())
def test_infinite_top_tier_misses_are_cold_or_prefix_broken(tr, pol, cap1, admit1, inclusive):
    offsets, blocks, n_unique = tr
    caps = [n_unique, cap1]    # the top tier holds every block: nothing is ever evicted from it
    h = _check_same(offsets, blocks, n_unique, caps, [pol, "lru"], [1, admit1], inclusive=inclusive)
    for t in _taxonomy(h, caps, len(blocks)):
        assert t["cold"] == np.unique(blocks).shape[0]
        assert t["capacity"] == t["admission"] == 0
        assert t["prefix_broken"] == int(h.block_hits.sum() - h.prefix_hits.sum())


def test_miss_taxonomy_by_hand():
    # one tier of 1 block admitting from the 2nd access, then a roomy second tier (admit 1)
    # requests: [0, 1] [0, 1] [2, 0]
    offsets = np.array([0, 2, 4, 6], np.int64)
    blocks = np.array([0, 1, 0, 1, 2, 0], np.int64)
    h = _check_same(offsets, blocks, 3, [1, 10], ["lru", "lru"], [2, 1])
    # r0: 0, 1 cold (both enter tier 1). r1: 0 held by tier 1 -> prefix hit of tier 1, a
    # miss of tier 0 never held there (admission); promoted to tier 0. 1: held by tier 1,
    # prefix hit, admission for tier 0; promoted, evicting 0 down to tier 1.
    # r2: 2 cold; 0 held by tier 1 after a broken prefix: capacity for tier 0 (it was held
    # there), prefix_broken for tier 1.
    assert _taxonomy(h, [1, 10], len(blocks)) == [{"cold": 3, "capacity": 1, "prefix_broken": 0, "admission": 2},
                                     {"cold": 3, "capacity": 0, "prefix_broken": 1, "admission": 0}]


def test_zero_capacity_misses_are_capacity_not_admission():
    offsets = np.array([0, 2, 4], np.int64)
    blocks = np.array([0, 1, 0, 1], np.int64)
    for caps, pols in (([0], ["lru"]), ([0, 0], ["lru", "fifo"])):
        h = _check_same(offsets, blocks, 2, caps, pols, [1] * len(caps))
        assert _taxonomy(h, caps, len(blocks))[-1] == {"cold": 2, "capacity": 2, "prefix_broken": 0, "admission": 0}


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
