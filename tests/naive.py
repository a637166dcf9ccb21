"""Slow, obviously-correct reference implementations of every kernel (stumpy's tests/naive.py
pattern). Each part of kvctrace adds its own section; property tests compare kernels to these
on random traces."""
from __future__ import annotations


# ---------------------------------------------------------------------------------------------
# Reuse: stack distances, LRU hit ratio, per-request hits, SHARDS (kvctrace/kernels/reuse.py,
# kvctrace/kernels/sampling.py)
# ---------------------------------------------------------------------------------------------
from collections import OrderedDict  # noqa: E402

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


# ---------------------------------------------------------------------------------------------
# Access pattern, hotness, prefix structure (kvctrace/kernels/runs.py, kernels/hotness.py,
# analysis/access.py, hotness.py, prefix.py)
# ---------------------------------------------------------------------------------------------
import math  # noqa: E402


def naive_sequential_flags(offsets, blocks):
    """Per access: True when the block's left or right neighbour in the same request is its
    id - 1 or id + 1 respectively (i.e. it lies in a run of >= 2 consecutive ids)."""
    flags = []
    for r in range(len(offsets) - 1):
        ids = [int(b) for b in blocks[offsets[r]:offsets[r + 1]]]
        for i, b in enumerate(ids):
            left = i > 0 and ids[i - 1] + 1 == b
            right = i + 1 < len(ids) and ids[i + 1] == b + 1
            flags.append(left or right)
    return flags


def naive_runs(offsets, blocks):
    """Per request, the list of maximal run lengths of consecutive ids, by splitting the id
    list wherever the next id is not previous + 1."""
    out = []
    for r in range(len(offsets) - 1):
        ids = [int(b) for b in blocks[offsets[r]:offsets[r + 1]]]
        lengths = []
        for i, b in enumerate(ids):
            if i > 0 and ids[i - 1] + 1 == b:
                lengths[-1] += 1
            else:
                lengths.append(1)
        out.append(lengths)
    return out


def naive_lookup_plan(offsets, blocks):
    """(n_runs, n_point, n_range) per request from naive_runs."""
    plans = []
    for lengths in naive_runs(offsets, blocks):
        n_point = sum(1 for x in lengths if x == 1)
        n_range = sum(1 for x in lengths if x >= 2)
        plans.append((len(lengths), n_point, n_range))
    return plans


