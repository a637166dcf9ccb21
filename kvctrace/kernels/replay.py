"""Cache-tier replay kernels (Numba): a fast single-tier LRU, the general multi-tier engine,
and a parallel sweep over many tier configurations.

Semantics (shared by all kernels here and by the naive reference in tests/naive/replay.py):
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

What a tier does on a hit, an insertion (and which block it evicts) and a removal is its
policy's: one module per policy in kernels/policies/, each of a *family* (spec.py): LIST
tiers are doubly linked lists in arrays (lists.py), HEAP tiers indexed min-heaps keyed by the
policy's key (heap.py), OWN tiers the policy's own fields. The engine keeps the family
structures and reaches the policy-specific part through kernels/policies/dispatch.py
(generated from the registry, kernels/policies/__init__.py) by the tier's policy code. The
per-block state the policies read is described in kernels/policies/state.py. The hooks and
family operations compile without reference counting (kernels/nrt.py).

Per request the engine also counts ``insert_runs``: runs of consecutive ids among the
missed blocks that entered a tier (a range index writes a run into one leaf).

Miss taxonomy (docs/replay.md "Miss taxonomy"): the engine counts the accesses in
``miss_hist[holder, top_ever, kind]``: the top-most tier holding the block (T: none), the
top-most tier that has ever held it (T: none), and whether the access is a prefix hit
(``PREFIX_HIT``), the block's first access (``FIRST``) or neither (``OTHER``). The causes
per tier follow from these counts alone (replay/engine.py ``miss_taxonomy``). The top-most
tiers that have ever held a block are bits of the block's membership word above the tier
bits (``EVER_SHIFT``), set by the same write that sets a tier's bit, so no per-block field or
write is added. Accesses to blocks that tier 0 has held are not counted (their cells stay 0;
one more memory write per access slowed the engine by about 6%): ``miss_taxonomy`` takes
them as the hit and miss totals less the other cells.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .policies import dispatch, heap, lists
from .policies.spec import HEAP, LIST, OWN
from .policies.state import (B_FIELDS, B_FREQ, B_LAST, B_MEMBER, B_NEXT, B_SEEN, EVER_SHIFT, HEAP_FIELDS,
                             LIST_FIELDS, row_itemsize, stamp)
from .runs import Runs, find_runs, request_lookup_plan

_NOT_CACHED = np.int32(-2)
_NEVER_SEEN = np.int32(-3)
_NEVER_SEEN_PAIR = np.array([-3, -3], np.int32).view(np.int64)[0]   # both halves -3: any byte order

# miss_hist's last axis (module docstring)
PREFIX_HIT, OTHER, FIRST = 0, 1, 2
MISS_KINDS = 3


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


def next_use_for_rows(blocks, n_unique):
    """``next_use`` in the dtype of the engine's per-block rows (kernels/policies/state.py:
    int32 when every value fits, half the memory; the engine's rows follow it)."""
    nu = next_use(blocks, np.int64(n_unique))
    return nu.astype(np.int32) if row_itemsize(nu.shape[0]) == 4 else nu


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
def lru_one_tier(offsets, blocks, n_unique, capacity, prefix_hits, block_hits, full_hit, insert_runs):
    """Single-tier block LRU as a doubly linked list in one int32 array (``link[2b]`` = prev,
    ``link[2b+1]`` = next; prev = -2 marks 'not cached', -3 'never accessed'). Returns
    (inserts, evictions, first accesses); with ``capacity`` <= 0 nothing is replayed."""
    link = np.full(2 * n_unique, _NEVER_SEEN, np.int32)
    head = np.int32(-1)
    tail = np.int32(-1)
    size = 0
    inserts = 0
    evictions = 0
    first = 0
    n_req = offsets.shape[0] - 1
    if capacity <= 0:
        return 0, 0, 0
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
            if p >= -1:
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
    # accessed blocks left the 'never accessed' mark: (prev, next) read as one int64 per block
    pairs = link.view(np.int64)
    for b in range(n_unique):
        first += pairs[b] != _NEVER_SEEN_PAIR
    return inserts, evictions, first


