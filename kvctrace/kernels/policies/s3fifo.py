"""S3-FIFO (Yang et al., SOSP'23): a small FIFO (10% of the tier), a main FIFO with a 2-bit
clock, and a ghost FIFO of recently evicted ids (90% of the tier, ids only).

Follows libCacheSim's ``S3FIFO.c`` (the peer the tests compare with), step for step:
* hit: ``freq += 1`` (no cap; main re-insertion clamps it as a 2-bit counter);
* miss: if the id is in the ghost, it leaves the ghost and enters main; otherwise it enters
  small, except that before the first eviction a full small queue sends it to main
  (libCacheSim's change from the paper's original, ``S3FIFOv0.c``);
* eviction (one block leaves per insert into a full tier): from main when main is over its
  share or small is empty, else from small. Small's tail moves to main when its
  ``freq >= 2`` (libCacheSim ``move-to-main-threshold=2``), else it is evicted into the
  ghost. Main's tail is re-inserted at the head with ``freq = min(freq, 3) - 1`` when
  ``freq >= 1``, else evicted.
* sizes: small = floor(0.1 x C), main = C - small, ghost = floor(0.9 x C). One difference by
  design: libCacheSim refuses to insert an object as large as the small queue, so with
  unit-size blocks it caches nothing (except ghost hits) when small < 2 blocks, i.e. C < 20;
  here small is at least 1 block and always admits, so tiny tiers still work. For C >= 20
  hit counts match libCacheSim exactly (tests/test_replay_peer.py).

An OWN-family policy: per block ``st[s, b, :]`` = links, queue id, freq; per tier
``sc[s, :]`` = heads, tails, counts, capacities. Small, main and ghost share the link fields
(lists.py): a block is in at most one of them.
"""
from __future__ import annotations

import numpy as np

from . import lists
from .spec import OWN, PolicySpec, hook

SPEC = PolicySpec("s3fifo", online=True, family=OWN,
                  description="small + main FIFO with ghost (SOSP'23, libCacheSim variant)")

SMALL_RATIO = 0.1
GHOST_RATIO = 0.9
MOVE_TO_MAIN = 2

# st fields (links first, as lists.py expects)
PREV, NEXT, QID, FREQ = 0, 1, 2, 3
N_FIELDS = 4
# queue ids (QID values); 0 = not in this tier
SMALL, MAIN, GHOST = 1, 2, 3
# sc layout: head[q] = q, tail[q] = 3 + q, count[q] = 6 + q, cap[q] = 9 + q, has_evicted = 13
N_SCALARS = 14
HAS_EVICTED = 13


def sizes(capacity: int) -> tuple[int, int, int]:
    """(small, main, ghost) sizes in blocks for a tier of ``capacity`` blocks."""
    small = int(capacity * SMALL_RATIO)
    if capacity >= 1 and small < 1:
        small = 1
    return small, capacity - small, int(capacity * GHOST_RATIO)


@hook
def init_tier(st, sc, s, capacity):
    small = np.int64(capacity * SMALL_RATIO)
    if capacity >= 1 and small < 1:
        small = 1
    for q in range(1, 4):
        sc[s, q] = -1
        sc[s, 3 + q] = -1
        sc[s, 6 + q] = 0
    sc[s, 10] = small
    sc[s, 11] = capacity - small
    sc[s, 12] = np.int64(capacity * GHOST_RATIO)
    sc[s, HAS_EVICTED] = 0


@hook
def _push_head(st, sc, s, q, b):
    lists.push_head(st, sc, s, b, q, 3 + q, 6 + q)
    st[s, b, QID] = q


@hook
def _unlink(st, sc, s, b):
    q = st[s, b, QID]
    lists.unlink(st, sc, s, b, q, 3 + q, 6 + q)
    st[s, b, QID] = 0


@hook
def _ghost_add(st, sc, s, b):
    if sc[s, 12] <= 0:
        return
    if st[s, b, QID] == GHOST:  # a FIFO hit changes nothing
        return
    if sc[s, 9] >= sc[s, 12]:
        _unlink(st, sc, s, sc[s, 6])  # ghost tail
    _push_head(st, sc, s, GHOST, b)


@hook
def _evict_main(st, sc, s):
    while sc[s, 8] > 0:
        b = sc[s, 5]  # main tail
        f = st[s, b, FREQ]
        _unlink(st, sc, s, b)
        if f >= 1:
            _push_head(st, sc, s, MAIN, b)
            st[s, b, FREQ] = (f if f < 3 else 3) - 1
        else:
            return b
    return -1


@hook
def _evict_small(st, sc, s):
    while sc[s, 7] > 0:
        b = sc[s, 4]  # small tail
        _unlink(st, sc, s, b)
        if st[s, b, FREQ] >= MOVE_TO_MAIN:
            _push_head(st, sc, s, MAIN, b)
            st[s, b, FREQ] = 0
        else:
            _ghost_add(st, sc, s, b)
            return b
    return -1


@hook
def _evict(st, sc, s):
    """Evict one block from the tier and return it."""
    while True:
        sc[s, HAS_EVICTED] = 1
        if sc[s, 8] > sc[s, 11] or sc[s, 7] == 0:
            v = _evict_main(st, sc, s)
        else:
            v = _evict_small(st, sc, s)
        if v >= 0:
            return v


@hook
def on_hit(st, sc, s, b):
    st[s, b, FREQ] += 1


@hook
def insert(st, sc, s, b, capacity):
    """Insert ``b`` (not held); return the block evicted to make room, or -1."""
    ghost_hit = st[s, b, QID] == GHOST
    if ghost_hit:
        _unlink(st, sc, s, b)
    victim = -1
    if sc[s, 7] + sc[s, 8] >= capacity:
        victim = _evict(st, sc, s)
    if ghost_hit:
        _push_head(st, sc, s, MAIN, b)
    elif sc[s, HAS_EVICTED] == 0 and sc[s, 7] >= sc[s, 10]:
        _push_head(st, sc, s, MAIN, b)
    else:
        _push_head(st, sc, s, SMALL, b)
    st[s, b, FREQ] = 0
    return victim


@hook
def remove(st, sc, s, b):
    """Take a held block out of the tier (promotion), without a ghost entry."""
    _unlink(st, sc, s, b)
