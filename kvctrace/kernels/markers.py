"""Access-time markers with prefix counts (Numba): the structure behind exact LRU stack
distances (``kernels/reuse.py``) and the SHARDS kernels (``kernels/sampling.py``).

Markers live in a bitmap, one bit per access time (``bits``, uint64 words); a Fenwick tree
(``tree``, int32, one entry per word plus one) counts the markers of each finished 64-bit
word. The tree has n/64 entries, so it stays in cache; the word being filled (the current
time) joins the tree only once complete (``publish_word``), since every query asks about a
time before the current one. The references are the naive stack distances in tests/naive.py.
"""
from __future__ import annotations

import numpy as np

from .nrt import no_refcount


@no_refcount
def popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@no_refcount
def publish_word(bits, tree, w_done):
    """Word ``w_done`` is complete: add its marker count to the tree."""
    c = popcount64(bits[w_done])
    n_words = tree.shape[0] - 1
    i = w_done + 1
    while i <= n_words:
        tree[i] += c
        i += i & (-i)


@no_refcount
def markers_upto(bits, tree, p):
    """Number of markers at times ``<= p``."""
    w = p >> 6
    k = np.uint64(p & 63)
    one = np.uint64(1)
    s = popcount64(bits[w] & (((one << k) - one) | (one << k)))
    i = w
    while i > 0:
        s += tree[i]
        i &= i - 1
    return s


@no_refcount
def remove_marker(bits, tree, p, w_now):
    """Clear the marker at time ``p``; ``w_now`` is the word being filled (not in the tree)."""
    w = p >> 6
    bits[w] &= ~(np.uint64(1) << np.uint64(p & 63))
    if w < w_now:  # only finished words are counted in the tree
        n_words = tree.shape[0] - 1
        i = w + 1
        while i <= n_words:
            tree[i] -= 1
            i += i & (-i)
