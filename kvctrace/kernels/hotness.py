"""Per-block heat and per-window top-k sets (Numba).

* ``first_access_flags``: True at the first access of each block in the access stream.
* ``block_first_position``: each block's position in the request where it first appeared
  (its depth in the prefix tree; on chained traces a block always sits at that position).
* ``window_top_k``: for each window of the access stream, the ``k`` most-accessed blocks of
  that window. Ties in count are broken by lower block id first (older block), so the result
  is deterministic.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .arrays import ids, offsets as as_offsets


@nb.njit(cache=True, nogil=True)
def _first_access(blocks, n_unique):
    seen = np.zeros(n_unique, np.bool_)
    first = np.zeros(blocks.shape[0], np.bool_)
    for t in range(blocks.shape[0]):
        b = blocks[t]
        if not seen[b]:
            seen[b] = True
            first[t] = True
    return first


@nb.njit(cache=True, nogil=True)
def _first_position(offsets, blocks, n_unique):
    # int32: one entry per block (the wrapper checks the range)
    pos = np.full(n_unique, -1, np.int32)
    first_req = np.full(n_unique, -1, np.int32)
    for r in range(offsets.shape[0] - 1):
        s = offsets[r]
        for t in range(s, offsets[r + 1]):
            b = blocks[t]
            if pos[b] < 0:
                pos[b] = t - s
                first_req[b] = r
    return pos, first_req


@nb.njit(cache=True, nogil=True)
def _window_top_k(blocks, bounds, n_unique, k):
    n_win = bounds.shape[0] - 1
    top = np.full((n_win, k), -1, np.int64)
    top_counts = np.zeros((n_win, k), np.int64)
    n_distinct = np.zeros(n_win, np.int64)
    counts = np.zeros(n_unique, np.int32)
    # a window touches at most min(its length, n_unique) blocks: size the scratch lists by
    # that, not by the whole trace (2 x 4 bytes per access otherwise)
    cap = 0
    for w in range(n_win):
        cap = max(cap, bounds[w + 1] - bounds[w])
    cap = min(cap, n_unique)
    touched = np.empty(cap, np.int32)
    ties = np.empty(cap, np.int32)
    for w in range(n_win):
        m = 0
        max_c = 0
        for t in range(bounds[w], bounds[w + 1]):
            b = blocks[t]
            if counts[b] == 0:
                touched[m] = b
                m += 1
            counts[b] += 1
            if counts[b] > max_c:
                max_c = counts[b]
        n_distinct[w] = m
        if m > 0:
            # Selection in O(m) instead of sorting the window: find the count c* of the k-th
            # hottest block from a histogram of counts; keep every block hotter than c*, and
            # among the blocks at exactly c* the lowest ids (the tie rule), via np.partition.
            hist = np.zeros(max_c + 1, np.int64)
            for i in range(m):
                hist[counts[touched[i]]] += 1
            kk = min(k, m)
            greater = 0
            cstar = max_c
            while greater + hist[cstar] < kk:
                greater += hist[cstar]
                cstar -= 1
            need = kk - greater
            chosen = np.empty(kk, np.int64)
            nc = 0
            nt = 0
            for i in range(m):
                b = touched[i]
                if counts[b] > cstar:
                    chosen[nc] = b
                    nc += 1
                elif counts[b] == cstar:
                    ties[nt] = b
                    nt += 1
            if need < nt:
                kth = np.partition(ties[:nt], need - 1)[need - 1]
                for i in range(nt):
                    if ties[i] <= kth:
                        chosen[nc] = ties[i]
                        nc += 1
            else:
                for i in range(nt):
                    chosen[nc] = ties[i]
                    nc += 1
            # order the k chosen by count descending, then id ascending (keys are unique)
            keys = np.empty(kk, np.int64)
            for j in range(kk):
                keys[j] = (max_c - counts[chosen[j]]) * n_unique + chosen[j]
            order = np.argsort(keys)
            for j in range(kk):
                b = chosen[order[j]]
                top[w, j] = b
                top_counts[w, j] = counts[b]
        for i in range(m):
            counts[touched[i]] = 0
    return top, top_counts, n_distinct


def _group_masks(n_unique: int, n_groups: int) -> np.ndarray:
    """Zeroed per-block masks, a bit per group, of the narrowest unsigned type (1 byte per
    block for up to 8 groups)."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if n_groups <= np.iinfo(dtype).bits:
            return np.zeros(n_unique, dtype)
    raise ValueError("more than 64 groups")


