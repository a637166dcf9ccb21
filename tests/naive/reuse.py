"""Reuse: stack distances, LRU hit ratio, per-request hits, reuse times, hit tokens, SHARDS
(kvctrace/kernels/reuse.py, kvctrace/kernels/sampling.py)."""
from __future__ import annotations

from collections import OrderedDict

_M64 = (1 << 64) - 1


def naive_stack_distances(blocks):
    """Distinct other blocks between an access and the previous access of the same block,
    read off an explicit LRU stack (most recent first); -1 for a first access."""
    stack: list = []
    out = []
    for b in blocks:
        b = int(b)
        if b in stack:
            d = stack.index(b)
            stack.pop(d)
            out.append(d)
        else:
            out.append(-1)
        stack.insert(0, b)
    return out


def naive_lru_hit_ratio(blocks, capacity):
    """Block LRU cache of ``capacity`` blocks, updated on every access."""
    if len(blocks) == 0:
        return 0.0
    cache: OrderedDict = OrderedDict()
    hits = 0
    for b in blocks:
        b = int(b)
        if b in cache:
            hits += 1
            cache.move_to_end(b)
        else:
            if capacity == 0:
                continue
            cache[b] = True
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits / len(blocks)


def naive_request_hits(offsets, blocks):
    """Per request: blocks seen before (anywhere earlier in the access stream) and the leading
    run of such blocks from position 0."""
    seen = set()
    hits, prefix = [], []
    for r in range(len(offsets) - 1):
        h, run, ph = 0, True, 0
        for i in range(offsets[r], offsets[r + 1]):
            b = int(blocks[i])
            if b in seen:
                h += 1
                ph += 1 if run else 0
            else:
                run = False
            seen.add(b)
        hits.append(h)
        prefix.append(ph)
    return hits, prefix


def naive_reuse_times(offsets, blocks, ts):
    """Per access: requests since the previous access of the same block (-1 when first), and
    for the warm accesses, in order, the seconds since it."""
    last_req = {}
    reqs, secs = [], []
    for r in range(len(offsets) - 1):
        for i in range(offsets[r], offsets[r + 1]):
            b = int(blocks[i])
            if b in last_req:
                reqs.append(r - last_req[b])
                secs.append(ts[r] - ts[last_req[b]])
            else:
                reqs.append(-1)
            last_req[b] = r
    return reqs, secs


def naive_hit_tokens(offsets, blocks, input_len, block_size, prefix_only=False):
    """Per request: tokens of blocks seen before (all of them, or only the leading run) and
    tokens covered by the request's blocks; the last block holds input_len - (n-1)*block_size
    tokens, clipped to [0, block_size]."""
    seen = set()
    hit, total = [], []
    for r in range(len(offsets) - 1):
        n = offsets[r + 1] - offsets[r]
        h, run, tot = 0, True, 0
        for j in range(n):
            b = int(blocks[offsets[r] + j])
            tok = block_size if j < n - 1 else min(max(input_len[r] - (n - 1) * block_size, 0), block_size)
            tot += tok
            if b in seen:
                if run or not prefix_only:
                    h += tok
            else:
                run = False
            seen.add(b)
        hit.append(h)
        total.append(tot)
    return hit, total


def naive_fmix64(z):
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def naive_shards_hash(block, bits=24, seed=0x5348415244533135):
    return naive_fmix64(int(block) + seed) & ((1 << bits) - 1)


def naive_shards_fixed_rate_curve(blocks, rate, capacities, adjust=True, bits=24):
    """Fixed-rate SHARDS by definition: keep blocks with hash < T, take naive stack distances
    of the kept stream, estimate a hit at C when d / R < C."""
    threshold = max(1, round(rate * (1 << bits)))
    real_rate = threshold / (1 << bits)
    kept = [b for b in blocks if naive_shards_hash(b, bits) < threshold]
    if not kept:
        return [0.0 for _ in capacities]
    dist = naive_stack_distances(kept)
    total = len(kept)
    adj = 0.0
    if adjust:
        adj = len(blocks) * real_rate - len(kept)
        total = len(blocks) * real_rate
    out = []
    for c in capacities:
        w = sum(1 for d in dist if d >= 0 and int(d / real_rate) < c)
        w = w + (adj if c >= 1 else 0.0)
        out.append(min(1.0, max(0.0, w / total)) if total > 0 else 0.0)
    return out


def naive_shards_fixed_size_curve(blocks, s_max, capacities, bits=24, adjust=True):
    """Fixed-size SHARDS by definition: track at most ``s_max`` blocks (lowest hashes seen so
    far); when over, drop the largest-hash ones and lower T to that hash, rescaling all
    weights gathered so far by T_new / T_old. Distances: distinct tracked blocks between two
    accesses, read off an explicit LRU stack of tracked blocks."""
    p = 1 << bits
    threshold = p
    stack: list = []            # tracked blocks, most recent first
    weights: list = []          # (scaled distance or None for cold, weight)
    for b in blocks:
        b = int(b)
        h = naive_shards_hash(b, bits)
        if h >= threshold:
            continue
        rate = threshold / p
        if b in stack:
            d = stack.index(b)
            stack.pop(d)
            weights.append((int(d / rate), 1.0))
        else:
            weights.append((None, 1.0))
        stack.insert(0, b)
        while len(stack) > s_max:
            top = max(naive_shards_hash(x, bits) for x in stack)
            stack = [x for x in stack if naive_shards_hash(x, bits) != top]
            scale = top / threshold
            weights = [(k, w * scale) for k, w in weights]
            threshold = top
    total = sum(w for _, w in weights)
    adj = 0.0
    if adjust and weights:
        # expected total weight at the final rate is N * R_final; the gap goes to distance 0
        adj = len(blocks) * threshold / p - total
        total = len(blocks) * threshold / p
    out = []
    for c in capacities:
        hit = sum(w for k, w in weights if k is not None and k < c) + (adj if c >= 1 else 0.0)
        out.append(min(1.0, max(0.0, hit / total)) if total > 0 else 0.0)
    return out
