"""Cache-tier replay kernels (Numba): a fast single-tier LRU, the general multi-tier engine,
and a parallel sweep over many tier configurations.

Semantics (shared by all kernels here and by the naive reference in tests/naive.py):
requests are replayed in order; the blocks of a request are accessed in position order. An
access *hits* when the block is held by some tier at that moment; the hit is counted for the
top-most tier holding it (``block_hits``). A request's *prefix hits* are its leading run of
hits from block 0 (a block's KV is usable only if every earlier block's is), counted per tier.
On a single tier this equals looking the prefix up before touching anything, since a hit
never evicts. A miss is inserted into the top admitting tier (exclusive) or into every
admitting tier (inclusive); a block a tier evicts moves down to the next tier that admits it
(``demote``), unless a lower tier already holds a copy (inclusive); a hit in a lower tier is
moved (exclusive) or copied (inclusive) up to the top admitting tier (``promote``). A tier
admits a block once the block has been accessed at least ``admit[k]`` times so far.

Priority policies (LRU, FIFO, LFU, prefix-LRU, Belady) keep each tier in an indexed min-heap
keyed by the policy's ``key`` (kvctrace/replay/policies/); S3-FIFO tiers use the queue
kernels of policies/s3fifo.py.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from ..replay.policies import belady, fifo, lfu, lru, prefix_lru, s3fifo

P_LRU, P_FIFO, P_LFU, P_S3FIFO, P_PREFIX_LRU, P_BELADY = 0, 1, 2, 3, 4, 5
_NOT_CACHED = np.int32(-2)


# ----------------------------------------------------------------------------- helpers

@nb.njit(cache=True)
def next_use(blocks, n_unique):
    """Index of the next access to the same block, or ``n + i`` when there is none."""
    n = blocks.shape[0]
    nxt = np.empty(n, np.int64)
    seen_at = np.full(n_unique, -1, np.int64)
    for i in range(n - 1, -1, -1):
        b = blocks[i]
        nxt[i] = seen_at[b] if seen_at[b] >= 0 else n + i
        seen_at[b] = i
    return nxt


@nb.njit(cache=True)
def request_runs(offsets, blocks):
    """Per request: blocks in runs of >= 2 consecutive ids, number of such runs, and the
    number of blocks not in any run (singletons). Used to plan index lookups."""
    n_req = offsets.shape[0] - 1
    seq_blocks = np.zeros(n_req, np.int64)
    n_runs = np.zeros(n_req, np.int64)
    singles = np.zeros(n_req, np.int64)
    for r in range(n_req):
        lo, hi = offsets[r], offsets[r + 1]
        i = lo
        while i < hi:
            j = i + 1
            while j < hi and blocks[j] == blocks[j - 1] + 1:
                j += 1
            if j - i >= 2:
                seq_blocks[r] += j - i
                n_runs[r] += 1
            else:
                singles[r] += 1
            i = j
    return seq_blocks, n_runs, singles


@nb.njit(cache=True)
def range_round_trips(offsets, blocks, keys_per_leaf, parallel):
    """Per request: round trips of range scans, one scan per run of >= 2 consecutive ids,
    each reading ceil(run / keys_per_leaf) leaves with at most ``parallel`` in flight; and
    the number of leaves read."""
    n_req = offsets.shape[0] - 1
    rtts = np.zeros(n_req, np.int64)
    leaves = np.zeros(n_req, np.int64)
    for r in range(n_req):
        lo, hi = offsets[r], offsets[r + 1]
        i = lo
        while i < hi:
            j = i + 1
            while j < hi and blocks[j] == blocks[j - 1] + 1:
                j += 1
            if j - i >= 2:
                lv = (j - i + keys_per_leaf - 1) // keys_per_leaf
                leaves[r] += lv
                rtts[r] += (lv + parallel - 1) // parallel
            i = j
    return rtts, leaves


# ----------------------------------------------------------------------------- one-tier LRU

@nb.njit(cache=True)
def _lru_one_tier(offsets, blocks, n_unique, capacity, prefix_hits, block_hits, full_hit):
    """Single-tier block LRU as a doubly linked list in one int32 array (``link[2b]`` = prev,
    ``link[2b+1]`` = next; prev = -2 marks 'not cached'). Returns (inserts, evictions)."""
    link = np.full(2 * n_unique, _NOT_CACHED, np.int32)
    head = np.int32(-1)
    tail = np.int32(-1)
    size = 0
    inserts = 0
    evictions = 0
    n_req = offsets.shape[0] - 1
    if capacity <= 0:
        return 0, 0
    for r in range(n_req):
        lo, hi = offsets[r], offsets[r + 1]
        open_ = True
        ph = 0
        bh = 0
        for i in range(lo, hi):
            b = np.int32(blocks[i])
            p = link[2 * b]
            if p != _NOT_CACHED:
                bh += 1
                if open_:
                    ph += 1
                if b != head:  # unlink (b has a prev) and push at head
                    nx = link[2 * b + 1]
                    link[2 * p + 1] = nx
                    if nx >= 0:
                        link[2 * nx] = p
                    else:
                        tail = p
                    link[2 * b] = -1
                    link[2 * b + 1] = head
                    link[2 * head] = b
                    head = b
            else:
                open_ = False
                if size >= capacity:
                    v = tail
                    pv = link[2 * v]
                    link[2 * v] = _NOT_CACHED
                    if pv >= 0:
                        link[2 * pv + 1] = -1
                    else:
                        head = np.int32(-1)
                    tail = pv
                    size -= 1
                    evictions += 1
                link[2 * b] = -1
                link[2 * b + 1] = head
                if head >= 0:
                    link[2 * head] = b
                else:
                    tail = b
                head = b
                size += 1
                inserts += 1
        prefix_hits[r] = ph
        block_hits[r] = bh
        full_hit[r] = open_ and hi > lo
    return inserts, evictions


# ----------------------------------------------------------------------------- heap

@nb.njit(cache=True, inline="always")
def _sift_up(heap, hpos, hkey, h, i):
    b = heap[h, i]
    k = hkey[h, b]
    while i > 0:
        parent = (i - 1) >> 1
        pb = heap[h, parent]
        if hkey[h, pb] <= k:
            break
        heap[h, i] = pb
        hpos[h, pb] = i
        i = parent
    heap[h, i] = b
    hpos[h, b] = i


@nb.njit(cache=True, inline="always")
def _sift_down(heap, hpos, hkey, hsize, h, i):
    n = hsize[h]
    b = heap[h, i]
    k = hkey[h, b]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        cb = heap[h, c]
        if c + 1 < n and hkey[h, heap[h, c + 1]] < hkey[h, cb]:
            c += 1
            cb = heap[h, c]
        if hkey[h, cb] >= k:
            break
        heap[h, i] = cb
        hpos[h, cb] = i
        i = c
    heap[h, i] = b
    hpos[h, b] = i


@nb.njit(cache=True, inline="always")
def _heap_remove_at(heap, hpos, hkey, hsize, h, i):
    b = heap[h, i]
    hpos[h, b] = -1
    n = hsize[h] - 1
    hsize[h] = n
    if i < n:
        last = heap[h, n]
        heap[h, i] = last
        hpos[h, last] = i
        if i > 0 and hkey[h, last] < hkey[h, heap[h, (i - 1) >> 1]]:
            _sift_up(heap, hpos, hkey, h, i)
        else:
            _sift_down(heap, hpos, hkey, hsize, h, i)
    return b


@nb.njit(cache=True, inline="always")
def _key(pol, b, seq, last_t, freq, stamp, nu):
    if pol == P_LRU:
        return lru.key(b, seq, last_t, freq, stamp, nu)
    if pol == P_FIFO:
        return fifo.key(b, seq, last_t, freq, stamp, nu)
    if pol == P_LFU:
        return lfu.key(b, seq, last_t, freq, stamp, nu)
    if pol == P_PREFIX_LRU:
        return prefix_lru.key(b, seq, last_t, freq, stamp, nu)
    return belady.key(b, seq, last_t, freq, stamp, nu)


# ----------------------------------------------------------------------------- engine

@nb.njit(cache=True)
def _engine(offsets, blocks, n_unique, nu_seq, caps, pols, admit, inclusive, promote, demote,
            prefix_hits, block_hits, index_inserts, full_tier, tier_inserts, tier_evictions):
    """Multi-tier replay; fills the output arrays (see module docstring for semantics).

    prefix_hits, block_hits: (n_req, T) int32; index_inserts (n_req,) int32 = misses that
    entered some tier; full_tier (n_req,) int8 = tier of the last block when the whole
    request was a prefix hit, else -1; tier_inserts, tier_evictions: (T,) int64."""
    T = caps.shape[0]
    n_req = offsets.shape[0] - 1
    slot = np.empty(T, np.int64)
    n_h = 0
    n_s = 0
    hcap = 1
    for k in range(T):
        if pols[k] == P_S3FIFO:
            slot[k] = n_s
            n_s += 1
        else:
            slot[k] = n_h
            n_h += 1
            c = min(caps[k], n_unique)
            if c > hcap:
                hcap = c
    heap = np.empty((max(n_h, 1), hcap), np.int64)
    hpos = np.full((n_h, n_unique), -1, np.int64)
    hkey = np.zeros((n_h, n_unique), np.int64)
    hsize = np.zeros(max(n_h, 1), np.int64)
    st = np.full((n_s, s3fifo.N_FIELDS, n_unique), -1, np.int64)
    sc = np.zeros((max(n_s, 1), s3fifo.N_SCALARS), np.int64)
    for k in range(T):
        if pols[k] == P_S3FIFO:
            s3fifo.init_slot(sc, slot[k], caps[k])
            st[slot[k], s3fifo.QID, :] = 0
            st[slot[k], s3fifo.FREQ, :] = 0
    member = np.zeros((n_unique, T), np.int8)
    last_t = np.zeros(n_unique, np.int64)
    freq = np.zeros(n_unique, np.int64)
    stamp = np.zeros(n_unique, np.int64)
    nu = np.zeros(n_unique, np.int64)
    seen = np.zeros(n_unique, np.int64)
    targets = np.empty(T, np.int64)
    seq = 0

    for r in range(n_req):
        lo, hi = offsets[r], offsets[r + 1]
        open_ = True
        full_tier[r] = -1
        for i in range(lo, hi):
            b = blocks[i]
            seen[b] += 1
            last_t[b] = i
            stamp[b] = prefix_lru.stamp_of(r, i - lo)
            nu[b] = nu_seq[i]
            k = -1
            for m in range(T):
                if member[b, m] != 0:
                    k = m
                    break
            # Decide which tiers receive a copy of b. Cascades only move blocks down, so the
            # decisions cannot be invalidated by earlier placements of the same access.
            n_t = 0
            if k >= 0:
                freq[b] += 1
                block_hits[r, k] += 1
                if open_:
                    prefix_hits[r, k] += 1
                    if i == hi - 1:
                        full_tier[r] = k
                s = slot[k]
                if pols[k] == P_S3FIFO:
                    s3fifo.on_hit(st, s, b)
                elif pols[k] != P_FIFO:
                    hkey[s, b] = _key(pols[k], b, seq, last_t, freq, stamp, nu)
                    j = hpos[s, b]
                    if j > 0 and hkey[s, b] < hkey[s, heap[s, (j - 1) >> 1]]:
                        _sift_up(heap, hpos, hkey, s, j)
                    else:
                        _sift_down(heap, hpos, hkey, hsize, s, j)
                if promote and k > 0:
                    if inclusive:
                        for m in range(k - 1, -1, -1):
                            if caps[m] > 0 and seen[b] >= admit[m] and member[b, m] == 0:
                                targets[n_t] = m
                                n_t += 1
                    else:
                        for m in range(k):
                            if caps[m] > 0 and seen[b] >= admit[m]:
                                targets[n_t] = m
                                n_t += 1
                                # exclusive: take b out of tier k first
                                if pols[k] == P_S3FIFO:
                                    s3fifo.remove(st, sc, s, b)
                                else:
                                    _heap_remove_at(heap, hpos, hkey, hsize, s, hpos[s, b])
                                member[b, k] = 0
                                break
            else:
                open_ = False
                freq[b] = 1
                if inclusive:
                    for m in range(T - 1, -1, -1):
                        if caps[m] > 0 and seen[b] >= admit[m]:
                            targets[n_t] = m
                            n_t += 1
                else:
                    for m in range(T):
                        if caps[m] > 0 and seen[b] >= admit[m]:
                            targets[n_t] = m
                            n_t += 1
                            break
                if n_t > 0:
                    index_inserts[r] += 1
            # Place b into each target tier; each eviction cascades down the tiers.
            for q in range(n_t):
                tk = targets[q]
                x = b
                while True:
                    # insert x into tier tk, v = evicted block or -1
                    s = slot[tk]
                    if pols[tk] == P_S3FIFO:
                        v = s3fifo.insert(st, sc, s, x, caps[tk])
                    else:
                        v = -1
                        if hsize[s] >= caps[tk]:
                            v = _heap_remove_at(heap, hpos, hkey, hsize, s, 0)
                        hkey[s, x] = _key(pols[tk], x, seq, last_t, freq, stamp, nu)
                        hn = hsize[s]
                        heap[s, hn] = x
                        hpos[s, x] = hn
                        hsize[s] = hn + 1
                        _sift_up(heap, hpos, hkey, s, hn)
                    seq += 1
                    member[x, tk] = 1
                    tier_inserts[tk] += 1
                    if v < 0:
                        break
                    member[v, tk] = 0
                    tier_evictions[tk] += 1
                    if not demote:
                        break
                    nxt_tier = -1
                    for m in range(tk + 1, T):
                        if member[v, m] != 0:
                            break  # a lower tier already holds a copy: nothing to move
                        if caps[m] > 0 and seen[v] >= admit[m]:
                            nxt_tier = m
                            break
                    if nxt_tier < 0:
                        break
                    tk = nxt_tier
                    x = v


# ----------------------------------------------------------------------------- sweep

@nb.njit(cache=True, parallel=True)
def _replay_many(offsets, blocks, n_unique, nu_seq, caps, pols, admit, inclusive, promote, demote,
                 prefix_hits, block_hits, index_inserts, full_tier, tier_inserts, tier_evictions):
    """``_engine`` for each row of ``caps``/``pols``/``admit`` (one config per row), in
    parallel over configs. Outputs gain a leading config axis."""
    n_cfg = caps.shape[0]
    for c in nb.prange(n_cfg):
        _engine(offsets, blocks, n_unique, nu_seq, caps[c], pols[c], admit[c], inclusive, promote,
                demote, prefix_hits[c], block_hits[c], index_inserts[c], full_tier[c],
                tier_inserts[c], tier_evictions[c])
