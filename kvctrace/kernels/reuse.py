"""Exact LRU stack distances, reuse times and per-request hit counts (Numba).

Stack distance convention (used everywhere in kvctrace):
``d(t)`` = number of *distinct other* blocks accessed strictly between the previous access to
``blocks[t]`` and ``t``. A re-access of the most recently used block has ``d = 0``; a first
access is cold (``d = -1`` here, "infinite"). An LRU cache of capacity ``C`` blocks, updated
on every access, hits exactly when ``0 <= d < C``, so the hit ratio at ``C`` is the fraction of
accesses with ``0 <= d < C`` (Mattson et al. 1970), for every ``C`` at once.

Algorithm (O(N log N)): a Fenwick tree over access times holds a 1 at the time of each block's
most recent access (stored as a bitmap plus a Fenwick tree over its 64-bit words). At time ``t`` with previous access ``p``, all markers lie at times
``<= t-1`` and there is one per distinct block seen so far (``seen``), so the number of markers
in ``(p, t)`` is ``seen - prefix(p)``: one prefix query instead of a range query. Then the
marker moves from ``p`` to ``t``.
"""
from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def _popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


# Markers live in a bitmap, one bit per access time; a Fenwick tree counts the markers of each
# finished 64-bit word. The tree has n/64 entries, so it stays in cache; the word being filled
# (the current time) joins the tree only once complete, since every query asks about a time
# before ``t``. The helpers below are shared with the SHARDS kernels (kernels/sampling.py).

@nb.njit(cache=True, inline="always")
def _publish_word(bits, tree, w_done):
    """Word ``w_done`` is complete: add its marker count to the tree."""
    c = _popcount64(bits[w_done])
    n_words = tree.shape[0] - 1
    i = w_done + 1
    while i <= n_words:
        tree[i] += c
        i += i & (-i)


@nb.njit(cache=True, inline="always")
def _markers_upto(bits, tree, p):
    """Number of markers at times ``<= p``."""
    w = p >> 6
    k = np.uint64(p & 63)
    one = np.uint64(1)
    s = _popcount64(bits[w] & (((one << k) - one) | (one << k)))
    i = w
    while i > 0:
        s += tree[i]
        i &= i - 1
    return s


@nb.njit(cache=True, inline="always")
def _remove_marker(bits, tree, p, w_now):
    w = p >> 6
    bits[w] &= ~(np.uint64(1) << np.uint64(p & 63))
    if w < w_now:  # only finished words are counted in the tree
        n_words = tree.shape[0] - 1
        i = w + 1
        while i <= n_words:
            tree[i] -= 1
            i += i & (-i)


@nb.njit(cache=True)
def _stack_distances(blocks, n_unique):
    n = blocks.shape[0]
    n_words = (n >> 6) + 1
    bits = np.zeros(n_words, np.uint64)
    tree = np.zeros(n_words + 1, np.int32)  # counts never exceed n_unique < 2**31
    last = np.full(n_unique, -1, np.int64)
    dist = np.empty(n, np.int64)
    prev = np.empty(n, np.int64)
    seen = 0
    for t in range(n):
        w_now = t >> 6
        if (t & 63) == 0 and w_now > 0:
            _publish_word(bits, tree, w_now - 1)
        b = blocks[t]
        p = last[b]
        prev[t] = p
        if p < 0:
            dist[t] = -1
            seen += 1
        else:
            dist[t] = seen - _markers_upto(bits, tree, p)
            _remove_marker(bits, tree, p, w_now)
        bits[w_now] |= np.uint64(1) << np.uint64(t & 63)
        last[b] = t
    return dist, prev


@nb.njit(cache=True)
def _per_request_hits(offsets, dist):
    """Per request: accesses seen before (``dist >= 0``) and the prefix run of them from pos 0."""
    n_req = offsets.shape[0] - 1
    hits = np.zeros(n_req, np.int64)
    prefix = np.zeros(n_req, np.int64)
    for r in range(n_req):
        run = True
        h = 0
        ph = 0
        for i in range(offsets[r], offsets[r + 1]):
            if dist[i] >= 0:
                h += 1
                if run:
                    ph += 1
            else:
                run = False
        hits[r] = h
        prefix[r] = ph
    return hits, prefix


