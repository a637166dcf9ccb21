"""The reuse analysis in passes over the accesses, a chunk of whole requests at a time (Numba).

``kernels/reuse.py`` gives every access its stack distance and reuse time as arrays (8 bytes per
access), and the analysis then reduced them to histograms and per-request counts. Here the same
results come out of passes over ``Trace.access_chunks()`` (chunks of whole requests, in arrival
order) that keep state per block, per request and per 64-access word, and nothing per access,
so a trace whose block ids do not fit in memory can be analyzed; a trace in memory is one chunk.
The definitions are those of ``kernels/reuse.py`` and docs/metrics.md "Reuse":

* ``reuse_pass``: one pass with the LRU stack markers of ``kernels/markers.py`` gives the
  stack-distance histogram, per request the blocks and tokens seen before (all of them, and
  the leading run), the block id of a few sampled accesses and whether each was seen before,
  and the reuse times of the warm accesses as histograms: per number of requests back, per
  log2 bin of seconds, and per first radix digit of the seconds (below).
* ``reuse_seconds_quantiles``: the exact quantiles of the reuse time in seconds, equal to
  ``np.quantile`` (linear) of the values without materializing them: a radix selection of the
  order statistics over the float64 bit patterns, 16 bits per pass. ``reuse_pass`` counts the
  first digit; each further pass streams the chunks again and recomputes every access's reuse
  time from a per-block "request of the last access" array.

The references are the per-access kernels of ``kernels/reuse.py`` and tests/naive.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numba as nb
import numpy as np

from .arrays import ids, offsets as as_offsets, request_chunks
from .markers import markers_upto, publish_word, remove_marker
from .nrt import no_refcount

# A float64's bit pattern, with the sign bit flipped (and every bit flipped for a negative),
# orders as the float does: a radix selection over that key, 16 bits per pass, finds any order
# statistic of the reuse times exactly.
_DIGIT_BITS = 16
_LEVELS = 64 // _DIGIT_BITS
_SIGN = np.uint64(1) << np.uint64(63)
_SECONDS_BINS = 1100  # log2 bins of seconds: 2**1100 s is past any float64 time difference


@no_refcount
def _key(value, scratch, scratch_bits):
    """The sort key of float64 ``value``; ``scratch`` is a 1-element float64 array and
    ``scratch_bits`` its uint64 view (how a kernel reads a float's bits)."""
    scratch[0] = value
    bits = scratch_bits[0]
    return ~bits if bits & _SIGN else bits | _SIGN


@nb.njit(cache=True, nogil=True)
def _reuse_chunk(offsets, blocks, first, stop, input_len, block_size, ts, markers, per_block, per_request,
                 sample, times, counters):
    """Requests ``first`` .. ``stop - 1`` (their ids: ``blocks``; ``offsets`` are the trace's)
    through the LRU stack, continuing the state the earlier chunks left.

    Why long: one pass over every access keeps the LRU markers, the block's last access
    time and the request's running counts together; split into passes, each would repeat the
    marker updates (the cost) or store a distance per access (the memory this avoids).

    State (every array carried from chunk to chunk):
    ``markers``: the marker bitmap, its Fenwick tree and ``word_req`` (the request holding the
    first access of each 64-access word), all per 64 accesses; the request of a time ``p`` is
    found from ``word_req`` by stepping forward over ``offsets``: a few steps, where storing it
    would take 4 bytes per block. ``per_block``: ``last[b]``, the time of b's last access
    (-1: never accessed; -(t + 2): accessed once, at t; t: accessed again, last at t), and
    the stack-distance counts (distances are < n_unique, counts < 2**31 accesses).
    ``per_request``: hits and prefix hits (int32), hit tokens, prefix hit tokens and tokens.
    ``sample``: the sorted sampled access times, and per sampled access whether it was seen
    before and its block. ``times``: warm accesses per reuse distance in requests, per log2
    bin of the reuse time in seconds (bin 0 = [0, 1) s, bin e = [2**(e-1), 2**e) s) and per
    first radix digit of its key. ``counters``: distinct blocks seen, cold accesses, blocks
    accessed at least twice, the largest distance, the next sample, the top seconds bin."""
    bits, tree, word_req = markers
    last, counts = per_block
    hit_blocks, hit_tokens = per_request
    sample_at, sample_warm, sample_blocks = sample
    req_counts, bins, first_digits = times
    seen, cold, reaccessed, top, k, top_bin = (counters[0], counters[1], counters[2], counters[3], counters[4],
                                               counters[5])
    base = offsets[first]
    first_digit = np.uint64(64 - _DIGIT_BITS)
    scratch = np.empty(1, np.float64)
    scratch_bits = scratch.view(np.uint64)
    for r in range(first, stop):
        lo = offsets[r]
        hi = offsets[r + 1]
        if hi == lo:
            continue
        last_tok = min(max(input_len[r] - (hi - lo - 1) * block_size, 0), block_size)
        run = True
        hits = 0
        prefix = 0
        hit_tok = 0
        prefix_tok = 0
        for t in range(lo, hi):
            w_now = t >> 6
            if (t & 63) == 0:
                if w_now > 0:
                    publish_word(bits, tree, w_now - 1)
                word_req[w_now] = r
            b = blocks[t - base]
            p = last[b]
            warm = p != -1
            if p < -1:  # the block's second access
                p = -p - 2
                reaccessed += 1
            if warm:
                d = seen - markers_upto(bits, tree, p)
                q = word_req[p >> 6]
                while offsets[q + 1] <= p:
                    q += 1
                remove_marker(bits, tree, p, w_now)
                counts[d] += 1
                top = max(top, d)
                req_counts[r - q] += 1
                v = ts[r] - ts[q]
                e = math.frexp(v)[1] if v >= 1.0 else 0
                bins[e] += 1
                top_bin = max(top_bin, e)
                first_digits[_key(v, scratch, scratch_bits) >> first_digit] += 1
                tok = block_size if t < hi - 1 else last_tok
                hits += 1
                hit_tok += tok
                if run:
                    prefix += 1
                    prefix_tok += tok
            else:
                seen += 1
                cold += 1
                run = False
            bits[w_now] |= np.uint64(1) << np.uint64(t & 63)
            last[b] = t if warm else -t - 2
            while k < sample_at.shape[0] and sample_at[k] == t:
                sample_warm[k] = warm
                sample_blocks[k] = b
                k += 1
        hit_blocks[0, r] = hits
        hit_blocks[1, r] = prefix
        hit_tokens[0, r] = hit_tok
        hit_tokens[1, r] = prefix_tok
        hit_tokens[2, r] = (hi - lo - 1) * block_size + last_tok
    counters[0], counters[1], counters[2], counters[3], counters[4], counters[5] = (seen, cold, reaccessed, top, k,
                                                                                    top_bin)


def reuse_pass(offsets, access_chunks: Callable[[], Iterator], n_unique: int, input_len, block_size: int, ts,
               sample=None) -> dict:
    """One pass of the exact LRU stack over a CSR trace of dense ids (``kernels/reuse.py``'s
    conventions) given as chunks of whole requests in order (``access_chunks``: a
    ``Trace.access_chunks``, or ``arrays.one_chunk`` of CSR arrays), ``offsets`` being the
    whole trace's and ``ts`` the requests' arrival times. Returns ``distance_counts`` (int32,
    index = stack distance, trimmed to the largest), ``cold`` (first accesses),
    ``reaccessed_blocks`` (blocks accessed at least twice), per request ``hits`` and
    ``prefix_hits`` (int32: block counts, which sum to at most the accesses, fewer than
    2**31), ``hit_tokens``, ``prefix_hit_tokens`` and ``tokens`` (int64; as
    ``per_request_hits`` and ``hit_tokens``), for each access of ``sample`` (sorted access
    indices) ``sample_warm`` (whether it was seen before) and ``sample_blocks`` (its id,
    int64), and the reuse times of the warm accesses: ``request_counts`` (``counts[k]``: warm
    accesses whose block was last accessed ``k`` requests earlier, as
    ``kernels.reuse.reuse_request_counts``), ``seconds_bins`` (log2 bins of the reuse time in
    seconds, as ``kernels.reuse.reuse_seconds``) and ``seconds_digits`` (their count per first
    radix digit, for ``reuse_seconds_quantiles``)."""
    offsets = as_offsets(offsets)
    if offsets.shape[0] < 1 or offsets[0] != 0:
        raise ValueError("offsets must start at 0")
    n_req, n = offsets.shape[0] - 1, int(offsets[-1])
    if n >= 2**31 - 1:
        raise ValueError("more than 2**31 - 2 accesses: split the trace")
    if n_req >= 2**31 or int(np.asarray(input_len).shape[0]) != n_req or int(np.asarray(ts).shape[0]) != n_req:
        raise ValueError("input_len and ts need one entry per request (fewer than 2**31 requests)")
    sample = np.zeros(0, np.int64) if sample is None else np.ascontiguousarray(sample, np.int64)
    if sample.shape[0] and (np.any(np.diff(sample) < 0) or sample[0] < 0 or sample[-1] >= n):
        raise ValueError("sample must be sorted access indices")
    n_unique, n_words = max(int(n_unique), 1), (n >> 6) + 1
    markers = (np.zeros(n_words, np.uint64), np.zeros(n_words + 1, np.int32), np.zeros(n_words, np.int32))
    per_block = (np.full(n_unique, -1, np.int32), np.zeros(n_unique, np.int32))
    per_request = (np.zeros((2, n_req), np.int32), np.zeros((3, n_req), np.int64))
    sampled = (sample, np.zeros(sample.shape[0], np.bool_), np.zeros(sample.shape[0], np.int64))
    times = (np.zeros(max(n_req, 1), np.int64), np.zeros(_SECONDS_BINS, np.int64),
             np.zeros(1 << _DIGIT_BITS, np.int64))
    counters = np.array([0, 0, 0, -1, 0, 0], np.int64)
    input_len, ts = np.ascontiguousarray(input_len, np.int64), np.ascontiguousarray(ts, np.float64)
    for first, chunk_offsets, blocks in request_chunks(access_chunks, n_req, offsets):
        _reuse_chunk(offsets, blocks, np.int64(first), np.int64(first + chunk_offsets.shape[0] - 1), input_len,
                     np.int64(block_size), ts, markers, per_block, per_request, sampled, times, counters)
    _, cold, reaccessed, top, _, top_bin = counters.tolist()
    hit_blocks, hit_tokens = per_request
    return {"distance_counts": per_block[1][:top + 1], "cold": cold, "reaccessed_blocks": reaccessed,
            "sample_warm": sampled[1], "sample_blocks": sampled[2], "hits": hit_blocks[0],
            "prefix_hits": hit_blocks[1], "hit_tokens": hit_tokens[0], "prefix_hit_tokens": hit_tokens[1],
            "tokens": hit_tokens[2], "request_counts": times[0], "seconds_bins": times[1][:top_bin + 1],
            "seconds_digits": times[2]}


# ---- reuse times in seconds: exact quantiles without a float per access ----------------------

@nb.njit(cache=True, nogil=True)
def _time_pass(offsets, blocks, first, stop, ts, last_req, prefixes, level, hist, collected, k):
    """Requests ``first`` .. ``stop - 1`` (ids ``blocks``) in one pass ``level >= 1`` of the
    radix selection over the warm accesses' reuse times, each recomputed from ``last_req``
    (per block, the request of its last access so far, -1 none; carried from chunk to chunk).
    Counts, per wanted prefix (the top ``level`` digits of an order statistic's key), the keys
    sharing it by their next digit into ``hist``, or, given room in ``collected``, stores their
    times there from index ``k``. Returns the next free index of ``collected``."""
    known = np.uint64(level * _DIGIT_BITS)
    shift = np.uint64(64 - (level + 1) * _DIGIT_BITS)
    first_digit = np.uint64(64 - _DIGIT_BITS)
    mask = np.uint64((1 << _DIGIT_BITS) - 1)
    # a prefix's first digit -> whether any prefix starts with it: most keys stop there
    starts = np.zeros(1 << _DIGIT_BITS, np.bool_)
    for j in range(prefixes.shape[0]):
        starts[prefixes[j] >> (known - np.uint64(_DIGIT_BITS))] = True
    scratch = np.empty(1, np.float64)
    scratch_bits = scratch.view(np.uint64)
    base = offsets[first]
    for r in range(first, stop):
        for t in range(offsets[r], offsets[r + 1]):
            b = blocks[t - base]
            q = last_req[b]
            last_req[b] = r
            if q < 0:
                continue
            v = ts[r] - ts[q]
            key = _key(v, scratch, scratch_bits)
            if not starts[key >> first_digit]:
                continue
            high = key >> (np.uint64(64) - known)
            for j in range(prefixes.shape[0]):
                if prefixes[j] == high:
                    if collected.shape[0]:
                        collected[k] = v
                        k += 1
                    else:
                        hist[j, (key >> shift) & mask] += 1
                    break
    return k


def _descend(cum: np.ndarray, rank: int) -> tuple[int, int]:
    """(digit, rank within that digit's bucket) of the ``rank``-th smallest (0-based), from the
    running counts per digit."""
    digit = int(np.searchsorted(cum, rank, side="right"))
    return digit, rank - (int(cum[digit - 1]) if digit else 0)


_COLLECT_CAP = 1 << 22  # times (8 bytes each) the wanted buckets may hold to be read out and sorted


class _TimePasses:
    """Passes of the radix selection over the chunks of a trace, each a fresh stream
    (``access_chunks()``) with the per-block last request array reset."""

    def __init__(self, offsets: np.ndarray, access_chunks: Callable[[], Iterator], n_unique: int, ts: np.ndarray):
        self.offsets, self.access_chunks, self.ts = offsets, access_chunks, ts
        self.last_req = np.empty(max(n_unique, 1), np.int32)  # requests < 2**31 (reuse_pass checks)

    def run(self, prefixes: np.ndarray, level: int, collected: np.ndarray) -> np.ndarray:
        """Counts per wanted prefix and next digit (or, with ``collected``, the times stored)."""
        hist = np.zeros((max(prefixes.shape[0], 1), 1 << _DIGIT_BITS), np.int64)
        self.last_req.fill(-1)
        k = 0
        for first, chunk_offsets, blocks in request_chunks(self.access_chunks, self.offsets.shape[0] - 1, self.offsets):
            k = _time_pass(self.offsets, blocks, np.int64(first), np.int64(first + chunk_offsets.shape[0] - 1), self.ts,
                           self.last_req, prefixes, np.int64(level), hist, collected, np.int64(k))
        return hist


def _select(passes: _TimePasses, first_digits: np.ndarray, ranks: list[int]) -> dict:
    """The order statistics ``ranks`` (0-based, ascending values) of the warm reuse times: the
    radix digits of each, 16 bits per pass, until the buckets holding them are small enough
    to read out and sort (usually after one or two passes)."""
    prefix, left, size = {}, {}, {}
    cum = np.cumsum(first_digits)
    for rank in ranks:
        prefix[rank], left[rank] = _descend(cum, rank)
        size[prefix[rank]] = int(first_digits[prefix[rank]])
    for level in range(1, _LEVELS + 1):
        wanted = np.array(sorted(set(prefix.values())), np.uint64)
        if level == _LEVELS or sum(size[p] for p in set(prefix.values())) <= _COLLECT_CAP:
            break
        hist = passes.run(wanted, level, np.zeros(0))
        cums = {int(p): np.cumsum(hist[i]) for i, p in enumerate(wanted.tolist())}
        rows = {int(p): hist[i] for i, p in enumerate(wanted.tolist())}
        size = {}
        for rank in ranks:
            digit, within = _descend(cums[prefix[rank]], left[rank])
            size[(prefix[rank] << _DIGIT_BITS) | digit] = int(rows[prefix[rank]][digit])
            prefix[rank], left[rank] = (prefix[rank] << _DIGIT_BITS) | digit, within
    if level < _LEVELS:  # read the wanted buckets out: each is a run of the sorted times
        buckets = sorted(set(prefix.values()))
        collected = np.empty(sum(size[p] for p in buckets), np.float64)
        passes.run(wanted, level, collected)
        collected.sort()
        start = dict(zip(buckets, np.cumsum([0] + [size[p] for p in buckets[:-1]]).tolist()))
        return {rank: float(collected[start[prefix[rank]] + left[rank]]) for rank in ranks}
    out = {}
    for rank, key in prefix.items():
        bits = np.uint64(key)
        bits = bits ^ _SIGN if bits & _SIGN else ~bits  # undo _key
        out[rank] = float(np.array([bits], np.uint64).view(np.float64)[0])
    return out


def linear_quantiles(n: int, qs, order_statistic) -> list[float]:
    """``np.quantile(x, qs)`` (method 'linear') of a sample of ``n`` values known only through
    ``order_statistic(ranks) -> {rank: value}`` (0-based ranks of the ascending sample),
    computed as numpy computes it: virtual index ``(n-1) q``, its floor and the next rank, and
    numpy's two-sided linear interpolation (from the nearer end)."""
    qs = np.asarray(qs, dtype=np.float64)
    virtual = (n - 1) * qs
    plan = []
    for v in virtual.tolist():
        if v >= n - 1:
            plan.append((n - 1, n - 1, 0.0))
        else:
            lo = int(math.floor(v))
            plan.append((lo, lo + 1, v - lo))
    values = order_statistic(sorted({rank for lo, hi, _ in plan for rank in (lo, hi)}))
    out = []
    for lo, hi, gamma in plan:
        a, b = values[lo], values[hi]
        diff = b - a
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return out


def reuse_seconds_quantiles(offsets, access_chunks: Callable[[], Iterator], n_unique: int, ts, seconds_digits,
                            quantiles) -> list[float] | None:
    """``np.quantile`` (linear) at ``quantiles`` of the warm accesses' reuse times in seconds
    (None when no access is warm), from ``reuse_pass``'s ``seconds_digits`` and as many more
    passes over ``access_chunks()`` (a fresh stream of the chunks on each call, as
    ``Trace.access_chunks``) as the radix selection needs, usually one."""
    warm = int(np.asarray(seconds_digits).sum())
    if not warm:
        return None
    passes = _TimePasses(as_offsets(offsets), access_chunks, n_unique, np.ascontiguousarray(ts, np.float64))
    return linear_quantiles(warm, quantiles, lambda ranks: _select(passes, seconds_digits, ranks))
