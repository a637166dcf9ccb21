"""SHARDS: spatially hashed sampling for approximate LRU miss-ratio curves (Numba).

Waldspurger, Park, Garthwaite, Ahmad, "Efficient MRC Construction with SHARDS", FAST'15.
A block is sampled when ``hash(block) mod P < T`` (rate ``R = T / P``, ``P = 2**24``), so a
sampled block is sampled on every access and the sampled stream is itself an LRU trace of
about ``R`` times the blocks. Stack distances measured in the sampled stream are scaled by
``1/R``: an access with sampled distance ``d`` is estimated to hit a cache of ``C`` blocks
when ``d / R < C`` (the same ``d < C`` convention as kernels/reuse.py).

* Fixed-rate: one rate for the whole trace. ``adjust=True`` applies SHARDS_adj: the
  difference between the expected (``N·R``) and the actual number of sampled accesses is
  added to the distance-0 bucket, which removes most of the bias caused by a few very hot
  blocks landing in (or out of) the sample.
* Fixed-size: at most ``s_max`` distinct blocks are tracked. When a new sampled block would
  exceed that, the tracked block with the largest hash is evicted and ``T`` drops to its hash;
  histogram counts gathered so far are rescaled by ``T_new / T_old`` so that all counts stay
  in units of the current rate. The tracked set, the max-heap and the time index (compacted
  when full) are bounded by ``s_max``. Two arrays are not: a block's marker time is looked up
  in a dense array indexed by block id (kvctrace ids are dense, so this replaces a hash table
  at 8 bytes per distinct block), and the histogram is indexed by scaled distance. The same
  SHARDS_adj correction applies (see ``shards_fixed_size``).

The block hash is ``fmix64(block + SHARDS_SEED)`` (SplitMix64 finalizer, kernels/hashing.py),
so sampling is deterministic.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .arrays import ids
from .hashing import fmix64
from .markers import markers_upto, publish_word, remove_marker
from .nrt import no_refcount
from .reuse import stack_distances

MODULUS_BITS = 24
SHARDS_SEED = np.uint64(0x5348415244533135)  # "SHARDS15"


@nb.njit(cache=True, nogil=True)
def _block_hashes(blocks, bits_p):
    mask = np.uint64((1 << bits_p) - 1)
    out = np.empty(blocks.shape[0], np.int64)
    for i in range(blocks.shape[0]):
        out[i] = np.int64(fmix64(np.uint64(blocks[i]) + SHARDS_SEED) & mask)
    return out


@nb.njit(cache=True, nogil=True)
def _sample_fixed_rate(blocks, threshold, bits_p):
    mask = np.uint64((1 << bits_p) - 1)
    keep = np.empty(blocks.shape[0], np.bool_)
    for i in range(blocks.shape[0]):
        keep[i] = np.int64(fmix64(np.uint64(blocks[i]) + SHARDS_SEED) & mask) < threshold
    return keep


@no_refcount
def _heap_push(hh, hb, size, h, b):
    i = size
    hh[i] = h
    hb[i] = b
    while i > 0:
        parent = (i - 1) >> 1
        if hh[parent] >= hh[i]:
            break
        hh[parent], hh[i] = hh[i], hh[parent]
        hb[parent], hb[i] = hb[i], hb[parent]
        i = parent
    return size + 1


@no_refcount
def _heap_pop(hh, hb, size):
    """Remove the max; returns the new size (the max was at index 0 before the call)."""
    size -= 1
    hh[0] = hh[size]
    hb[0] = hb[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        big = left
        if left + 1 < size and hh[left + 1] > hh[left]:
            big = left + 1
        if hh[i] >= hh[big]:
            break
        hh[big], hh[i] = hh[i], hh[big]
        hb[big], hb[i] = hb[i], hb[big]
        i = big
    return size


@nb.njit(cache=True, nogil=True)
def _compact(bits, tree, last, hb, size):
    """Renumber the tracked blocks' marker times to 0..k-1 (keeping their order) and rebuild
    the bitmap and tree: keeps the time index bounded by the tracked-set size."""
    # Collect (time, block) of every tracked block, sort by time.
    times = np.empty(size, np.int64)
    for j in range(size):
        times[j] = last[hb[j]]
    order = np.argsort(times)
    bits[:] = 0
    tree[:] = 0
    for k in range(size):
        b = hb[order[k]]
        last[b] = k
        bits[k >> 6] |= np.uint64(1) << np.uint64(k & 63)
    # Publish every word before the one holding time size-1; that one is published by the
    # main loop (when size is a multiple of 64) or is still being filled.
    for w in range((size - 1) >> 6 if size > 0 else 0):
        publish_word(bits, tree, w)
    return size


@nb.njit(cache=True, nogil=True)
def _shards_fixed_size(blocks, n_unique, s_max, bits_p):
    n = blocks.shape[0]
    threshold = np.int64(1) << bits_p          # start at rate 1
    # Time index over sampled accesses, compacted when full: size ~ 4 * s_max.
    cap = 4 * (s_max + 1) + 64
    n_words = (cap >> 6) + 1
    bits = np.zeros(n_words, np.uint64)
    tree = np.zeros(n_words + 1, np.int32)
    # marker time of a tracked block, -1 = untracked (times stay below cap: int32 is enough)
    last = np.full(n_unique, -1, np.int32)
    hh = np.empty(s_max + 2, np.int64)         # max-heap of tracked blocks by hash
    hb = np.empty(s_max + 2, np.int64)
    size = 0
    hist = np.zeros(n_unique + 2, np.float64)  # scaled distance -> weight / g
    cold = 0.0
    g = 1.0                                    # global scale: true weight = stored * g
    t = 0                                      # next marker time
    mask = np.uint64((np.int64(1) << bits_p) - 1)
    n_sampled = 0
    for i in range(n):
        b = blocks[i]
        h = np.int64(fmix64(np.uint64(b) + SHARDS_SEED) & mask)
        if h >= threshold:
            continue
        n_sampled += 1
        if t == cap:
            t = _compact(bits, tree, last, hb, size)
        w_now = t >> 6
        if (t & 63) == 0 and w_now > 0:
            publish_word(bits, tree, w_now - 1)
        rate = threshold / float(np.int64(1) << bits_p)
        p = last[b]
        if p < 0:
            cold += 1.0 / g
            size = _heap_push(hh, hb, size, h, b)
        else:
            d = size - markers_upto(bits, tree, p)
            remove_marker(bits, tree, p, w_now)
            k = np.int64(d / rate)
            if k > n_unique:
                k = n_unique
            hist[k] += 1.0 / g
        bits[w_now] |= np.uint64(1) << np.uint64(t & 63)
        last[b] = t
        t += 1
        while size > s_max:
            new_threshold = hh[0]
            while size > 0 and hh[0] == new_threshold:
                victim = hb[0]
                # the word of time t-1 is not yet published
                remove_marker(bits, tree, last[victim], (t - 1) >> 6)
                last[victim] = -1
                size = _heap_pop(hh, hb, size)
            g *= new_threshold / float(threshold)
            threshold = new_threshold
    for k in range(hist.shape[0]):
        hist[k] *= g
    return hist, cold * g, threshold, n_sampled


def shards_fixed_rate(blocks: np.ndarray, n_unique: int, rate: float, adjust: bool = True,
                      sparse: bool = False):
    """Fixed-rate SHARDS. Returns ``(counts, total, n_sampled)``: ``counts[k]`` is the
    (adjusted) number of sampled accesses with scaled distance ``floor(d / R) == k`` and
    ``total`` the denominator (``N·R`` with ``adjust``, else the sampled count). ``sparse``:
    ``counts`` as (the scaled distances that occur, ascending and with 0, their weights), for
    ``curve_at_sparse``: the dense histogram has an entry per possible distance (8 bytes per
    distinct block)."""
    if not 0.0 < rate <= 1.0:
        raise ValueError("SHARDS rate must be in (0, 1]")
    blocks = ids(blocks)
    threshold = max(1, int(round(rate * (1 << MODULUS_BITS))))
    real_rate = threshold / float(1 << MODULUS_BITS)
    keep = _sample_fixed_rate(blocks, np.int64(threshold), MODULUS_BITS)
    sampled = blocks[keep]
    del keep
    n_sampled = int(sampled.shape[0])
    if n_sampled == 0:
        keys, weights, total = np.zeros(1, np.int64), np.zeros(1, np.float64), 0.0
    else:
        # renumbered 0..k-1 (stack distances do not depend on the names): the kernel's per-block
        # state is then sized by the sampled blocks, not by every block of the trace
        uniq, sampled = np.unique(sampled, return_inverse=True)
        dist = stack_distances(sampled.astype(np.int32), uniq.shape[0])
        scaled = np.floor(dist[dist >= 0] / real_rate).astype(np.int64)
        keys, counts = np.unique(np.concatenate(([0], scaled)), return_counts=True)
        weights = counts.astype(np.float64)
        weights[0] -= 1.0  # the 0 added above so that the adjustment has its entry
        total = float(n_sampled)
        if adjust:
            expected = blocks.shape[0] * real_rate
            weights[0] += expected - n_sampled
            total = expected
    if sparse:
        return (keys, weights), total, n_sampled
    counts = np.zeros(int(keys[-1]) + 1, np.float64)
    counts[keys] = weights
    return counts, total, n_sampled


def shards_fixed_size(blocks: np.ndarray, n_unique: int, s_max: int, adjust: bool = True):
    """Fixed-size SHARDS with at most ``s_max`` tracked blocks. Returns
    ``(counts, total, final_rate, n_sampled)`` in the same form as ``shards_fixed_rate``.

    ``adjust=True`` applies the SHARDS_adj idea to the rescaled weights: after rescaling,
    every sampled access weighs ``R_final / R_then``, so the expected total weight is
    ``N·R_final``; the difference from the actual total goes to the distance-0 bucket. Without
    it, a few very hot blocks caught (or missed) early at a high rate bias the whole curve
    (on a Zipf(1.1) trace the error drops from ~0.04 to ~0.005 MAE)."""
    if s_max < 1:
        raise ValueError("SHARDS s_max must be >= 1")
    if 4 * (s_max + 1) + 64 >= 2**31:
        raise ValueError("SHARDS s_max must be below 2**29")
    blocks = ids(blocks)
    hist, cold, threshold, n_sampled = _shards_fixed_size(
        blocks, np.int64(n_unique), np.int64(s_max), MODULUS_BITS)
    rate = threshold / float(1 << MODULUS_BITS)
    total = float(hist.sum() + cold)
    if adjust and n_sampled:
        expected = blocks.shape[0] * rate
        hist[0] += expected - total
        total = expected
    return hist, total, rate, int(n_sampled)


def curve_at_sparse(keys: np.ndarray, weights: np.ndarray, total: float, capacities) -> np.ndarray:
    """``curve_at`` of the histogram given by its non-zero entries (``keys`` ascending): the
    same floats, as the running sums skip only zeros."""
    caps = np.asarray(capacities, dtype=np.int64)
    if total <= 0 or keys.shape[0] == 0:
        return np.zeros(caps.shape, np.float64)
    cum = np.cumsum(weights)
    below = np.searchsorted(keys, caps, side="left")  # entries with k < C
    return np.clip(np.where(below > 0, cum[np.maximum(below - 1, 0)], 0.0) / total, 0.0, 1.0)


def sparse_histogram(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keys, weights) of the non-zero entries of a dense histogram, for ``curve_at_sparse``."""
    keys = np.flatnonzero(counts)
    return keys, counts[keys]


def curve_at(counts: np.ndarray, total: float, capacities) -> np.ndarray:
    """Hit ratio at each capacity from (scaled) distance counts: weight with ``k < C``."""
    caps = np.asarray(capacities, dtype=np.int64)
    if total <= 0:
        return np.zeros(caps.shape, np.float64)
    if len(counts) == 0:
        return np.zeros(caps.shape, np.float64)
    cum = np.cumsum(counts)  # cum[k] = weight with distance <= k (no leading 0: one copy less)
    idx = np.clip(caps, 0, cum.shape[0])  # weight with k < C = cum[C - 1]
    return np.clip(np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0) / total, 0.0, 1.0)
