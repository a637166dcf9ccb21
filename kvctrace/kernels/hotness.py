"""Per-block heat and per-window top-k sets (Numba).

* ``first_access_flags``: True at the first access of each block in the access stream.
* ``block_first_position``: each block's position in the request where it first appeared
  (its depth in the prefix tree; on chained traces a block always sits at that position).
* ``window_top_k``: for each window of the access stream, the ``k`` most-accessed blocks of
  that window. Ties in count are broken by lower block id first (older block), so the result
  is deterministic.
* ``block_heat``, ``heat_by_group``: accesses per block and per request group.

What an analysis runs over a trace bigger than memory is an accumulator fed the trace a chunk
of whole requests at a time ((first request, CSR offsets from 0, ids) each, as
``Trace.access_chunks`` yields them), keeping state per block, never per access: ``BlockHeat``, ``WindowTopK``, ``GroupHeat`` (``add`` each chunk in arrival order,
``end_pass`` after the last: True when it needs another pass, then ``result``). The functions
above feed theirs the whole arrays as one chunk, so there is one implementation of each.
``first_access_flags`` and ``block_first_position`` return per-access / per-block arrays for
notebooks and tests; no analysis calls them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numba as nb
import numpy as np

from .arrays import RequestCursor, ids, offsets as as_offsets


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
def _window_top_k_add(blocks, start, bounds, k, counts, touched, ties, top, top_counts, n_distinct, state):
    """Count accesses ``start`` .. ``start + len(blocks) - 1`` of the stream into their windows
    (``counts``: per block, in the open window), taking the top ``k`` of each window that
    ends by then. ``state`` carries the open window across calls: [its number, blocks touched
    in it so far, their highest count]."""
    n_win = bounds.shape[0] - 1
    end = start + blocks.shape[0]
    w, m, max_c = state[0], state[1], state[2]
    while w < n_win:
        for t in range(max(bounds[w], start), min(bounds[w + 1], end)):
            b = blocks[t - start]
            if counts[b] == 0:
                touched[m] = b
                m += 1
            counts[b] += 1
            if counts[b] > max_c:
                max_c = counts[b]
        if bounds[w + 1] > end:   # the window goes on in the next chunk
            break
        n_distinct[w] = m
        if m > 0:
            _select_top_k(counts, touched, ties, m, max_c, k, top[w], top_counts[w])
        for i in range(m):
            counts[touched[i]] = 0
        w, m, max_c = w + 1, 0, 0
    state[0], state[1], state[2] = w, m, max_c


@nb.njit(cache=True, nogil=True)
def _select_top_k(counts, touched, ties, m, max_c, k, top, top_counts):
    """The top ``k`` of the ``m`` blocks ``touched`` in a window (``counts``: their accesses
    in it, the highest ``max_c``) into ``top`` / ``top_counts``, hottest first.
    Selection in O(m) instead of sorting the window: find the count c* of the k-th hottest
    block from a histogram of counts; keep every block hotter than c*, and among the blocks at
    exactly c* the lowest ids (the tie rule), via np.partition."""
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
    n_unique = counts.shape[0]
    keys = np.empty(kk, np.int64)
    for j in range(kk):
        keys[j] = (max_c - counts[chosen[j]]) * n_unique + chosen[j]
    order = np.argsort(keys)
    for j in range(kk):
        b = chosen[order[j]]
        top[j] = b
        top_counts[j] = counts[b]


class WindowTopK:
    """``window_top_k`` of an access stream fed a chunk at a time (``add``, in order): state
    per block (its count in the open window) and per window, none per access."""

    def __init__(self, bounds, n_unique: int, k: int):
        bounds = np.ascontiguousarray(bounds, dtype=np.int64)
        if k < 1:
            raise ValueError("k must be >= 1")
        if bounds.shape[0] < 1 or np.any(np.diff(bounds) < 0):
            raise ValueError("bounds must be non-decreasing")
        n_win = bounds.shape[0] - 1
        self.bounds, self.k = bounds, int(k)
        self.top = np.full((n_win, self.k), -1, np.int64)
        self.top_counts = np.zeros((n_win, self.k), np.int64)
        self.n_distinct = np.zeros(n_win, np.int64)
        self.counts = np.zeros(int(n_unique), np.int32)
        # a window touches at most min(its length, n_unique) blocks: size the scratch lists by
        # that, not by the whole trace (2 x 4 bytes per access otherwise)
        cap = min(int(np.diff(bounds).max()) if n_win else 0, int(n_unique))
        self.touched = np.empty(cap, np.int32)
        self.ties = np.empty(cap, np.int32)
        self.state = np.zeros(3, np.int64)   # the open window, blocks touched in it, highest count
        self.position = 0                    # accesses seen so far

    def add(self, chunk: tuple) -> None:
        _, _, blocks = chunk
        self.add_accesses(blocks)

    def add_accesses(self, blocks) -> None:
        """The next accesses of the stream (windows are ranges of accesses, not requests)."""
        blocks = ids(blocks)
        _window_top_k_add(blocks, self.position, self.bounds, self.k, self.counts, self.touched, self.ties,
                          self.top, self.top_counts, self.n_distinct, self.state)
        self.position += blocks.shape[0]

    def end_pass(self) -> bool:
        """One pass is all it needs (every window must have ended)."""
        if self.position < self.bounds[-1]:
            raise ValueError(f"the windows span {self.bounds[-1]} accesses, the chunks {self.position}")
        return False

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``window_top_k``'s (top ids padded with -1, their counts, distinct blocks per
        window); frees the per-block scratch."""
        self.counts = self.touched = self.ties = None
        return self.top, self.top_counts, self.n_distinct


