"""The HEAP family: each tier an indexed 4-ary min-heap keyed by the policy's ``key``; the
victim is the block with the smallest key (O(log n) per operation).

Four children per node, not two: a tier's heap is half as deep, and an eviction (the common
operation: every miss in a full hierarchy evicts once per tier) sifts a block from the root
to the bottom, reading each level's four keys from one cache line. Keys are unique per block
(spec.py), so the victim, and every result, does not depend on the heap's shape.

Sifting moves a hole instead of swapping: entries shift into it and the sifted block is
placed once at the end. Layout in state.py (``hb``, ``hk``, ``hpos``, ``hsize``): a block's
position is stored plus one, so that the zeroed per-block rows start as "not held"."""
from __future__ import annotations

from .spec import hook

ARITY = 4


@hook
def _place(hb, hk, hpos, h, i, b, k):
    """Put block ``b`` with key ``k`` at heap position ``i`` and record its position."""
    hb[h, i] = b
    hk[h, i] = k
    hpos[h, b] = i + 1


@hook
def position(hpos, h, b):
    """Heap position of block ``b`` (-1: not held)."""
    return hpos[h, b] - 1


@hook
def _sift_up(hb, hk, hpos, h, i):
    b = hb[h, i]
    k = hk[h, i]
    while i > 0:
        parent = (i - 1) // ARITY
        if hk[h, parent] <= k:
            break
        _place(hb, hk, hpos, h, i, hb[h, parent], hk[h, parent])
        i = parent
    _place(hb, hk, hpos, h, i, b, k)


@hook
def _sift_down(hb, hk, hpos, hsize, h, i):
    n = hsize[h]
    b = hb[h, i]
    k = hk[h, i]
    while True:
        first = ARITY * i + 1
        if first >= n:
            break
        c = first
        ck = hk[h, first]
        for j in range(first + 1, min(first + ARITY, n)):
            if hk[h, j] < ck:
                c = j
                ck = hk[h, j]
        if ck >= k:
            break
        _place(hb, hk, hpos, h, i, hb[h, c], ck)
        i = c
    _place(hb, hk, hpos, h, i, b, k)


@hook
def remove_at(hb, hk, hpos, hsize, h, i):
    """Take out the block at heap position ``i`` (0: the smallest key) and return it."""
    b = hb[h, i]
    hpos[h, b] = 0
    n = hsize[h] - 1
    hsize[h] = n
    if i < n:
        _place(hb, hk, hpos, h, i, hb[h, n], hk[h, n])
        if i > 0 and hk[h, i] < hk[h, (i - 1) // ARITY]:
            _sift_up(hb, hk, hpos, h, i)
        else:
            _sift_down(hb, hk, hpos, hsize, h, i)
    return b


@hook
def set_key(hb, hk, hpos, hsize, h, i, key):
    """Give the block at heap position ``i`` a new key (a hit)."""
    old = hk[h, i]
    hk[h, i] = key
    if key < old:
        _sift_up(hb, hk, hpos, h, i)
    else:
        _sift_down(hb, hk, hpos, hsize, h, i)


@hook
def push(hb, hk, hpos, hsize, h, b, key):
    n = hsize[h]
    _place(hb, hk, hpos, h, n, b, key)
    hsize[h] = n + 1
    _sift_up(hb, hk, hpos, h, n)


@hook
def replace_top(hb, hk, hpos, hsize, h, b, key):
    """Evict the block with the smallest key and insert ``b`` with ``key`` in one sift (a
    full tier's insertion): the same heap contents as ``remove_at(0)`` then ``push``, with
    one sift instead of two. Returns the evicted block."""
    v = hb[h, 0]
    hpos[h, v] = 0
    _place(hb, hk, hpos, h, 0, b, key)
    _sift_down(hb, hk, hpos, hsize, h, 0)
    return v
