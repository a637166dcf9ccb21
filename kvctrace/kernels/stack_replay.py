"""Exact multi-tier LRU replays from one pass of stack distances: every capacity vector of an
exclusive all-LRU hierarchy at the cost of a scan, instead of a replay each.

Why it is exact: in an exclusive hierarchy of LRU tiers with promotion on hit and demotion on
eviction, admitting every block (``kernels/replay.py`` semantics), the tiers' lists laid end
to end, fastest first, are one LRU stack of the total capacity. A hit moves the block to the
top of tier 0 and pushes every block above its old position down by one, each tier passing its
least recent block to the next tier below (the tier it came from has the hole that stops the
cascade); a miss does the same with no hole, and the last tier drops its least recent block.
So with cumulative capacities ``K_0 <= K_1 <= ... <= K_{T-1}`` (``K_m`` = capacity of tiers
``0..m``), an access with stack distance ``d`` (distinct other blocks since the block's
previous access; ``-1`` for a first access) hits tier ``m`` exactly when
``K_{m-1} <= d < K_m``, and misses when ``d < 0`` or ``d >= K_{T-1}``.

Tier traffic follows from the same picture: the block at position ``K_m - 1`` crosses into the
tiers below (tier m evicts it) when an access hits at ``d >= K_m``, or misses while the stack
holds at least ``K_m`` blocks (one per distinct block seen so far, at most the capacity).
A non-empty tier receives the blocks its nearest non-empty tier above evicts; the top
non-empty tier receives every miss (when the hierarchy has any capacity) and every hit from
below it. Empty tiers (capacity 0) do nothing, as in the engine.

Checked against the engine (``replay_tiers``) and the naive reference (tests/naive/replay.py)
by a property test (tests/test_stack_replay.py).
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .replay import FIRST, OTHER, PREFIX_HIT


@nb.njit(cache=True)
def _one_config(offsets, blocks, dist, cuts, prefix_hits, block_hits, index_inserts, insert_runs,
                full_tier, tier_inserts, tier_evictions, miss_hist):
    """Outputs of one capacity vector (``cuts``: cumulative capacities, non-decreasing).
    ``miss_hist`` as the engine counts it (kernels/replay.py): every block seen before has
    been held by the top non-empty tier, so only first accesses count, unless tier 0 is empty."""
    T = cuts.shape[0]
    total = cuts[T - 1]
    top = -1                      # the top non-empty tier
    for m in range(T):
        if cuts[m] > (cuts[m - 1] if m > 0 else 0):
            top = m
            break
    seen = 0                      # distinct blocks so far = accesses with d < 0 so far
    for r in range(offsets.shape[0] - 1):
        open_, last_ins = True, -2     # the prefix is still unbroken; no insert yet
        full_tier[r] = -1
        hi = offsets[r + 1]
        for i in range(offsets[r], hi):
            d = dist[i]
            k = -1
            if d >= 0 and d < total:
                for m in range(T):
                    if d < cuts[m]:
                        k = m
                        break
            for m in range(T):     # evictions: the block at depth cuts[m] - 1 moves down
                below = cuts[m - 1] if m > 0 else 0
                if cuts[m] > below and ((d >= 0 and d >= cuts[m]) or (d < 0 and seen >= cuts[m])):
                    tier_evictions[m] += 1
            if d < 0:
                miss_hist[T, T, FIRST] += 1
            elif top != 0:
                miss_hist[k if k >= 0 else T, top if top >= 0 else T, PREFIX_HIT if k >= 0 and open_ else OTHER] += 1
            if k >= 0:
                block_hits[r, k] += 1
                if open_:
                    prefix_hits[r, k] += 1
                    if i == hi - 1:
                        full_tier[r] = k
                if k > top:
                    tier_inserts[top] += 1
            else:
                open_ = False
                if total > 0:
                    tier_inserts[top] += 1
                    index_inserts[r] += 1
                    b = blocks[i]
                    if b != last_ins + 1:
                        insert_runs[r] += 1
                    last_ins = b
            if d < 0:
                seen += 1
    # demotions: a non-empty tier receives what the non-empty tier above it evicts
    above = top
    for m in range(top + 1 if top >= 0 else T, T):
        if cuts[m] > cuts[m - 1]:
            tier_inserts[m] += tier_evictions[above]
            above = m


@nb.njit(cache=True, parallel=True)
def lru_tiers_from_distances(offsets, blocks, dist, cuts, prefix_hits, block_hits, index_inserts, insert_runs,
                             full_tier, tier_inserts, tier_evictions, miss_hist):
    """Replay outputs (``replay_tiers``'s arrays with a leading config axis) of an exclusive
    all-LRU hierarchy, admission 1, promotion and demotion on, for every row of ``cuts`` (R, T):
    cumulative tier capacities. ``dist``: stack distance per access (kernels/reuse.py)."""
    for c in nb.prange(cuts.shape[0]):
        _one_config(offsets, blocks, dist, cuts[c], prefix_hits[c], block_hits[c], index_inserts[c],
                    insert_runs[c], full_tier[c], tier_inserts[c], tier_evictions[c], miss_hist[c])


def cumulative(caps: np.ndarray) -> np.ndarray:
    """Per-tier capacities (R, T) -> cumulative capacities ``K_m`` (R, T), int64."""
    return np.cumsum(np.asarray(caps, np.int64), axis=-1)
