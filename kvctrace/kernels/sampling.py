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
  blocks landing in (or out of) the sample. Its state (the ids the rate samples, found by
  hashing every id below ``n_unique`` up front, a marker time for each, their distance counts
  and a time index compacted when full) is bounded by the blocks the rate can sample.
* Fixed-size: at most ``s_max`` distinct blocks are tracked. When a new sampled block would
  exceed that, the tracked block with the largest hash is evicted and ``T`` drops to its hash;
  histogram counts gathered so far are rescaled by ``T_new / T_old`` so that all counts stay
  in units of the current rate. The tracked set, the max-heap and the time index (compacted
  when full) are bounded by ``s_max``. Two arrays are not: a block's marker time is looked up
  in a dense array indexed by block id (kvctrace ids are dense, so this replaces a hash table
  at 8 bytes per distinct block), and the histogram is indexed by scaled distance. The same
  SHARDS_adj correction applies (see ``shards_fixed_size``).

Both are streaming algorithms: ``FixedRateShards`` and ``FixedSizeShards`` take the trace's
ids a chunk at a time (``Trace.access_chunks()``) and carry their state between chunks, so
any cut gives the same result; ``shards_fixed_rate`` and ``shards_fixed_size`` feed them one
array.

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

MODULUS_BITS = 24
SHARDS_SEED = np.uint64(0x5348415244533135)  # "SHARDS15"


@nb.njit(cache=True, nogil=True)
def _sampled_ids(n_ids, threshold, bits_p):
    """The ids among ``0 .. n_ids - 1`` that hash below ``threshold`` (ascending, int64): every
    block a fixed-rate sample of a trace with dense ids can track, known before the trace is
    read (counted first, so that no array of every id is made)."""
    mask = np.uint64((1 << bits_p) - 1)
    n = 0
    for b in range(n_ids):
        if np.int64(fmix64(np.uint64(b) + SHARDS_SEED) & mask) < threshold:
            n += 1
    out = np.empty(n, np.int64)
    n = 0
    for b in range(n_ids):
        if np.int64(fmix64(np.uint64(b) + SHARDS_SEED) & mask) < threshold:
            out[n] = b
            n += 1
    return out


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


@no_refcount
def _sampled_access(bits, tree, last, b, t, size):
    """Sampled block ``b`` accessed at marker time ``t`` with ``size`` blocks tracked: its
    distance in the sampled stream (-1 when not tracked), its marker moved to ``t``."""
    w_now = t >> 6
    if (t & 63) == 0 and w_now > 0:
        publish_word(bits, tree, w_now - 1)
    p = last[b]
    d = -1
    if p >= 0:
        d = size - markers_upto(bits, tree, p)
        remove_marker(bits, tree, p, w_now)
    bits[w_now] |= np.uint64(1) << np.uint64(t & 63)
    last[b] = t
    return d