@nb.njit(cache=True, nogil=True)
def _heat_by_group(offsets, blocks, group, n_groups, mask):
    requests = np.zeros(n_groups, np.int64)
    accesses = np.zeros(n_groups, np.int64)
    distinct = np.zeros(n_groups, np.int64)
    reaccesses = np.zeros(n_groups, np.int64)
    seen = np.zeros(mask.shape[0], np.bool_)
    one = np.uint64(1)  # mask[b] bit g: block b accessed by group g
    for r in range(offsets.shape[0] - 1):
        g = group[r]
        bit = one << np.uint64(g)
        requests[g] += 1
        for t in range(offsets[r], offsets[r + 1]):
            b = blocks[t]
            accesses[g] += 1
            if seen[b]:
                reaccesses[g] += 1
            else:
                seen[b] = True
            if mask[b] & bit == 0:
                mask[b] |= bit
                distinct[g] += 1
    return requests, accesses, distinct, reaccesses


@nb.njit(cache=True, nogil=True)
def _block_heat(offsets, blocks, n_unique, max_len):
    """Accesses per block (int32), and from them the blocks per access count and, per depth
    (the block's position in the request where it first appeared), the blocks, their
    accesses and the one-hit blocks: one pass over the accesses, one over the blocks."""
    counts = np.zeros(n_unique, np.int32)
    depth = np.full(n_unique, -1, np.int32)
    for r in range(offsets.shape[0] - 1):
        s = offsets[r]
        for t in range(s, offsets[r + 1]):
            b = blocks[t]
            counts[b] += 1
            if depth[b] < 0:
                depth[b] = t - s
    top = 0
    for b in range(n_unique):
        top = max(top, counts[b])
    by_count = np.zeros(top + 1, np.int64)
    by_depth = np.zeros((3, max_len), np.int64)  # blocks, accesses, one-hit blocks
    for b in range(n_unique):
        c = counts[b]
        by_count[c] += 1
        d = depth[b]
        if d >= 0:
            by_depth[0, d] += 1
            by_depth[1, d] += c
            by_depth[2, d] += c == 1
    return counts, by_count, by_depth


def block_heat(offsets, blocks, n_unique: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(accesses per block (int32), blocks per access count (index = count), per depth
    [blocks, accesses, one-hit blocks] (3 x longest request)) without a per-access copy."""
    offsets, blocks = as_offsets(offsets), ids(blocks)
    if blocks.shape[0] >= 2**31:
        raise ValueError("block_heat counts in int32: more than 2**31 accesses")
    max_len = int(np.diff(offsets).max()) if offsets.shape[0] > 1 else 0
    return _block_heat(offsets, blocks, int(n_unique), max(max_len, 1))


MAX_GROUPS = 64


def heat_by_group(offsets, blocks, n_unique: int, group, n_groups: int):
    """Per request group (e.g. request type; ``group`` = one code in [0, n_groups) per
    request, n_groups <= 64): (requests, accesses, distinct blocks, re-accesses), where a
    re-access is an access that is not the block's first access in the whole trace."""
    if not 0 < n_groups <= MAX_GROUPS:
        raise ValueError(f"n_groups must be in 1..{MAX_GROUPS}")
    group = np.ascontiguousarray(group, dtype=np.int64)
    if group.shape[0] and (group.min() < 0 or group.max() >= n_groups):
        raise ValueError("group codes must lie in [0, n_groups)")
    return _heat_by_group(as_offsets(offsets), ids(blocks), group, int(n_groups),
                          _group_masks(int(n_unique), n_groups))


def first_access_flags(blocks, n_unique: int) -> np.ndarray:
    return _first_access(ids(blocks), int(n_unique))


def block_first_position(offsets, blocks, n_unique: int) -> tuple[np.ndarray, np.ndarray]:
    """(position at first appearance, request of first appearance) per block id, int32."""
    if len(offsets) > np.iinfo(np.int32).max:
        raise ValueError("block_first_position returns int32: too many requests")
    return _first_position(as_offsets(offsets), ids(blocks), int(n_unique))


def window_top_k(blocks, bounds, n_unique: int, k: int):
    """Top-``k`` blocks per window; window ``w`` covers accesses ``bounds[w]:bounds[w+1]``.
    Returns (top ids padded with -1, their counts, distinct blocks per window)."""
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    if k < 1:
        raise ValueError("k must be >= 1")
    if bounds.shape[0] < 1 or np.any(np.diff(bounds) < 0):
        raise ValueError("bounds must be non-decreasing")
    return _window_top_k(ids(blocks), bounds, int(n_unique), int(k))
