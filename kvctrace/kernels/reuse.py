"""Exact LRU stack distances, reuse times and per-request hit counts (Numba).

Stack distance convention (used everywhere in kvctrace):
``d(t)`` = number of *distinct other* blocks accessed strictly between the previous access to
``blocks[t]`` and ``t``. A re-access of the most recently used block has ``d = 0``; a first
access is cold (``d = -1`` here, "infinite"). An LRU cache of capacity ``C`` blocks, updated
on every access, hits exactly when ``0 <= d < C``, so the hit ratio at ``C`` is the fraction of
accesses with ``0 <= d < C`` (Mattson et al. 1970), for every ``C`` at once.

Algorithm (O(N log N)): a Fenwick tree over access times holds a 1 at the time of each block's
most recent access (stored as a bitmap plus a Fenwick tree over its 64-bit words:
``kernels/markers.py``). At time ``t`` with previous access ``p``, all markers lie at times
``<= t-1`` and there is one per distinct block seen so far (``seen``), so the number of markers
in ``(p, t)`` is ``seen - prefix(p)``: one prefix query instead of a range query. Then the
marker moves from ``p`` to ``t``.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from .arrays import ids
from .markers import markers_upto, publish_word, remove_marker


@nb.njit(cache=True, nogil=True)
def _stack_distances(offsets, blocks, n_unique):
    """Stack distance (int32, -1 cold) and reuse distance in requests (int32, -1 cold; 0 =
    re-accessed within the same request) of every access; requests given as CSR offsets."""
    n = blocks.shape[0]
    n_words = (n >> 6) + 1
    bits = np.zeros(n_words, np.uint64)
    tree = np.zeros(n_words + 1, np.int32)  # counts never exceed n_unique < 2**31
    # Per block: (time << 32) | request of its last access, -1 if never accessed. One word,
    # so the one random memory access per block access fetches both.
    last = np.full(n_unique, -1, np.int64)
    dist = np.empty(n, np.int32)
    reuse_req = np.empty(n, np.int32)
    seen = 0
    for r in range(offsets.shape[0] - 1):
        for t in range(offsets[r], offsets[r + 1]):
            w_now = t >> 6
            if (t & 63) == 0 and w_now > 0:
                publish_word(bits, tree, w_now - 1)
            b = blocks[t]
            state = last[b]
            if state < 0:
                dist[t] = -1
                reuse_req[t] = -1
                seen += 1
            else:
                p = state >> 32
                dist[t] = seen - markers_upto(bits, tree, p)
                reuse_req[t] = r - (state & 0xFFFFFFFF)
                remove_marker(bits, tree, p, w_now)
            bits[w_now] |= np.uint64(1) << np.uint64(t & 63)
            last[b] = (np.int64(t) << 32) | r
    return dist, reuse_req


@nb.njit(cache=True, nogil=True)
def _reuse_seconds(offsets, reuse_req, ts, n_warm):
    """Seconds since the previous access of the same block, for warm accesses only (in
    access order), and their counts in log2 bins: bin 0 = [0, 1), bin e = [2**(e-1), 2**e)."""
    out = np.empty(n_warm, np.float64)
    bins = np.zeros(1100, np.int64)  # 2**1100 s is past any float64 time difference
    top = 0
    k = 0
    for r in range(offsets.shape[0] - 1):
        for t in range(offsets[r], offsets[r + 1]):
            d = reuse_req[t]
            if d >= 0:
                v = ts[r] - ts[r - d]
                out[k] = v
                k += 1
                e = 0
                if v >= 1.0:
                    e = math.frexp(v)[1]
                bins[e] += 1
                if e > top:
                    top = e
    return out, bins[:top + 1]


@nb.njit(cache=True, nogil=True)
def _reuse_request_counts(reuse_req, n_req):
    """counts[k] = warm accesses whose block was last accessed k requests earlier."""
    counts = np.zeros(max(n_req, 1), np.int64)
    for i in range(reuse_req.shape[0]):
        d = reuse_req[i]
        if d >= 0:
            counts[d] += 1
    return counts


@nb.njit(cache=True, nogil=True)
def _distance_counts(dist):
    top = -1
    for i in range(dist.shape[0]):
        if dist[i] > top:
            top = dist[i]
    counts = np.zeros(top + 1, np.int64)
    cold = 0
    for i in range(dist.shape[0]):
        d = dist[i]
        if d >= 0:
            counts[d] += 1
        else:
            cold += 1
    return counts, cold


@nb.njit(cache=True, nogil=True)
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


@nb.njit(cache=True, nogil=True)
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


def _check_blocks(blocks, n_unique):
    blocks = ids(blocks)
    if blocks.ndim != 1:
        raise ValueError("blocks must be one-dimensional")
    if blocks.shape[0] >= 2**31:
        raise ValueError("more than 2**31 accesses: split the trace")
    if blocks.shape[0] == 0:
        return blocks, int(n_unique or 0)
    lo, hi = int(blocks.min()), int(blocks.max())
    if lo < 0:
        raise ValueError("block ids must be dense non-negative ids")
    if n_unique is None:
        n_unique = hi + 1
    elif hi >= n_unique:
        raise ValueError(f"block id {hi} >= n_unique {n_unique}")
    return blocks, int(n_unique)


def stack_distances(blocks: np.ndarray, n_unique: int | None = None) -> np.ndarray:
    """Exact LRU stack distance (int32) of every access, ``-1`` for a first access.
    ``blocks`` are dense ids ``0 .. n_unique-1``."""
    blocks, n_unique = _check_blocks(blocks, n_unique)
    offsets = np.array([0, blocks.shape[0]], np.int64)
    return _stack_distances(offsets, blocks, np.int64(max(n_unique, 1)))[0]


def stack_distances_by_request(offsets: np.ndarray, blocks: np.ndarray,
                               n_unique: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack distances and reuse distances in requests (both int32, ``-1`` = first access;
    a reuse of ``0`` requests is a re-access inside the same request)."""
    blocks, n_unique = _check_blocks(blocks, n_unique)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.shape[0] < 1 or offsets[0] != 0 or offsets[-1] != blocks.shape[0]:
        raise ValueError("offsets must start at 0 and end at len(blocks)")
    return _stack_distances(offsets, blocks, np.int64(max(n_unique, 1)))