def _group_masks(n_unique: int, n_groups: int) -> np.ndarray:
    """Zeroed per-block masks, a bit per group, of the narrowest unsigned type (1 byte per
    block for up to 8 groups)."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if n_groups <= np.iinfo(dtype).bits:
            return np.zeros(n_unique, dtype)
    raise ValueError("more than 64 groups")


@nb.njit(cache=True, nogil=True)
def _group_heat_add(offsets, blocks, group, count_all, group_lo, group_hi, mask, seen,
                    requests, accesses, distinct, reaccesses):
    """Add a chunk of requests (``group``: theirs) to the per-group counts: with ``count_all``
    (the first pass) the requests, accesses and re-accesses of every group (``seen``: per
    block, accessed before), and the distinct blocks of groups ``group_lo`` .. ``group_hi - 1``
    (``mask[b]`` bit g - group_lo: block b accessed by group g)."""
    one = np.uint64(1)
    for r in range(offsets.shape[0] - 1):
        g = group[r]
        counted = group_lo <= g < group_hi
        if count_all:
            requests[g] += 1
            accesses[g] += offsets[r + 1] - offsets[r]
        elif not counted:
            continue
        bit = one << np.uint64(g - group_lo) if counted else one
        for t in range(offsets[r], offsets[r + 1]):
            b = blocks[t]
            if count_all:
                if seen[b]:
                    reaccesses[g] += 1
                else:
                    seen[b] = True
            if counted and mask[b] & bit == 0:
                mask[b] |= bit
                distinct[g] += 1


MAX_GROUPS = 64


class GroupHeat:
    """``heat_by_group`` of a trace fed a chunk of whole requests at a time (``add``, in
    arrival order), for any number of groups. A group's distinct blocks take a bit per block,
    so a pass over the accesses counts them for at most ``groups_per_pass`` groups (<= 64, a
    block's mask is one word); more groups take more passes (``end_pass`` says so), the first
    also counting every group's requests, accesses and re-accesses. State per block (the mask
    and a seen flag), none per access."""

    def __init__(self, trace_offsets, n_unique: int, group, n_groups: int, groups_per_pass: int = MAX_GROUPS):
        if not 0 < groups_per_pass <= MAX_GROUPS:
            raise ValueError(f"groups_per_pass must be in 1..{MAX_GROUPS}")
        if n_groups < 1:
            raise ValueError("n_groups must be >= 1")
        group = np.ascontiguousarray(group, dtype=np.int64)
        if group.shape[0] and (group.min() < 0 or group.max() >= n_groups):
            raise ValueError("group codes must lie in [0, n_groups)")
        self.trace_offsets, self.group, self.n_unique = as_offsets(trace_offsets), group, int(n_unique)
        if group.shape[0] != self.trace_offsets.shape[0] - 1:
            raise ValueError("group needs one code per request")
        self.n_groups, self.groups_per_pass = int(n_groups), int(groups_per_pass)
        self.counts = tuple(np.zeros(self.n_groups, np.int64) for _ in range(4))  # requests, accesses, distinct, re-accesses
        self.seen = np.zeros(self.n_unique, np.bool_)
        self._start_pass(0)

    def _start_pass(self, group_lo: int) -> None:
        self.group_lo, self.group_hi = group_lo, min(group_lo + self.groups_per_pass, self.n_groups)
        self.mask = _group_masks(self.n_unique, self.group_hi - self.group_lo)
        self.cursor = RequestCursor(trace_offsets=self.trace_offsets)

    def add(self, chunk: tuple) -> None:
        first = self.cursor.next_request
        offsets, blocks = self.cursor.take(chunk)
        group = self.group[first:self.cursor.next_request]
        first_pass = self.group_lo == 0
        _group_heat_add(offsets, blocks, group, first_pass, self.group_lo, self.group_hi, self.mask,
                        self.seen, *self.counts)

    def end_pass(self) -> bool:
        """Whether another pass is needed (for the next groups' distinct blocks)."""
        self.cursor.check_done()
        self.seen = np.zeros(0, np.bool_)   # the re-accesses are counted in the first pass
        if self.group_hi == self.n_groups:
            self.mask = None
            return False
        self._start_pass(self.group_hi)
        return True

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(requests, accesses, distinct blocks, re-accesses) per group."""
        if self.mask is not None:
            raise ValueError("GroupHeat: passes still to make")
        return self.counts


@nb.njit(cache=True, nogil=True)
def _count_accesses(offsets, blocks, counts, depth):
    """Add a chunk of requests' accesses to the accesses per block, and give each block seen
    for the first time its depth (its position in that request)."""
    for r in range(offsets.shape[0] - 1):
        s = offsets[r]
        for t in range(s, offsets[r + 1]):
            b = blocks[t]
            counts[b] += 1
            if depth[b] < 0:
                depth[b] = t - s


@nb.njit(cache=True, nogil=True)
def _heat_histograms(counts, depth, max_len):
    """From the accesses and depth per block: the blocks per access count and, per depth, the
    blocks, their accesses and the one-hit blocks (one pass over the blocks)."""
    top = 0
    for b in range(counts.shape[0]):
        top = max(top, counts[b])
    by_count = np.zeros(top + 1, np.int64)
    by_depth = np.zeros((3, max_len), np.int64)  # blocks, accesses, one-hit blocks
    for b in range(counts.shape[0]):
        c = counts[b]
        by_count[c] += 1
        d = depth[b]
        if d >= 0:
            by_depth[0, d] += 1
            by_depth[1, d] += c
            by_depth[2, d] += c == 1
    return by_count, by_depth


class BlockHeat:
    """``block_heat`` of a trace fed a chunk of whole requests at a time (``add``, in arrival
    order): state per block (accesses and depth, 8 bytes), none per access."""

    def __init__(self, n_unique: int, trace_offsets):
        self.cursor = RequestCursor(trace_offsets=trace_offsets)
        if self.cursor.offsets[-1] >= 2**31:
            raise ValueError("block_heat counts in int32: more than 2**31 accesses")
        self.counts = np.zeros(int(n_unique), np.int32)
        self.depth = np.full(int(n_unique), -1, np.int32)

    def add(self, chunk: tuple) -> None:
        _count_accesses(*self.cursor.take(chunk), self.counts, self.depth)

    def end_pass(self) -> bool:
        """One pass is all it needs."""
        self.cursor.check_done()
        return False

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``block_heat``'s (accesses per block, blocks per count, per depth); frees the depths."""
        offsets = self.cursor.offsets
        max_len = int(np.diff(offsets).max()) if offsets.shape[0] > 1 else 0
        by_count, by_depth = _heat_histograms(self.counts, self.depth, max(max_len, 1))
        self.depth = None
        return self.counts, by_count, by_depth


def run_passes(accumulators: list, read_chunks: Callable[[], Iterable[tuple]]) -> list:
    """Feed ``accumulators`` every chunk of a pass over the trace (``read_chunks()``), each
    for as many passes as it asks; their results, in order."""
    active = list(accumulators)
    while active:
        for chunk in read_chunks():
            for accumulator in active:
                accumulator.add(chunk)
        active = [accumulator for accumulator in active if accumulator.end_pass()]
    return [accumulator.result() for accumulator in accumulators]


def run_whole(accumulator, offsets, blocks):
    """The result of an accumulator fed the whole trace as one chunk."""
    return run_passes([accumulator], lambda: [(0, offsets, blocks)])[0]


def block_heat(offsets, blocks, n_unique: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(accesses per block (int32), blocks per access count (index = count), per depth
    [blocks, accesses, one-hit blocks] (3 x longest request)) without a per-access copy."""
    offsets, blocks = as_offsets(offsets), ids(blocks)
    if blocks.shape[0] >= 2**31:
        raise ValueError("block_heat counts in int32: more than 2**31 accesses")
    return run_whole(BlockHeat(n_unique, offsets), offsets, blocks)


def heat_by_group(offsets, blocks, n_unique: int, group, n_groups: int):
    """Per request group (e.g. request type; ``group`` = one code in [0, n_groups) per
    request, n_groups <= 64): (requests, accesses, distinct blocks, re-accesses), where a
    re-access is an access that is not the block's first access in the whole trace. One pass
    (``GroupHeat`` takes any number of groups, in passes)."""
    if not 0 < n_groups <= MAX_GROUPS:
        raise ValueError(f"n_groups must be in 1..{MAX_GROUPS}")
    offsets = as_offsets(offsets)
    return run_whole(GroupHeat(offsets, n_unique, group, n_groups), offsets, ids(blocks))


def first_access_flags(blocks, n_unique: int) -> np.ndarray:
    """True at the first access of each block in ``blocks`` (one flag per access: for
    notebooks and tests; the analyses count re-accesses per block, ``GroupHeat``)."""
    return _first_access(ids(blocks), int(n_unique))


def block_first_position(offsets, blocks, n_unique: int) -> tuple[np.ndarray, np.ndarray]:
    """(position at first appearance, request of first appearance) per block id, int32."""
    if len(offsets) > np.iinfo(np.int32).max:
        raise ValueError("block_first_position returns int32: too many requests")
    return _first_position(as_offsets(offsets), ids(blocks), int(n_unique))


def window_top_k(blocks, bounds, n_unique: int, k: int):
    """Top-``k`` blocks per window; window ``w`` covers accesses ``bounds[w]:bounds[w+1]``.
    Returns (top ids padded with -1, their counts, distinct blocks per window)."""
    windows = WindowTopK(bounds, n_unique, k)
    windows.add_accesses(blocks)
    return windows.result()