def naive_runs_test(values, min_ids, ties="drop"):
    """Wald–Wolfowitz runs test above/below the median; values equal to the median are
    dropped (ties="drop") or counted as above (ties="upper": the >= median split).
    Returns (status, runs, n1, n2, z, p); status 'too_few' / 'degenerate' / 'tested'."""
    values = [float(v) for v in values]
    if len(values) < min_ids or not values:
        return ("too_few", 0, 0, 0, None, None)
    s = sorted(values)
    m = len(s)
    median = s[m // 2] if m % 2 else (s[m // 2 - 1] + s[m // 2]) / 2
    if ties == "upper":
        signs = ["+" if v >= median else "-" for v in values]
    else:
        signs = ["+" if v > median else "-" for v in values if v != median]
    n1, n2 = signs.count("+"), signs.count("-")
    runs = sum(1 for i, c in enumerate(signs) if i == 0 or signs[i - 1] != c)
    if n1 == 0 or n2 == 0:
        return ("degenerate", runs, n1, n2, None, None)
    n = n1 + n2
    mu = 2 * n1 * n2 / n + 1
    var = 2 * n1 * n2 * (2 * n1 * n2 - n) / (n * n * (n - 1))
    if var <= 0:
        return ("degenerate", runs, n1, n2, None, None)
    z = (runs - mu) / math.sqrt(var)
    # two-sided p from the standard normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2
    p = 2 * (1 - (1 + math.erf(abs(z) / math.sqrt(2))) / 2)
    return ("tested", runs, n1, n2, z, p)


def naive_access_counts(blocks):
    counts: dict = {}
    for b in blocks:
        counts[int(b)] = counts.get(int(b), 0) + 1
    return counts


def naive_gini(values):
    """Gini by its definition: mean absolute difference over all ordered pairs / (2 * mean)."""
    n = len(values)
    if n == 0 or sum(values) == 0:
        return 0.0
    mean = sum(values) / n
    return sum(abs(a - b) for a in values for b in values) / (2 * n * n * mean)


def naive_top_share(values, pct):
    """Share of the total held by the ceil(pct/100 * n) largest values (at least one)."""
    s = sorted(values, reverse=True)
    k = max(1, math.ceil(pct / 100 * len(s) - 1e-9))
    return sum(s[:k]) / sum(s)


def naive_hot_set_size(values, q):
    """Fewest values (largest first) whose sum reaches q * total."""
    s = sorted(values, reverse=True)
    total = sum(s)
    acc = 0
    for i, v in enumerate(s):
        acc += v
        if acc >= q * total - 1e-9 * total:
            return i + 1
    return len(s)


def naive_first_positions(offsets, blocks):
    """{block: (position in request at first appearance, request index)}."""
    out: dict = {}
    for r in range(len(offsets) - 1):
        for pos, b in enumerate(blocks[offsets[r]:offsets[r + 1]]):
            out.setdefault(int(b), (pos, r))
    return out


def naive_window_top_k(blocks, bounds, k):
    """Per window: the k blocks with most accesses in it, ties by lower id, as (id, count)."""
    out = []
    for w in range(len(bounds) - 1):
        counts = naive_access_counts(blocks[bounds[w]:bounds[w + 1]])
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(ranked[:k])
    return out


def naive_chain(contents_per_request):
    """Chained dense ids from per-request block contents: a block's id names its whole prefix
    (the tuple of contents up to and including it), numbered in first-appearance order."""
    ids: dict = {}
    out = []
    for contents in contents_per_request:
        row = []
        for i in range(len(contents)):
            key = tuple(contents[:i + 1])
            row.append(ids.setdefault(key, len(ids)))
        out.append(row)
    return out


def naive_shared_prefixes(requests):
    """Maximal shared prefixes of a list of block-id lists, by brute force over prefixes:
    {prefix tuple: number of requests starting with it}, kept when >= 2 requests share it and
    no one-block extension keeps them all. Returns {last block: (length, n_requests,
    length of the longest proper prefix that is itself kept, or 0)}."""
    counts: dict = {}
    for req in requests:
        for i in range(len(req)):
            counts[tuple(req[:i + 1])] = counts.get(tuple(req[:i + 1]), 0) + 1
    kept = {}
    for prefix, n in counts.items():
        if n < 2:
            continue
        if any(len(q) == len(prefix) + 1 and q[:-1] == prefix and m == n
               for q, m in counts.items()):
            continue
        kept[prefix] = n
    out = {}
    for prefix, n in kept.items():
        enclosing = max((len(q) for q in kept if len(q) < len(prefix) and prefix[:len(q)] == q),
                        default=0)
        out[prefix[-1]] = (len(prefix), n, enclosing)
    return out


def naive_session_reuse(requests, sessions):
    """Re-accesses classified by the session of the block's first and previous access:
    ([same, other, unknown] by first, [same, other, unknown] by previous); None = no session."""
    first: dict = {}
    prev: dict = {}
    by_first = [0, 0, 0]
    by_prev = [0, 0, 0]

    def cls(a, b):
        return 2 if a is None or b is None else (0 if a == b else 1)
    for req, s in zip(requests, sessions):
        for b in req:
            if b in first:
                by_first[cls(first[b], s)] += 1
                by_prev[cls(prev[b], s)] += 1
            else:
                first[b] = s
            prev[b] = s
    return by_first, by_prev


# ---------------------------------------------------------------------------------------------
# Workload statistics (queries/workload_*.sql, kvctrace/analysis/workload.py)
# ---------------------------------------------------------------------------------------------
def naive_window_counts(ts, window_s):
    """Requests per window [w * window_s, (w + 1) * window_s), windows 0 .. floor(max / window_s)."""
    n_windows = int(max(ts) // window_s) + 1
    counts = [0] * n_windows
    for t in ts:
        counts[int(t // window_s)] += 1
    return counts


def naive_index_of_dispersion(ts, window_s):
    """Population variance / mean of counts over the floor(max / window_s) complete windows."""
    n_complete = int(max(ts) // window_s)
    counts = naive_window_counts(ts, window_s)[:n_complete]
    mean = sum(counts) / len(counts)
    var = sum((c - mean) ** 2 for c in counts) / len(counts)
    return var / mean if mean > 0 else None


def naive_quantile_linear(values, q):
    """Quantile with linear interpolation between order statistics (numpy 'linear')."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


# ---------------------------------------------------------------------------------------------
# Prefix hashing and synthetic traces (kvctrace/kernels/hashing.py, kvctrace/synth.py)
# ---------------------------------------------------------------------------------------------
_HASH_M64 = (1 << 64) - 1
NAIVE_CHAIN_SEED = 0x6B76637472616365    # "kvctrace"
NAIVE_CONTENT_SEED = 0x626C6F636B733136  # "blocks16"


def naive_hash_fmix64(z):
    """SplitMix64 / MurmurHash3 finalizer on Python ints (mod 2**64)."""
    z &= _HASH_M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _HASH_M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _HASH_M64
    return z ^ (z >> 31)


def naive_combine(h, x):
    return naive_hash_fmix64(h ^ naive_hash_fmix64((x + 0x9E3779B97F4A7C15) & _HASH_M64))


def naive_content_hash(tokens):
    """Content hash of one token block, as documented in kernels/hashing.py."""
    c = NAIVE_CONTENT_SEED
    for t in tokens:
        c = naive_combine(c, int(t) & _HASH_M64)
    return naive_combine(c, len(tokens))


def naive_hash_token_blocks(requests, block_size, partial="include"):
    """Per request (a list of token ids): chained prefix ids of its blocks."""
    out = []
    for tokens in requests:
        blocks = [list(tokens[i:i + block_size]) for i in range(0, len(tokens), block_size)]
        if partial == "drop" and blocks and len(blocks[-1]) < block_size:
            blocks.pop()
        h, ids = NAIVE_CHAIN_SEED, []
        for block in blocks:
            h = naive_combine(h, naive_content_hash(block))
            ids.append(h)
        out.append(ids)
    return out


def naive_rechain(requests):
    """Per request (a list of per-block content hashes): chained prefix ids."""
    out = []
    for contents in requests:
        h, ids = NAIVE_CHAIN_SEED, []
        for c in contents:
            h = naive_combine(h, int(c) & _HASH_M64)
            ids.append(h)
        out.append(ids)
    return out


def naive_coarsen(requests, k, partial="include"):
    """Per request (chained ids): the id of the last fine block of every group of k."""
    out = []
    for ids in requests:
        groups = [ids[i:i + k] for i in range(0, len(ids), k)]
        if partial == "drop" and groups and len(groups[-1]) < k:
            groups.pop()
        out.append([g[-1] for g in groups])
    return out


def naive_dense_ids(keys):
    """0, 1, 2, ... in order of first appearance; also the number of distinct keys."""
    seen: dict = {}
    return [seen.setdefault(int(k), len(seen)) for k in keys], len(seen)


def naive_prefix_classes(requests):
    """Per request, per block: a dense id naming the whole prefix of (block) contents up to it,
    with explicit tuples as keys: two positions share an id iff their prefixes are equal."""
    seen: dict = {}
    out = []
    for contents in requests:
        ids = []
        for i in range(len(contents)):
            ids.append(seen.setdefault(tuple(contents[:i + 1]), len(seen)))
        out.append(ids)
    return out


# ---------------------------------------------------------------------------------------------
# Policy replayer: multi-tier cache replay (kvctrace/kernels/replay.py, kvctrace/replay/)
# ---------------------------------------------------------------------------------------------
from collections import deque  # noqa: E402


class _NaiveListTier:
    """LRU / FIFO as an ordered dict (first = next victim). An arrival is the most recent;
    an LRU hit makes the block most recent, a FIFO hit changes nothing."""

    def __init__(self, policy, cap):
        self.policy, self.cap, self.order = policy, cap, OrderedDict()

    def holds(self, b):
        return b in self.order

    def hit(self, b, st):
        if self.policy == "lru":
            self.order.move_to_end(b)

    def insert(self, b, st):
        victim = None
        if len(self.order) >= self.cap:
            victim, _ = self.order.popitem(last=False)
        self.order[b] = True
        return victim

    def remove(self, b):
        del self.order[b]


class _NaivePriorityTier:
    """A tier as a dict block -> priority; evict the smallest (keys are unique)."""

    def __init__(self, policy, cap):
        self.policy, self.cap, self.keys = policy, cap, {}

    def holds(self, b):
        return b in self.keys

    def key(self, b, st):
        if self.policy == "lfu":
            return (min(st["freq"][b], 4194303), st["last_t"][b])
        if self.policy == "prefix-lru":
            r, pos = st["stamp"][b]
            return (r, -pos)
        if self.policy == "belady":
            return -st["next_use"][b]
        raise ValueError(self.policy)

    def hit(self, b, st):
        self.keys[b] = self.key(b, st)

    def insert(self, b, st):
        victim = None
        if len(self.keys) >= self.cap:
            victim = min(self.keys, key=self.keys.get)
            del self.keys[victim]
        self.keys[b] = self.key(b, st)
        return victim

    def remove(self, b):
        del self.keys[b]


class _NaiveS3FIFOTier:
    """S3-FIFO as libCacheSim's S3FIFO.c, with deques (left = head, right = tail)."""

    def __init__(self, cap):
        self.cap = cap
        self.small_cap = max(int(cap * 0.1), 1 if cap >= 1 else 0)
        self.main_cap = cap - self.small_cap
        self.ghost_cap = int(cap * 0.9)
        self.small, self.main, self.ghost = deque(), deque(), deque()
        self.freq, self.has_evicted = {}, False

    def holds(self, b):
        return b in self.small or b in self.main

    def hit(self, b, st):
        self.freq[b] += 1

    def _evict_one(self):
        while True:
            self.has_evicted = True
            if len(self.main) > self.main_cap or not self.small:
                while self.main:
                    v = self.main.pop()
                    if self.freq[v] >= 1:
                        self.main.appendleft(v)
                        self.freq[v] = min(self.freq[v], 3) - 1
                    else:
                        return v
            else:
                while self.small:
                    v = self.small.pop()
                    if self.freq[v] >= 2:
                        self.main.appendleft(v)
                        self.freq[v] = 0
                    else:
                        if self.ghost_cap > 0 and v not in self.ghost:
                            if len(self.ghost) >= self.ghost_cap:
                                self.ghost.pop()
                            self.ghost.appendleft(v)
                        return v

    def insert(self, b, st):
        ghost_hit = b in self.ghost
        if ghost_hit:
            self.ghost.remove(b)
        victim = None
        if len(self.small) + len(self.main) >= self.cap:
            victim = self._evict_one()
        if ghost_hit or (not self.has_evicted and len(self.small) >= self.small_cap):
            self.main.appendleft(b)
        else:
            self.small.appendleft(b)
        self.freq[b] = 0
        return victim

    def remove(self, b):
        (self.small if b in self.small else self.main).remove(b)


def naive_replay(offsets, blocks, caps, policies, admit=None, inclusive=False, promote=True, demote=True):
    """Reference multi-tier replay, semantics of kvctrace/kernels/replay.py spelled out.

    Returns (prefix_hits, block_hits, index_inserts, insert_runs, full_tier) as lists: per
    request a list of per-tier counts; per request the misses that entered a tier and the
    runs of consecutive ids among them; per request the tier of the last block when the
    whole request was a prefix hit (else -1)."""
    offsets = [int(x) for x in offsets]
    blocks = [int(x) for x in blocks]
    T = len(caps)
    admit = admit or [1] * T
    n = len(blocks)
    nxt = [n + i for i in range(n)]
    last_seen = {}
    for i in range(n - 1, -1, -1):
        if blocks[i] in last_seen:
            nxt[i] = last_seen[blocks[i]]
        last_seen[blocks[i]] = i
    tiers = [_NaiveS3FIFOTier(caps[k]) if policies[k] == "s3fifo"
             else _NaiveListTier(policies[k], caps[k]) if policies[k] in ("lru", "fifo")
             else _NaivePriorityTier(policies[k], caps[k]) for k in range(T)]
    st = {"last_t": {}, "freq": {}, "stamp": {}, "next_use": {}}
    seen = {}

    def admits(m, b):
        return caps[m] > 0 and seen[b] >= admit[m]

    def place(k, b):
        v = tiers[k].insert(b, st)
        j = k
        while v is not None and demote:
            target = None
            for m in range(j + 1, T):
                if tiers[m].holds(v):
                    break
                if admits(m, v):
                    target = m
                    break
            if target is None:
                break
            v = tiers[target].insert(v, st)
            j = target

    prefix, bhits, inserts, runs, full = [], [], [], [], []
    for r in range(len(offsets) - 1):
        ph, bh, ins, ft = [0] * T, [0] * T, 0, -1
        inserted = []
        open_ = True
        lo, hi = offsets[r], offsets[r + 1]
        for i in range(lo, hi):
            b = blocks[i]
            seen[b] = seen.get(b, 0) + 1
            st["last_t"][b] = i
            st["stamp"][b] = (r, i - lo)
            st["next_use"][b] = nxt[i]
            k = next((m for m in range(T) if tiers[m].holds(b)), None)
            if k is not None:
                st["freq"][b] += 1
                bh[k] += 1
                if open_:
                    ph[k] += 1
                    if i == hi - 1:
                        ft = k
                tiers[k].hit(b, st)
                if promote and k > 0:
                    if inclusive:
                        for m in range(k - 1, -1, -1):
                            if admits(m, b) and not tiers[m].holds(b):
                                place(m, b)
                    else:
                        up = next((m for m in range(k) if admits(m, b)), None)
                        if up is not None:
                            tiers[k].remove(b)
                            place(up, b)
            else:
                open_ = False
                st["freq"][b] = 1
                targets = ([m for m in range(T - 1, -1, -1) if admits(m, b) and not tiers[m].holds(b)]
                           if inclusive else [m for m in range(T) if admits(m, b)][:1])
                for m in targets:
                    place(m, b)
                if targets:
                    ins += 1
                    inserted.append(b)
        prefix.append(ph)
        bhits.append(bh)
        inserts.append(ins)
        runs.append(sum(1 for j, x in enumerate(inserted) if j == 0 or inserted[j - 1] + 1 != x))
        full.append(ft)
    return prefix, bhits, inserts, runs, full


# ---------------------------------------------------------------------------------------------
# Store: CSR reordering/trimming and the prefix tree (kvctrace/kernels/tree.py, store.py)
# ---------------------------------------------------------------------------------------------

def naive_gather_csr(lists, order):
    """Requests' id lists taken in ``order``."""
    return [list(lists[r]) for r in order]


def naive_truncate_csr(lists, keep):
    return [list(ids[:k]) for ids, k in zip(lists, keep)]


def naive_prefix_tree(lists, input_len, block_size):
    """Rows (block, first_req, parent_block or None, depth, tokens, raw id) of the blocks table,
    with dense ids given in order of first appearance, by walking the requests in order."""
    dense = {}
    rows = []
    for r, ids in enumerate(lists):
        for pos, raw in enumerate(ids):
            if raw not in dense:
                dense[raw] = len(dense)
                parent = dense[ids[pos - 1]] if pos > 0 else None
                tokens = min(max(input_len[r] - pos * block_size, 0), block_size)
                rows.append((dense[raw], r, parent, pos, tokens, raw))
    return rows


def naive_chat_sessions(chat_ids, parent_chat_ids):
    """(parent row or -1, session root id) per request by following parent links one by one;
    a chain whose top parent is absent is named by that absent id."""
    row_of = {}
    for i, c in enumerate(chat_ids):
        row_of.setdefault(c, i)
    parents, sessions = [], []
    for i in range(len(chat_ids)):
        p = parent_chat_ids[i]
        parents.append(row_of.get(p, -1) if p >= 0 else -1)
        cur, seen = i, set()
        top = chat_ids[i]
        while True:
            p = parent_chat_ids[cur]
            if p < 0:
                top = chat_ids[cur]
                break
            if p not in row_of:
                top = p
                break
            if row_of[p] in seen:  # a cycle: stop (no well-defined root)
                top = None
                break
            seen.add(cur)
            cur = row_of[p]
        sessions.append(top)
    return parents, sessions


def naive_segment_blocks(requests, block_size):
    """Per request (a list of (segment id, length)): per block (last partial included) the
    tuple of its token identities (segment id, position in segment). Equal tuples are exactly
    equal token contents, whatever token each identity materialises to."""
    out = []
    for segments in requests:
        tokens = [(sid, p) for sid, length in segments for p in range(length)]
        out.append([tuple(tokens[i:i + block_size]) for i in range(0, len(tokens), block_size)])
    return out


def naive_strict_json_line(line: str, classes: dict) -> bool:
    """Reference for kernels/jsonscan.py: the line is one JSON object (standard JSON: no NaN,
    no repeated top-level key) whose fields named in ``classes`` hold exactly: 0 an integer or
    a list of integers, 1 a number, 2 a string or an integer (booleans are never numbers)."""
    import json

    def no_constants(name):
        raise ValueError(name)
    objects = []  # key/value pairs of each object, innermost first: the line's own object last

    def keep_pairs(pairs):
        objects.append(pairs)
        return dict(pairs)
    try:
        rec = json.loads(line, parse_constant=no_constants, object_pairs_hook=keep_pairs)
    except ValueError:
        return False
    if isinstance(rec, dict) and len(rec) != len(objects[-1]):
        return False
    if not isinstance(rec, dict):
        return False

    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)

    def is_num(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    for key, cls in classes.items():
        if key not in rec:
            continue
        v = rec[key]
        if cls == 0 and not (is_int(v) or (isinstance(v, list) and all(is_int(x) for x in v))):
            return False
        if cls == 1 and not is_num(v):
            return False
        if cls == 2 and not (isinstance(v, str) or is_int(v)):
            return False
    return True


def naive_simulate_sessions(arrivals, user_len, out_len, image_len, search_len, u_continue, think,
                            p_continue, sess_type, sess_base_len, max_context):
    """synth's session rules with heapq: an arrival continues the session that became ready
    first (ties by earlier request) unless its context would overflow (then that session ends),
    else starts a new one. Types: 2 image (extra on turn 1), 3 search (extra every turn)."""
    import heapq
    heap: list = []
    session, turn, parent, input_len, user_eff = [], [], [], [], []
    n_sessions = 0
    for i, t in enumerate(arrivals):
        placed = False
        while heap and heap[0][0] <= t:
            _, prev = heapq.heappop(heap)
            s = session[prev]
            u = user_len[i] + (search_len[i] if sess_type[s] == 3 else 0)
            if input_len[prev] + out_len[prev] + u <= max_context:
                session.append(s)
                turn.append(turn[prev] + 1)
                parent.append(prev)
                user_eff.append(u)
                input_len.append(input_len[prev] + out_len[prev] + u)
                placed = True
                break
        if not placed:
            s = n_sessions
            n_sessions += 1
            extra = image_len[i] if sess_type[s] == 2 else (search_len[i] if sess_type[s] == 3 else 0)
            u = max(1, min(user_len[i] + extra, max_context - sess_base_len[s]))
            session.append(s)
            turn.append(1)
            parent.append(-1)
            user_eff.append(u)
            input_len.append(sess_base_len[s] + u)
        if u_continue[i] < p_continue:
            heapq.heappush(heap, (t + think[i], i))
    return session, turn, parent, input_len, user_eff, n_sessions


def naive_build_segments(session, parent, user_eff, out_len, sess_prompt, sess_doc, prompt_len, doc_len):
    """Per request: [(kind, index, length)] = system prompt, document (if any), then the user
    text and output of every earlier turn of its session, then its own user text."""
    out = []
    for i in range(len(session)):
        s = session[i]
        segs = [("sys", sess_prompt[s], prompt_len[sess_prompt[s]])]
        if sess_doc[s] >= 0:
            segs.append(("doc", sess_doc[s], doc_len[sess_doc[s]]))
        history = []
        r = parent[i]
        while r >= 0:
            history = [("user", r, user_eff[r]), ("out", r, out_len[r])] + history
            r = parent[r]
        out.append(segs + history + [("user", i, user_eff[i])])
    return out


# ---------------------------------------------------------------------------------------------
# store: raw id of each dense id (kernels/tree.first_values)
# ---------------------------------------------------------------------------------------------

def naive_first_values(dense, values):
    """For dense ids 0, 1, 2, ...: the value at each id's first access."""
    first = {}
    for d, v in zip(dense, values):
        first.setdefault(d, v)
    return [first[d] for d in range(len(first))]
