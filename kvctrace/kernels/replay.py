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

LRU and FIFO tiers are doubly linked lists in arrays (arrivals at the head, evictions from
the tail; an LRU hit moves the block to the head). Priority policies (LFU, prefix-LRU,
Belady) keep each tier in an indexed min-heap keyed by the policy's ``key``
(kvctrace/replay/policies/); S3-FIFO tiers use the queue kernels of policies/s3fifo.py.

Per request the engine also counts ``insert_runs``: runs of consecutive ids among the
missed blocks that entered a tier (a range index writes a run into one leaf).
"""
from __future__ import annotations

import numba as nb
import numpy as np

from ..replay.policies import belady, lfu, prefix_lru, s3fifo
from .runs import Runs, find_runs, request_lookup_plan

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


# Runs of consecutive ids are found by kernels/runs.py (their one definition); the index cost
# models only aggregate them per request.

def request_runs(offsets, blocks):
    """Per request: blocks in runs of >= 2 consecutive ids, number of such runs, and the
    number of blocks not in any run (singletons). Used to plan index lookups."""
    plan = request_lookup_plan(offsets, blocks)
    return plan.n_range_blocks, plan.n_range, plan.n_point


def range_reads(runs: Runs, keys_per_leaf: int, parallel: int):
    """Per request: round trips of range scans, one scan per run of >= 2 consecutive ids,
    each reading ceil(run / keys_per_leaf) leaves with at most ``parallel`` in flight; and
    the number of leaves read."""
    n_req = runs.run_offsets.shape[0] - 1
    owner = np.repeat(np.arange(n_req), np.diff(runs.run_offsets))
    scans = runs.run_len >= 2
    leaves = -(-runs.run_len[scans] // int(keys_per_leaf))
    rtts = -(-leaves // int(parallel))
    return (np.bincount(owner[scans], weights=rtts, minlength=n_req).astype(np.int64),
            np.bincount(owner[scans], weights=leaves, minlength=n_req).astype(np.int64))


def range_round_trips(offsets, blocks, keys_per_leaf, parallel):
    """``range_reads`` of the runs of ``offsets``/``blocks``."""
    return range_reads(find_runs(offsets, blocks), keys_per_leaf, parallel)


# ----------------------------------------------------------------------------- one-tier LRU

@nb.njit(cache=True)
def _lru_one_tier(offsets, blocks, n_unique, capacity, prefix_hits, block_hits, full_hit, insert_runs):
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
        runs = 0
        last_ins = -2
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
                if b != last_ins + 1:
                    runs += 1
                last_ins = b
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
        insert_runs[r] = runs
    return inserts, evictions


# ----------------------------------------------------------------------------- heap
# An indexed binary min-heap per tier: hb[h, i] = block at heap position i, hk[h, i] = its
# key (kept beside the block so sifting reads contiguous memory), hpos[h, b] = position of b.
# Sifting moves a hole instead of swapping: entries shift into it and the sifted block is
# placed once at the end.

@nb.njit(cache=True, inline="always")
def _heap_place(hb, hk, hpos, h, i, b, k):
    """Put block ``b`` with key ``k`` at heap position ``i`` and record its position."""
    hb[h, i] = b
    hk[h, i] = k
    hpos[h, b] = i


@nb.njit(cache=True, inline="always")
def _sift_up(hb, hk, hpos, h, i):
    b = hb[h, i]
    k = hk[h, i]
    while i > 0:
        parent = (i - 1) >> 1
        if hk[h, parent] <= k:
            break
        _heap_place(hb, hk, hpos, h, i, hb[h, parent], hk[h, parent])
        i = parent
    _heap_place(hb, hk, hpos, h, i, b, k)


@nb.njit(cache=True, inline="always")
def _sift_down(hb, hk, hpos, hsize, h, i):
    n = hsize[h]
    b = hb[h, i]
    k = hk[h, i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and hk[h, c + 1] < hk[h, c]:
            c += 1
        if hk[h, c] >= k:
            break
        _heap_place(hb, hk, hpos, h, i, hb[h, c], hk[h, c])
        i = c
    _heap_place(hb, hk, hpos, h, i, b, k)


@nb.njit(cache=True, inline="always")
def _heap_set_key(hb, hk, hpos, hsize, h, i, key):
    old = hk[h, i]
    hk[h, i] = key
    if key < old:
        _sift_up(hb, hk, hpos, h, i)
    else:
        _sift_down(hb, hk, hpos, hsize, h, i)


@nb.njit(cache=True, inline="always")
def _heap_push(hb, hk, hpos, hsize, h, b, key):
    n = hsize[h]
    _heap_place(hb, hk, hpos, h, n, b, key)
    hsize[h] = n + 1
    _sift_up(hb, hk, hpos, h, n)


@nb.njit(cache=True, inline="always")
def _heap_remove_at(hb, hk, hpos, hsize, h, i):
    b = hb[h, i]
    hpos[h, b] = -1
    n = hsize[h] - 1
    hsize[h] = n
    if i < n:
        _heap_place(hb, hk, hpos, h, i, hb[h, n], hk[h, n])
        if i > 0 and hk[h, i] < hk[h, (i - 1) >> 1]:
            _sift_up(hb, hk, hpos, h, i)
        else:
            _sift_down(hb, hk, hpos, hsize, h, i)
    return b


# Per-block state, one row per block so one access touches one cache line:
# last access index, in-cache access count, prefix stamp, next use, accesses so far, and a
# bitmask of the tiers holding the block.
B_LAST, B_FREQ, B_STAMP, B_NEXT, B_SEEN, B_MEMBER = 0, 1, 2, 3, 4, 5
B_FIELDS = 6


@nb.njit(cache=True, inline="always")
def _key(pol, bst, b):
    if pol == P_LFU:
        return lfu.key(bst[b, B_FREQ], bst[b, B_LAST])
    if pol == P_PREFIX_LRU:
        return prefix_lru.key(bst[b, B_STAMP])
    return belady.key(bst[b, B_NEXT])


@nb.njit(cache=True, inline="always")
def _admits(caps, admit, m, seen):
    """Tier ``m`` exists (capacity > 0) and admits a block accessed ``seen`` times so far."""
    return caps[m] > 0 and seen >= admit[m]


@nb.njit(cache=True, inline="always")
def _list_unlink(link, lhead, ltail, lsize, s, b):
    p = link[s, b, 0]
    nx = link[s, b, 1]
    if p >= 0:
        link[s, p, 1] = nx
    else:
        lhead[s] = nx
    if nx >= 0:
        link[s, nx, 0] = p
    else:
        ltail[s] = p
    lsize[s] -= 1


@nb.njit(cache=True, inline="always")
def _list_push_head(link, lhead, ltail, lsize, s, b):
    h = lhead[s]
    link[s, b, 0] = -1
    link[s, b, 1] = h
    if h >= 0:
        link[s, h, 0] = b
    else:
        ltail[s] = b
    lhead[s] = b
    lsize[s] += 1


# ----------------------------------------------------------------------------- engine

@nb.njit(cache=True)
def _engine(offsets, blocks, n_unique, nu_seq, caps, pols, admit, inclusive, promote, demote,
            prefix_hits, block_hits, index_inserts, insert_runs, full_tier, tier_inserts, tier_evictions):
    """Multi-tier replay; fills the output arrays (see module docstring for semantics).

    prefix_hits, block_hits: (n_req, T) int32; index_inserts, insert_runs (n_req,) int32 =
    misses that entered some tier and their runs of consecutive ids; full_tier (n_req,) int8
    = tier of the last block when the whole request was a prefix hit, else -1;
    tier_inserts, tier_evictions: (T,) int64."""
    T = caps.shape[0]
    n_req = offsets.shape[0] - 1
    # each tier gets a slot in the structure of its policy kind
    slot = np.empty(T, np.int64)
    n_h = 0
    n_s = 0
    n_l = 0
    hcap = 1
    for k in range(T):
        if pols[k] == P_S3FIFO:
            slot[k] = n_s
            n_s += 1
        elif pols[k] == P_LRU or pols[k] == P_FIFO:
            slot[k] = n_l
            n_l += 1
        else:
            slot[k] = n_h
            n_h += 1
            c = min(caps[k], n_unique)
            if c > hcap:
                hcap = c
    hb = np.empty((max(n_h, 1), hcap), np.int64)
    hk = np.empty((max(n_h, 1), hcap), np.int64)
    hpos = np.full((n_h, n_unique), -1, np.int64)
    hsize = np.zeros(max(n_h, 1), np.int64)
    st = np.full((n_s, n_unique, s3fifo.N_FIELDS), -1, np.int64)
    sc = np.zeros((max(n_s, 1), s3fifo.N_SCALARS), np.int64)
    for k in range(T):
        if pols[k] == P_S3FIFO:
            s3fifo.init_slot(sc, slot[k], caps[k])
            st[slot[k], :, s3fifo.QID] = 0
            st[slot[k], :, s3fifo.FREQ] = 0
    link = np.empty((n_l, n_unique, 2), np.int32)
    lhead = np.full(max(n_l, 1), -1, np.int64)
    ltail = np.full(max(n_l, 1), -1, np.int64)
    lsize = np.zeros(max(n_l, 1), np.int64)
    bst = np.zeros((n_unique, B_FIELDS), np.int64)
    targets = np.empty(T, np.int64)

    for r in range(n_req):
        lo, hi = offsets[r], offsets[r + 1]
        open_ = True
        full_tier[r] = -1
        last_ins = -2
        for i in range(lo, hi):
            b = blocks[i]
            bst[b, B_SEEN] += 1
            bst[b, B_LAST] = i
            bst[b, B_STAMP] = prefix_lru.stamp_of(r, i - lo)
            bst[b, B_NEXT] = nu_seq[i]
            mask = bst[b, B_MEMBER]
            k = -1
            for m in range(T):
                if (mask >> m) & 1:
                    k = m
                    break
            seen_b = bst[b, B_SEEN]
            # Decide which tiers receive a copy of b. Cascades only move blocks down, so the
            # decisions cannot be invalidated by earlier placements of the same access.
            n_t = 0
            if k >= 0:
                bst[b, B_FREQ] += 1
                block_hits[r, k] += 1
                if open_:
                    prefix_hits[r, k] += 1
                    if i == hi - 1:
                        full_tier[r] = k
                s = slot[k]
                pk = pols[k]
                if pk == P_S3FIFO:
                    s3fifo.on_hit(st, s, b)
                elif pk == P_LRU:
                    if lhead[s] != b:
                        _list_unlink(link, lhead, ltail, lsize, s, b)
                        _list_push_head(link, lhead, ltail, lsize, s, b)
                elif pk != P_FIFO:
                    _heap_set_key(hb, hk, hpos, hsize, s, hpos[s, b], _key(pk, bst, b))
                if promote and k > 0:
                    if inclusive:
                        for m in range(k - 1, -1, -1):
                            if _admits(caps, admit, m, seen_b) and not (mask >> m) & 1:
                                targets[n_t] = m
                                n_t += 1
                    else:
                        for m in range(k):
                            if _admits(caps, admit, m, seen_b):
                                targets[n_t] = m
                                n_t += 1
                                # exclusive: take b out of tier k first
                                if pk == P_S3FIFO:
                                    s3fifo.remove(st, sc, s, b)
                                elif pk == P_LRU or pk == P_FIFO:
                                    _list_unlink(link, lhead, ltail, lsize, s, b)
                                else:
                                    _heap_remove_at(hb, hk, hpos, hsize, s, hpos[s, b])
                                bst[b, B_MEMBER] &= ~(np.int64(1) << k)
                                break
            else:
                open_ = False
                bst[b, B_FREQ] = 1
                if inclusive:
                    for m in range(T - 1, -1, -1):
                        if _admits(caps, admit, m, seen_b):
                            targets[n_t] = m
                            n_t += 1
                else:
                    for m in range(T):
                        if _admits(caps, admit, m, seen_b):
                            targets[n_t] = m
                            n_t += 1
                            break
                if n_t > 0:
                    index_inserts[r] += 1
                    if b != last_ins + 1:
                        insert_runs[r] += 1
                    last_ins = b
            # Place b into each target tier; each eviction cascades down the tiers.
            for q in range(n_t):
                tk = targets[q]
                x = b
                while True:
                    # insert x into tier tk; v = the block evicted to make room, or -1
                    s = slot[tk]
                    pk = pols[tk]
                    v = -1
                    if pk == P_S3FIFO:
                        v = s3fifo.insert(st, sc, s, x, caps[tk])
                    elif pk == P_LRU or pk == P_FIFO:
                        if lsize[s] >= caps[tk]:
                            v = np.int64(ltail[s])
                            _list_unlink(link, lhead, ltail, lsize, s, v)
                        _list_push_head(link, lhead, ltail, lsize, s, x)
                    else:
                        if hsize[s] >= caps[tk]:
                            v = _heap_remove_at(hb, hk, hpos, hsize, s, 0)
                        _heap_push(hb, hk, hpos, hsize, s, x, _key(pk, bst, x))
                    bst[x, B_MEMBER] |= np.int64(1) << tk
                    tier_inserts[tk] += 1
                    if v < 0:
                        break
                    bst[v, B_MEMBER] &= ~(np.int64(1) << tk)
                    tier_evictions[tk] += 1
                    if not demote:
                        break
                    nxt_tier = -1
                    vmask = bst[v, B_MEMBER]
                    for m in range(tk + 1, T):
                        if (vmask >> m) & 1:
                            break  # a lower tier already holds a copy: nothing to move
                        if _admits(caps, admit, m, bst[v, B_SEEN]):
                            nxt_tier = m
                            break
                    if nxt_tier < 0:
                        break
                    tk = nxt_tier
                    x = v


# ----------------------------------------------------------------------------- sweep

@nb.njit(cache=True, parallel=True)
def _replay_many(offsets, blocks, n_unique, nu_seq, caps, pols, admit, inclusive, promote, demote,
                 prefix_hits, block_hits, index_inserts, insert_runs, full_tier, tier_inserts, tier_evictions):
    """``_engine`` for each row of ``caps``/``pols``/``admit`` (one config per row), in
    parallel over configs. Outputs gain a leading config axis."""
    n_cfg = caps.shape[0]
    for c in nb.prange(n_cfg):
        _engine(offsets, blocks, n_unique, nu_seq, caps[c], pols[c], admit[c], inclusive, promote,
                demote, prefix_hits[c], block_hits[c], index_inserts[c], insert_runs[c], full_tier[c],
                tier_inserts[c], tier_evictions[c])
