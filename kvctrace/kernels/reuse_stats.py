"""The reuse analysis in two passes over the accesses, holding 4 bytes per access (Numba).

``kernels/reuse.py`` gives every access its stack distance and reuse time as arrays (8 bytes per
access), and the analysis then reduced them to histograms and per-request counts; the reuse
time quantiles sorted a float per warm access (8 more bytes). Here the same results come out
of the passes directly, with the same definitions (``kernels/reuse.py`` and
docs/metrics.md "Reuse"):

* ``reuse_pass``: one pass with the LRU stack markers of ``kernels/markers.py`` gives the
  stack-distance histogram, per request the blocks and tokens seen before (all of them, and
  the leading run), whether each of a few sampled accesses was seen before, and the one
  per-access array kept: how many requests back each block was last accessed (int32).
* ``reuse_time_stats``: from that array and the arrival times, the reuse-time histograms and
  the exact quantiles of the reuse time in seconds, equal to ``np.quantile`` (linear) of the
  values without materializing them: a radix selection of the order statistics over the
  float64 bit patterns, 16 bits per pass.

The references are the per-access kernels of ``kernels/reuse.py`` and tests/naive.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from .arrays import ids, offsets as as_offsets
from .markers import markers_upto, publish_word, remove_marker
from .nrt import no_refcount


@nb.njit(cache=True, nogil=True)
def _reuse_pass(offsets, blocks, n_unique, input_len, block_size, sample):
    """Why long: one pass over every access keeps the LRU markers, the block's last access
    time and the request's running counts together; split into passes, each would repeat the
    marker updates (the cost) or store a distance per access (the memory this avoids).

    ``last[b]``: time of b's last access (int32). The request of a time ``p`` is found from
    ``word_req`` (the request holding the first access of each 64-access word) by stepping
    forward over ``offsets``: a few steps, where storing it would take 4 bytes per block."""
    n = blocks.shape[0]
    n_req = offsets.shape[0] - 1
    n_words = (n >> 6) + 1
    bits = np.zeros(n_words, np.uint64)
    tree = np.zeros(n_words + 1, np.int32)
    word_req = np.zeros(n_words, np.int32)
    # -1: never accessed; -(t + 2): accessed once, at t; t: accessed again, last at t
    last = np.full(n_unique, -1, np.int32)
    counts = np.zeros(n_unique, np.int32)  # distances are < n_unique, counts < 2**31 accesses
    reuse_req = np.empty(n, np.int32)
    hit_blocks = np.zeros((2, n_req), np.int32)  # hits, prefix hits: at most a request's blocks
    hit_tokens = np.zeros((3, n_req), np.int64)  # hit tokens, prefix hit tokens, tokens
    sample_warm = np.zeros(sample.shape[0], np.bool_)
    seen = 0
    cold = 0
    reaccessed = 0  # blocks accessed at least twice
    top = -1
    k = 0
    for r in range(n_req):
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
            b = blocks[t]
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
                reuse_req[t] = r - q
                remove_marker(bits, tree, p, w_now)
                counts[d] += 1
                top = max(top, d)
                tok = block_size if t < hi - 1 else last_tok
                hits += 1
                hit_tok += tok
                if run:
                    prefix += 1
                    prefix_tok += tok
            else:
                reuse_req[t] = -1
                seen += 1
                cold += 1
                run = False
            bits[w_now] |= np.uint64(1) << np.uint64(t & 63)
            last[b] = t if warm else -t - 2
            while k < sample.shape[0] and sample[k] == t:
                sample_warm[k] = warm
                k += 1
        hit_blocks[0, r] = hits
        hit_blocks[1, r] = prefix
        hit_tokens[0, r] = hit_tok
        hit_tokens[1, r] = prefix_tok
        hit_tokens[2, r] = (hi - lo - 1) * block_size + last_tok
    return counts[:top + 1], cold, reaccessed, reuse_req, hit_blocks, hit_tokens, sample_warm


def reuse_pass(offsets, blocks, n_unique: int, input_len, block_size: int, sample=None) -> dict:
    """One pass of the exact LRU stack over a CSR trace of dense ids (``kernels/reuse.py``'s
    conventions). Returns ``distance_counts`` (int32, index = stack distance, trimmed to the
    largest), ``cold`` (first accesses), ``reaccessed_blocks`` (blocks accessed at least
    twice), ``reuse_requests`` (int32 per access: requests since
    the block's previous access, -1 cold), per request ``hits`` and ``prefix_hits`` (int32:
    block counts, which sum to at most the accesses, fewer than 2**31), ``hit_tokens``,
    ``prefix_hit_tokens`` and ``tokens`` (int64; as ``per_request_hits`` and ``hit_tokens``), and ``sample_warm``: whether each access of ``sample`` (sorted indices)
    was seen before."""
    offsets, blocks = as_offsets(offsets), ids(blocks)
    if blocks.shape[0] >= 2**31 - 1:
        raise ValueError("more than 2**31 - 2 accesses: split the trace")
    if offsets.shape[0] < 1 or offsets[0] != 0 or offsets[-1] != blocks.shape[0]:
        raise ValueError("offsets must start at 0 and end at len(blocks)")
    if offsets.shape[0] - 1 >= 2**31 or int(np.asarray(input_len).shape[0]) != offsets.shape[0] - 1:
        raise ValueError("input_len needs one entry per request (fewer than 2**31 requests)")
    sample = np.zeros(0, np.int64) if sample is None else np.ascontiguousarray(sample, np.int64)
    if sample.shape[0] and (np.any(np.diff(sample) < 0) or sample[0] < 0 or sample[-1] >= blocks.shape[0]):
        raise ValueError("sample must be sorted access indices")
    counts, cold, reaccessed, reuse_req, hit_blocks, hit_tokens, sample_warm = _reuse_pass(
        offsets, blocks, np.int64(max(n_unique, 1)), np.ascontiguousarray(input_len, np.int64),
        np.int64(block_size), sample)
    return {"distance_counts": counts, "cold": int(cold), "reaccessed_blocks": int(reaccessed),
            "reuse_requests": reuse_req, "sample_warm": sample_warm, "hits": hit_blocks[0],
            "prefix_hits": hit_blocks[1], "hit_tokens": hit_tokens[0], "prefix_hit_tokens": hit_tokens[1],
            "tokens": hit_tokens[2]}


# ---- reuse times: histograms and exact quantiles without a float per access -------------------
# A float64's bit pattern, with the sign bit flipped (and every bit flipped for a negative),
# orders as the float does: a radix selection over that key, 16 bits per pass, finds any order
# statistic of the reuse times exactly.

_DIGIT_BITS = 16
_LEVELS = 64 // _DIGIT_BITS
_SIGN = np.uint64(1) << np.uint64(63)


@no_refcount
def _key(value, scratch, scratch_bits):
    """The sort key of float64 ``value``; ``scratch`` is a 1-element float64 array and
    ``scratch_bits`` its uint64 view (how a kernel reads a float's bits)."""
    scratch[0] = value
    bits = scratch_bits[0]
    return ~bits if bits & _SIGN else bits | _SIGN


@nb.njit(cache=True, nogil=True)
def _time_pass(offsets, reuse_req, ts, prefixes, level, req_counts, bins, collected):
    """One pass over the warm accesses' reuse times. Level 0 fills ``req_counts`` (warm
    accesses per reuse distance in requests) and ``bins`` (per log2 bin of the time in seconds:
    bin 0 = [0, 1) s, bin e = [2**(e-1), 2**e) s) and counts the keys by their first radix digit;
    a later level counts, per wanted prefix (the top ``level`` digits of an order statistic's
    key), the keys sharing it by their next digit, or, given room in ``collected``, stores
    their times there. Returns (counts per prefix and digit, the top bin used, times stored)."""
    n_req = offsets.shape[0] - 1
    hist = np.zeros((max(prefixes.shape[0], 1), 1 << _DIGIT_BITS), np.int64)
    known = np.uint64(level * _DIGIT_BITS)
    shift = np.uint64(64 - (level + 1) * _DIGIT_BITS)
    first = np.uint64(64 - _DIGIT_BITS)
    mask = np.uint64((1 << _DIGIT_BITS) - 1)
    # a prefix's first digit -> whether any prefix starts with it: most keys stop there
    starts = np.zeros(1 << _DIGIT_BITS, np.bool_)
    for j in range(prefixes.shape[0]):
        starts[prefixes[j] >> (known - np.uint64(_DIGIT_BITS))] = True
    scratch = np.empty(1, np.float64)
    scratch_bits = scratch.view(np.uint64)
    top = 0
    k = 0
    for r in range(n_req):
        for t in range(offsets[r], offsets[r + 1]):
            d = reuse_req[t]
            if d < 0:
                continue
            v = ts[r] - ts[r - d]
            key = _key(v, scratch, scratch_bits)
            if level == 0:
                req_counts[d] += 1
                e = math.frexp(v)[1] if v >= 1.0 else 0
                bins[e] += 1
                top = max(top, e)
                hist[0, key >> first] += 1
                continue
            if not starts[key >> first]:
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
    return hist, top, k


def _descend(cum: np.ndarray, rank: int) -> tuple[int, int]:
    """(digit, rank within that digit's bucket) of the ``rank``-th smallest (0-based), from the
    running counts per digit."""
    digit = int(np.searchsorted(cum, rank, side="right"))
    return digit, rank - (int(cum[digit - 1]) if digit else 0)


_COLLECT_CAP = 1 << 22  # times (8 bytes each) the wanted buckets may hold to be read out and sorted


def _select(offsets, reuse_req, ts, first_digits: np.ndarray, ranks: list[int]) -> dict:
    """The order statistics ``ranks`` (0-based, ascending values) of the warm reuse times: the
    radix digits of each, 16 bits per pass, until the buckets holding them are small enough
    to read out and sort (usually after one or two passes)."""
    prefix, left, size = {}, {}, {}
    cum = np.cumsum(first_digits)
    for rank in ranks:
        prefix[rank], left[rank] = _descend(cum, rank)
        size[prefix[rank]] = int(first_digits[prefix[rank]])
    none = np.zeros(0, np.int64)
    for level in range(1, _LEVELS + 1):
        wanted = np.array(sorted(set(prefix.values())), np.uint64)
        if level == _LEVELS or sum(size[p] for p in set(prefix.values())) <= _COLLECT_CAP:
            break
        hist, _, _ = _time_pass(offsets, reuse_req, ts, wanted, np.int64(level), none, none, np.zeros(0))
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
        _time_pass(offsets, reuse_req, ts, wanted, np.int64(level), none, none, collected)
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


def reuse_time_stats(offsets, reuse_requests, ts, quantiles) -> dict:
    """From ``reuse_pass``'s ``reuse_requests`` and the arrival times ``ts``: ``request_counts``
    (``counts[k]``: warm accesses whose block was last accessed ``k`` requests earlier, as
    ``kernels.reuse.reuse_request_counts``), ``seconds_bins`` (log2 bins of the reuse time in
    seconds, as ``kernels.reuse.reuse_seconds``), ``warm`` (their number) and
    ``seconds_quantiles``: ``np.quantile`` of the warm accesses' reuse times in seconds at
    ``quantiles`` (None when no access is warm)."""
    offsets = as_offsets(offsets)
    reuse_requests = np.ascontiguousarray(reuse_requests)
    ts = np.ascontiguousarray(ts, dtype=np.float64)
    n_req = offsets.shape[0] - 1
    req_counts = np.zeros(max(n_req, 1), np.int64)
    bins = np.zeros(1100, np.int64)  # 2**1100 s is past any float64 time difference
    digits, top, _ = _time_pass(offsets, reuse_requests, ts, np.zeros(0, np.uint64), np.int64(0), req_counts, bins,
                                np.zeros(0))
    digits = digits[0]
    warm = int(digits.sum())
    out = {"request_counts": req_counts, "seconds_bins": bins[:top + 1], "warm": warm,
           "seconds_quantiles": None}
    if warm:
        out["seconds_quantiles"] = linear_quantiles(
            warm, quantiles, lambda ranks: _select(offsets, reuse_requests, ts, digits, ranks))
    return out