# ----------------------------------------------------------------------------- engine

@nb.njit(cache=True)
def _new_state(n_unique, caps, pols, nu_seq):
    """The state arrays of one replay (kernels/policies/state.py), every structure empty, and
    per tier its policy's family and its slot in that family's arrays. The per-block arrays
    are views into one row per block, of ``nu_seq``'s dtype."""
    T = caps.shape[0]
    fam = np.empty(T, np.int64)
    slot = np.empty(T, np.int64)
    n_family = np.zeros(3, np.int64)
    hcap = 1
    for k in range(T):
        f = dispatch.family(pols[k])
        fam[k] = f
        slot[k] = n_family[f]
        n_family[f] += 1
        if f == HEAP:
            hcap = max(hcap, min(caps[k], n_unique))
    n_l, n_h, n_o = n_family[LIST], n_family[HEAP], n_family[OWN]
    nf = dispatch.OWN_FIELDS
    width = B_FIELDS + LIST_FIELDS * n_l + HEAP_FIELDS * n_h + nf * n_o
    rows = np.zeros((n_unique, width), nu_seq.dtype)
    z = rows.itemsize
    bst = rows[:, :B_FIELDS]
    at = B_FIELDS
    link = np.lib.stride_tricks.as_strided(rows[:, at:], (n_l, n_unique, LIST_FIELDS),
                                           (LIST_FIELDS * z, width * z, z))
    at += LIST_FIELDS * n_l
    hpos = np.lib.stride_tricks.as_strided(rows[:, at:], (n_h, n_unique), (HEAP_FIELDS * z, width * z))
    at += HEAP_FIELDS * n_h
    st = np.lib.stride_tricks.as_strided(rows[:, at:], (n_o, n_unique, nf), (nf * z, width * z, z))
    lends = np.empty((max(n_l, 1), 3), np.int64)
    lends[:, :2] = -1
    lends[:, 2] = 0
    hb = np.empty((max(n_h, 1), hcap), np.int64)
    hk = np.empty((max(n_h, 1), hcap), np.int64)
    hsize = np.zeros(max(n_h, 1), np.int64)
    sc = np.zeros((max(n_o, 1), dispatch.OWN_SCALARS), np.int64)
    for k in range(T):
        if fam[k] == OWN:
            dispatch.own_init_tier(pols[k], st, sc, slot[k], caps[k])
    return bst, link, lends, hb, hk, hpos, hsize, st, sc, fam, slot


@nb.njit(cache=True, inline="always")
def _admits(caps, admit, m, seen):
    """Tier ``m`` exists (capacity > 0) and admits a block accessed ``seen`` times so far."""
    return caps[m] > 0 and seen >= admit[m]


@nb.njit(cache=True, inline="always")
def _top_ever(mask, T):
    """The top-most tier that has ever held the block of membership word ``mask``; T: none."""
    ever = mask >> EVER_SHIFT
    for m in range(T):
        if (ever >> m) & 1:
            return m
    return T


