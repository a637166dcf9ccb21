"""The HEAP family: each tier an indexed binary min-heap keyed by the policy's ``key``; the
victim is the block with the smallest key (O(log n) per operation).

Sifting moves a hole instead of swapping: entries shift into it and the sifted block is
placed once at the end. Layout in state.py (``hb``, ``hk``, ``hpos``, ``hsize``)."""
from __future__ import annotations

import numba as nb


@nb.njit(cache=True, inline="always")
def _place(hb, hk, hpos, h, i, b, k):
    """Put block ``b`` with key ``k`` at heap position ``i`` and record its position."""
    hb[h, i] = b
    hk[h, i] = k
    hpos[h, b] = i


@nb.njit(cache=True, inline="always")
def _sift_up(hb, hk, hpos, h, i):
    b = hb[h, i]
    k = hk[h, i]
    while i > 0:
        parent = (i - 1) >> 1
        if hk[h, parent] <= k:
            break
        _place(hb, hk, hpos, h, i, hb[h, parent], hk[h, parent])
        i = parent
    _place(hb, hk, hpos, h, i, b, k)


@nb.njit(cache=True, inline="always")
def _sift_down(hb, hk, hpos, hsize, h, i):
    n = hsize[h]
    b = hb[h, i]
    k = hk[h, i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and hk[h, c + 1] < hk[h, c]:
            c += 1
        if hk[h, c] >= k:
            break
        _place(hb, hk, hpos, h, i, hb[h, c], hk[h, c])
        i = c
    _place(hb, hk, hpos, h, i, b, k)


@nb.njit(cache=True, inline="always")
def remove_at(hb, hk, hpos, hsize, h, i):
    """Take out the block at heap position ``i`` (0: the smallest key) and return it."""
    b = hb[h, i]
    hpos[h, b] = -1
    n = hsize[h] - 1
    hsize[h] = n
    if i < n:
        _place(hb, hk, hpos, h, i, hb[h, n], hk[h, n])
        if i > 0 and hk[h, i] < hk[h, (i - 1) >> 1]:
            _sift_up(hb, hk, hpos, h, i)
        else:
            _sift_down(hb, hk, hpos, hsize, h, i)
    return b


@nb.njit(cache=True, inline="always")
def set_key(hb, hk, hpos, hsize, h, i, key):
    """Give the block at heap position ``i`` a new key (a hit)."""
    old = hk[h, i]
    hk[h, i] = key
    if key < old:
        _sift_up(hb, hk, hpos, h, i)
    else:
        _sift_down(hb, hk, hpos, hsize, h, i)


@nb.njit(cache=True, inline="always")
def push(hb, hk, hpos, hsize, h, b, key):
    n = hsize[h]
    _place(hb, hk, hpos, h, n, b, key)
    hsize[h] = n + 1
    _sift_up(hb, hk, hpos, h, n)