@nb.njit(cache=True)
def _hit_tokens(offsets, dist, input_len, block_size, prefix_only):
    """Tokens of hit blocks per request and tokens covered by the request's blocks.

    Block ``j < n-1`` holds ``block_size`` tokens; the last one holds
    ``input_len - (n-1)*block_size``, clipped to ``[0, block_size]`` (a trace whose
    ``input_len`` disagrees with its block count cannot make a block hold more or fewer)."""
    n_req = offsets.shape[0] - 1
    hit_tok = np.zeros(n_req, np.int64)
    all_tok = np.zeros(n_req, np.int64)
    for r in range(n_req):
        lo = offsets[r]
        n = offsets[r + 1] - lo
        if n == 0:
            continue
        last_tok = input_len[r] - (n - 1) * block_size
        if last_tok < 0:
            last_tok = 0
        if last_tok > block_size:
            last_tok = block_size
        h = 0
        run = True
        for j in range(n):
            tok = block_size if j < n - 1 else last_tok
            if dist[lo + j] >= 0:
                if run or not prefix_only:
                    h += tok
            else:
                run = False
        hit_tok[r] = h
        all_tok[r] = (n - 1) * block_size + last_tok
    return hit_tok, all_tok


def stack_distances(blocks: np.ndarray, n_unique: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact LRU stack distance of every access (``-1`` = cold) and the index of the previous
    access to the same block (``-1`` = none). ``blocks`` are dense ids ``0 .. n_unique-1``."""
    blocks = np.ascontiguousarray(blocks, dtype=np.int64)
    if blocks.ndim != 1:
        raise ValueError("blocks must be one-dimensional")
    if blocks.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    lo, hi = int(blocks.min()), int(blocks.max())
    if lo < 0:
        raise ValueError("block ids must be dense non-negative ids")
    if n_unique is None:
        n_unique = hi + 1
    elif hi >= n_unique:
        raise ValueError(f"block id {hi} >= n_unique {n_unique}")
    return _stack_distances(blocks, np.int64(n_unique))


def distance_counts(dist: np.ndarray) -> tuple[np.ndarray, int]:
    """``counts[d]`` = accesses with stack distance ``d`` (finite ones), and the cold count."""
    finite = dist[dist >= 0]
    counts = np.bincount(finite) if finite.shape[0] else np.zeros(0, np.int64)
    return counts.astype(np.int64), int(dist.shape[0] - finite.shape[0])


def hit_ratio_at(counts: np.ndarray, n_accesses: int, capacities) -> np.ndarray:
    """Exact LRU hit ratio at each capacity (blocks) from distance counts: share of accesses
    with ``0 <= d < C``. ``C = 0`` gives 0; a capacity past the largest distance gives the
    unlimited-cache hit ratio."""
    caps = np.asarray(capacities, dtype=np.int64)
    if n_accesses == 0:
        return np.zeros(caps.shape, np.float64)
    cum = np.concatenate(([0], np.cumsum(counts)))  # cum[C] = #accesses with d < C
    idx = np.clip(caps, 0, cum.shape[0] - 1)
    return cum[idx] / float(n_accesses)


def per_request_hits(offsets: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(blocks seen before, leading run of blocks seen before) per request."""
    return _per_request_hits(np.ascontiguousarray(offsets, dtype=np.int64),
                             np.ascontiguousarray(dist, dtype=np.int64))


def hit_tokens(offsets, dist, input_len, block_size: int, prefix_only: bool = False):
    """(hit tokens, block-covered tokens) per request; see ``_hit_tokens``."""
    return _hit_tokens(np.ascontiguousarray(offsets, dtype=np.int64),
                       np.ascontiguousarray(dist, dtype=np.int64),
                       np.ascontiguousarray(input_len, dtype=np.int64),
                       np.int64(block_size), bool(prefix_only))