@nb.njit(cache=True)
def replay_tiers(offsets, blocks, n_unique, nu_seq, caps, pols, admit, inclusive, promote, demote,
                 prefix_hits, block_hits, index_inserts, insert_runs, full_tier, tier_inserts, tier_evictions,
                 miss_hist):
    """Multi-tier replay; fills the output arrays (see module docstring for semantics).

    prefix_hits, block_hits: (n_req, T) int32; index_inserts, insert_runs (n_req,) int32 =
    misses that entered some tier and their runs of consecutive ids; full_tier (n_req,) int8
    = tier of the last block when the whole request was a prefix hit, else -1;
    tier_inserts, tier_evictions: (T,) int64; miss_hist (T + 1, T + 1, MISS_KINDS) int64 (the
    miss taxonomy's counts, without the accesses to blocks tier 0 has held: module docstring). ``pols`` holds policy codes
    (kernels/policies/__init__.py).

    Why long: one loop over the accesses, on purpose: the hit, promotion, miss and insertion
    cascade steps are written out here, with each tier's structure operation per family
    (kernels/policies/spec.py) and the policy-specific part through the generated
    kernels/policies/dispatch.py. Helpers taking the state arrays cost: Numba's own inlining
    (``inline="always"``) reference-counts every array argument at every call in the loop,
    and a helper LLVM does not inline is a real call; either made the engine up to twice as
    slow (measured on benchmarks/bench_replay.py's 3-tier runs)."""
    T = caps.shape[0]
    for k in range(T):
        if pols[k] < 0 or pols[k] >= dispatch.N_POLICIES:
            raise ValueError("unknown policy code")
    bst, link, lends, hb, hk, hpos, hsize, st, sc, fam, slot = _new_state(n_unique, caps, pols, nu_seq)
    targets = np.empty(T, np.int64)
    for r in range(offsets.shape[0] - 1):
        lo, hi = offsets[r], offsets[r + 1]
        open_ = True
        full_tier[r] = -1
        last_ins = -2
        for i in range(lo, hi):
            b = blocks[i]
            bst[b, B_SEEN] += 1
            bst[b, B_LAST] = i
            stamp(bst, b, r, i - lo)
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
                if not (mask >> EVER_SHIFT) & 1:   # (tier 0 has held b: counted after the loop)
                    miss_hist[k, _top_ever(mask, T), PREFIX_HIT if open_ else OTHER] += 1
                s = slot[k]
                pk = pols[k]
                if fam[k] == LIST:
                    dispatch.list_on_hit(pk, link, lends, s, b)
                elif fam[k] == HEAP:
                    heap.set_key(hb, hk, hpos, hsize, s, heap.position(hpos, s, b), dispatch.heap_key(pk, bst, b))
                else:
                    dispatch.own_on_hit(pk, st, sc, s, b)
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
                                if fam[k] == LIST:
                                    lists.remove(link, lends, s, b)
                                elif fam[k] == HEAP:
                                    heap.remove_at(hb, hk, hpos, hsize, s, heap.position(hpos, s, b))
                                else:
                                    dispatch.own_remove(pk, st, sc, s, b)
                                bst[b, B_MEMBER] &= ~(np.int64(1) << k)
                                break
            else:
                open_ = False
                bst[b, B_FREQ] = 1
                if seen_b == 1:
                    miss_hist[T, T, FIRST] += 1
                elif not (mask >> EVER_SHIFT) & 1:
                    miss_hist[T, _top_ever(mask, T), OTHER] += 1
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
                    if fam[tk] == LIST:
                        v = lists.insert(link, lends, s, x, caps[tk])
                    elif fam[tk] == HEAP:
                        v = -1
                        if hsize[s] >= caps[tk]:
                            v = heap.replace_top(hb, hk, hpos, hsize, s, x, dispatch.heap_key(pols[tk], bst, x))
                        else:
                            heap.push(hb, hk, hpos, hsize, s, x, dispatch.heap_key(pols[tk], bst, x))
                    else:
                        v = dispatch.own_insert(pols[tk], st, sc, s, x, caps[tk])
                    bst[x, B_MEMBER] |= (np.int64(1) << tk) | (np.int64(1) << (EVER_SHIFT + tk))
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
def replay_tiers_many(offsets, blocks, n_unique, nu_seq, caps, pols, admit, inclusive, promote, demote,
                      prefix_hits, block_hits, index_inserts, insert_runs, full_tier, tier_inserts,
                      tier_evictions, miss_hist):
    """``replay_tiers`` for each row of ``caps``/``pols``/``admit`` (one config per row), in
    parallel over configs. Outputs gain a leading config axis."""
    n_cfg = caps.shape[0]
    for c in nb.prange(n_cfg):
        replay_tiers(offsets, blocks, n_unique, nu_seq, caps[c], pols[c], admit[c], inclusive, promote,
                     demote, prefix_hits[c], block_hits[c], index_inserts[c], insert_runs[c], full_tier[c],
                     tier_inserts[c], tier_evictions[c], miss_hist[c])