def reuse_seconds(offsets: np.ndarray, reuse_req: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reuse time in seconds of every warm access (float64, access order) and their counts in
    log2 bins (bin 0 = [0, 1) s, bin e = [2**(e-1), 2**e) s)."""
    n_warm = int(np.count_nonzero(reuse_req >= 0))
    return _reuse_seconds(np.ascontiguousarray(offsets, dtype=np.int64), reuse_req,
                          np.ascontiguousarray(ts, dtype=np.float64), n_warm)


def reuse_request_counts(reuse_req: np.ndarray, n_requests: int) -> np.ndarray:
    """``counts[k]``: warm accesses whose previous access was ``k`` requests earlier."""
    return _reuse_request_counts(np.ascontiguousarray(reuse_req), np.int64(n_requests))


def quantiles_from_counts(counts: np.ndarray, qs) -> np.ndarray:
    """Quantiles of the integer sample described by ``counts[value]``, identical to
    ``np.quantile(sample, qs)`` (linear interpolation between order statistics)."""
    cum = np.cumsum(counts)
    n = int(cum[-1]) if cum.shape[0] else 0
    if n == 0:
        return np.full(len(qs), np.nan)
    h = (n - 1) * np.asarray(qs, dtype=np.float64)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    x_lo = np.searchsorted(cum, lo, side="right").astype(np.float64)
    x_hi = np.searchsorted(cum, hi, side="right").astype(np.float64)
    return x_lo + (h - lo) * (x_hi - x_lo)


def distance_counts(dist: np.ndarray) -> tuple[np.ndarray, int]:
    """``counts[d]`` = accesses with stack distance ``d`` (finite ones), and the cold count."""
    if dist.shape[0] == 0:
        return np.zeros(0, np.int64), 0
    counts, cold = _distance_counts(dist)
    return counts, int(cold)


def hit_ratio_at(counts: np.ndarray, n_accesses: int, capacities) -> np.ndarray:
    """Exact LRU hit ratio at each capacity (blocks) from distance counts: share of accesses
    with ``0 <= d < C``. ``C = 0`` gives 0; a capacity past the largest distance gives the
    unlimited-cache hit ratio."""
    caps = np.asarray(capacities, dtype=np.int64)
    if n_accesses == 0:
        return np.zeros(caps.shape, np.float64)
    if counts.shape[0] == 0:
        return np.zeros(caps.shape, np.float64)
    cum = np.cumsum(counts)  # cum[d] = #accesses with distance <= d (no leading 0: one copy less)
    idx = np.clip(caps, 0, cum.shape[0])  # #accesses with d < C = cum[C - 1]
    return np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0) / float(n_accesses)


def per_request_hits(offsets: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(blocks seen before, leading run of blocks seen before) per request."""
    return _per_request_hits(np.ascontiguousarray(offsets, dtype=np.int64), np.ascontiguousarray(dist))


def hit_tokens(offsets, dist, input_len, block_size: int, prefix_only: bool = False):
    """(hit tokens, block-covered tokens) per request; see ``_hit_tokens``."""
    return _hit_tokens(np.ascontiguousarray(offsets, dtype=np.int64),
                       np.ascontiguousarray(dist),
                       np.ascontiguousarray(input_len, dtype=np.int64),
                       np.int64(block_size), bool(prefix_only))