def _time_index(most_tracked: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The marker times of a sample tracking at most ``most_tracked`` blocks, compacted when
    full (``_compact``): their capacity, the bitmap and its Fenwick tree."""
    cap = 4 * (most_tracked + 1) + 64
    n_words = (cap >> 6) + 1
    return cap, np.zeros(n_words, np.uint64), np.zeros(n_words + 1, np.int32)


@nb.njit(cache=True, nogil=True)
def _fixed_rate_chunk(blocks, threshold, bits_p, cap, sampled_ids, markers, tracked, counts, state):
    """The accesses ``blocks`` through fixed-rate SHARDS, continuing ``state`` (tracked
    blocks, next marker time, sampled accesses). A sampled block is known by its slot, its
    index in ``sampled_ids`` (a binary search, for the sampled accesses only, where an array
    indexed by id would take 4 bytes per block of the trace): ``markers`` are the time index
    and each slot's marker time (-1 none), ``tracked`` lists the slots seen (for
    ``_compact``), ``counts[d]`` gathers the sampled accesses at distance ``d`` in the sampled
    stream."""
    bits, tree, last = markers
    size, t, n_sampled = state[0], state[1], state[2]
    mask = np.uint64((np.int64(1) << bits_p) - 1)
    for i in range(blocks.shape[0]):
        b = blocks[i]
        if np.int64(fmix64(np.uint64(b) + SHARDS_SEED) & mask) >= threshold:
            continue
        n_sampled += 1
        if t == cap:
            t = _compact(bits, tree, last, tracked, size)
        slot = np.searchsorted(sampled_ids, b)
        d = _sampled_access(bits, tree, last, slot, t, size)
        if d < 0:
            tracked[size] = slot
            size += 1
        else:
            counts[d] += 1
        t += 1
    state[0], state[1], state[2] = size, t, n_sampled


class FixedRateShards:
    """Fixed-rate SHARDS fed the trace's dense ids (below ``n_unique``) a chunk at a time,
    in order (``feed``): the state (the ids the rate samples, a marker time for each, the
    tracked ones, the sampled distance counts: all sized by the sampled blocks) is carried
    between chunks, so any cut gives the same result."""

    def __init__(self, n_unique: int, rate: float):
        if not 0.0 < rate <= 1.0:
            raise ValueError("SHARDS rate must be in (0, 1]")
        self.threshold = max(1, int(round(rate * (1 << MODULUS_BITS))))
        self.rate = self.threshold / float(1 << MODULUS_BITS)
        # sized by the blocks the sample can hold, not by every block of the trace
        self.sampled_ids = _sampled_ids(np.int64(n_unique), np.int64(self.threshold), MODULUS_BITS)
        most = int(self.sampled_ids.shape[0])
        self.cap, bits, tree = _time_index(most)
        if self.cap >= 2**31:  # the marker times are int32
            raise ValueError("SHARDS fixed-rate samples more than 2**29 blocks: lower the rate")
        self.markers = (bits, tree, np.full(max(most, 1), -1, np.int32))
        self.tracked = np.empty(max(most, 1), np.int64)
        self.counts = np.zeros(max(most, 1), np.int64)  # distances are < the tracked blocks
        self.state = np.zeros(3, np.int64)
        self.n_accesses = 0

    def feed(self, blocks) -> None:
        blocks = ids(blocks)
        _fixed_rate_chunk(blocks, np.int64(self.threshold), MODULUS_BITS, np.int64(self.cap), self.sampled_ids,
                          self.markers, self.tracked, self.counts, self.state)
        self.n_accesses += int(blocks.shape[0])

    def result(self, adjust: bool = True, sparse: bool = False):
        """``(counts, total, n_sampled)`` as ``shards_fixed_rate`` returns them."""
        n_sampled = int(self.state[2])
        if n_sampled == 0:
            keys, weights, total = np.zeros(1, np.int64), np.zeros(1, np.float64), 0.0
        else:
            # scaled distance floor(d / R) of each distance that occurs, with a 0 so that the
            # adjustment has its entry; distances with the same scaled one add up
            distances = np.flatnonzero(self.counts)
            scaled = np.floor(distances / self.rate).astype(np.int64)
            keys, where = np.unique(np.concatenate(([0], scaled)), return_inverse=True)
            weights = np.bincount(where, weights=np.concatenate(([0], self.counts[distances])).astype(np.float64),
                                  minlength=keys.shape[0])
            total = float(n_sampled)
            if adjust:
                expected = self.n_accesses * self.rate
                weights[0] += expected - n_sampled
                total = expected
        if sparse:
            return (keys, weights), total, n_sampled
        counts = np.zeros(int(keys[-1]) + 1, np.float64)
        counts[keys] = weights
        return counts, total, n_sampled


@nb.njit(cache=True, nogil=True)
def _fixed_size_chunk(blocks, n_unique, s_max, bits_p, cap, markers, heap, hist, state, scale):
    """The accesses ``blocks`` through fixed-size SHARDS, continuing ``state`` (threshold,
    tracked blocks, next marker time, sampled accesses) and ``scale`` (cold weight / g, and the
    global scale g: true weight = stored * g); ``heap``: the tracked blocks, a max-heap by
    hash; ``hist``: scaled distance -> weight / g."""
    bits, tree, last = markers
    hh, hb = heap
    threshold, size, t, n_sampled = state[0], state[1], state[2], state[3]
    cold, g = scale[0], scale[1]
    mask = np.uint64((np.int64(1) << bits_p) - 1)
    for i in range(blocks.shape[0]):
        b = blocks[i]
        h = np.int64(fmix64(np.uint64(b) + SHARDS_SEED) & mask)
        if h >= threshold:
            continue
        n_sampled += 1
        if t == cap:
            t = _compact(bits, tree, last, hb, size)
        rate = threshold / float(np.int64(1) << bits_p)
        d = _sampled_access(bits, tree, last, b, t, size)
        if d < 0:
            cold += 1.0 / g
            size = _heap_push(hh, hb, size, h, b)
        else:
            k = np.int64(d / rate)
            if k > n_unique:
                k = n_unique
            hist[k] += 1.0 / g
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
    state[0], state[1], state[2], state[3] = threshold, size, t, n_sampled
    scale[0], scale[1] = cold, g


class FixedSizeShards:
    """Fixed-size SHARDS with at most ``s_max`` tracked blocks fed the trace's dense ids
    (below ``n_unique``) a chunk at a time, in order (``feed``), its state carried between
    chunks. The tracked set, the max-heap and the time index (compacted when full) are bounded
    by ``s_max``; the marker time per block and the histogram (per scaled distance) by the
    blocks of the trace."""

    def __init__(self, n_unique: int, s_max: int):
        if s_max < 1:
            raise ValueError("SHARDS s_max must be >= 1")
        if 4 * (s_max + 1) + 64 >= 2**31:
            raise ValueError("SHARDS s_max must be below 2**29")
        self.n_unique, self.s_max = int(n_unique), int(s_max)
        self.cap, bits, tree = _time_index(s_max)
        # marker time of a tracked block, -1 = untracked (times stay below cap: int32 is enough)
        self.markers = (bits, tree, np.full(max(n_unique, 1), -1, np.int32))
        self.heap = (np.empty(s_max + 2, np.int64), np.empty(s_max + 2, np.int64))
        self.hist = np.zeros(n_unique + 2, np.float64)
        self.state = np.array([1 << MODULUS_BITS, 0, 0, 0], np.int64)  # start at rate 1
        self.scale = np.array([0.0, 1.0])
        self.n_accesses = 0

    def feed(self, blocks) -> None:
        blocks = ids(blocks)
        _fixed_size_chunk(blocks, np.int64(self.n_unique), np.int64(self.s_max), MODULUS_BITS, np.int64(self.cap),
                          self.markers, self.heap, self.hist, self.state, self.scale)
        self.n_accesses += int(blocks.shape[0])

    def result(self, adjust: bool = True):
        """``(counts, total, final_rate, n_sampled)`` as ``shards_fixed_size`` returns them
        (call once: the histogram is scaled in place)."""
        cold, g = self.scale.tolist()
        hist = self.hist
        hist *= g
        rate = int(self.state[0]) / float(1 << MODULUS_BITS)
        n_sampled = int(self.state[3])
        total = float(hist.sum() + cold * g)
        if adjust and n_sampled:
            expected = self.n_accesses * rate
            hist[0] += expected - total
            total = expected
        return hist, total, rate, n_sampled


def shards_fixed_rate(blocks: np.ndarray, n_unique: int, rate: float, adjust: bool = True,
                      sparse: bool = False):
    """Fixed-rate SHARDS over dense ids below ``n_unique``. Returns ``(counts, total,
    n_sampled)``: ``counts[k]`` is the (adjusted) number of sampled accesses with scaled
    distance ``floor(d / R) == k`` and ``total`` the denominator (``N·R`` with ``adjust``, else
    the sampled count). ``sparse``: ``counts`` as (the scaled distances that occur, ascending
    and with 0, their weights), for ``curve_at_sparse``: the dense histogram has an entry per
    possible distance (8 bytes per distinct block). ``FixedRateShards`` takes the ids a chunk
    at a time."""
    sampler = FixedRateShards(n_unique, rate)
    sampler.feed(blocks)
    return sampler.result(adjust, sparse)


def shards_fixed_size(blocks: np.ndarray, n_unique: int, s_max: int, adjust: bool = True):
    """Fixed-size SHARDS with at most ``s_max`` tracked blocks. Returns
    ``(counts, total, final_rate, n_sampled)`` in the same form as ``shards_fixed_rate``;
    ``FixedSizeShards`` takes the ids a chunk at a time.

    ``adjust=True`` applies the SHARDS_adj idea to the rescaled weights: after rescaling,
    every sampled access weighs ``R_final / R_then``, so the expected total weight is
    ``N·R_final``; the difference from the actual total goes to the distance-0 bucket. Without
    it, a few very hot blocks caught (or missed) early at a high rate bias the whole curve
    (on a Zipf(1.1) trace the error drops from ~0.04 to ~0.005 MAE)."""
    sampler = FixedSizeShards(n_unique, s_max)
    sampler.feed(blocks)
    return sampler.result(adjust)


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
