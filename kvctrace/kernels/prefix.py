"""Maximal shared prefixes and session sharing over a chained trace's prefix tree (Numba).

With chained ids (every format kvctrace ingests yields them: an id names a block together
with its whole prefix) the prefix tree (trie) of the requests' block sequences has one node
per block id: a block's parent is the block before it in the request where it first appeared
(-1 at position 0: a root), its depth is that position. The tree is built once, at ingest,
into the store's ``blocks`` table (``kernels/tree.py``); ``prefix_groups`` takes its
``parent`` and ``tokens`` columns, and ``prefix_structure`` (what the analysis runs) finds
the parents itself. Dense first-appearance ids make a parent's id smaller than its
children's, so one pass in id order sees parents first.

The functions read the block ids in chunks of whole requests (a ``Trace.access_chunks``, or
``arrays.one_chunk`` of CSR arrays; a pass is one call): their kernels take one chunk and
the state per block and per request that carries to the next, so nothing per access outlives
a chunk and a store bigger than memory can be analyzed; however the ids are cut, the results
are the same.

* ``n_requests[b]``: requests that contain block b (on a chained trace: requests whose prefix
  passes through node b).
* A *maximal shared prefix* is a node v with ``n_requests[v] >= 2`` where no child keeps all
  of those requests (every child c has ``n_requests[c] < n_requests[v]``): the prefix cannot be
  extended without losing a request. These are the branching nodes of the radix tree.
* ``segment_blocks[v]`` = depth of v - depth of its nearest maximal-shared ancestor (depth + 1
  when it has none): the blocks the group adds beyond the enclosing group.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .arrays import offsets as as_offsets, request_chunks


@nb.njit(cache=True, nogil=True)
def _request_counts(offsets, blocks, first_request, last_req, n_requests, n_ending):
    """One chunk (requests ``first_request`` on) of the pass over the accesses: per block the
    requests containing it and the requests ending at it."""
    for r in range(offsets.shape[0] - 1):
        g = first_request + r
        s = offsets[r]
        e = offsets[r + 1]
        for t in range(s, e):
            b = blocks[t]
            if last_req[b] != g:
                last_req[b] = g
                n_requests[b] += 1
        if e > s:
            n_ending[blocks[e - 1]] += 1


@nb.njit(cache=True, nogil=True)
def _prefix_groups(parent, tokens, n_requests):
    # Per-node arrays are int32 (the wrapper checks that requests and token sums fit): on
    # millions of nodes they are the analysis' largest allocation.
    n_unique = parent.shape[0]
    n_children = np.zeros(n_unique, np.int32)
    kept_by_child = np.zeros(n_unique, np.bool_)  # some child has all of the node's requests
    for b in range(n_unique):
        p = parent[b]
        if p >= 0:
            n_children[p] += 1
            if n_requests[b] >= n_requests[p]:
                kept_by_child[p] = True
    shared = np.zeros(n_unique, np.bool_)
    for b in range(n_unique):
        shared[b] = n_requests[b] >= 2 and not kept_by_child[b]
    cum_tokens = np.zeros(n_unique, np.int32)
    shared_anc = np.full(n_unique, -1, np.int32)   # nearest maximal-shared proper ancestor
    root = np.empty(n_unique, np.int32)
    for b in range(n_unique):           # parents have smaller ids: already filled
        p = parent[b]
        if p < 0:
            cum_tokens[b] = tokens[b]
            root[b] = b
        else:
            cum_tokens[b] = cum_tokens[p] + tokens[b]
            root[b] = root[p]
            shared_anc[b] = p if shared[p] else shared_anc[p]
    return cum_tokens, n_children, shared, shared_anc, root


@nb.njit(cache=True, nogil=True)
def _session_reuse(offsets, blocks, first_request, session, first_sess, prev_sess, known_sess, multi,
                   by_first, by_prev):
    """One chunk (requests ``first_request`` on): classify every re-access (not the block's
    first access) by whether the block's first access / its previous access came from the
    same session, into ``by_first`` / ``by_prev``: index 0 = same session, 1 = other session,
    2 = unknown (either request has no session). Flags in ``multi`` the blocks accessed from at
    least two distinct sessions (requests without a session ignored). Per block, as int32
    session codes: ``first_sess`` and ``prev_sess`` (-2 not seen yet, -1 no session) and
    ``known_sess`` (the first session seen for the block, -1 none)."""
    for r in range(offsets.shape[0] - 1):
        s_cur = session[first_request + r]
        for t in range(offsets[r], offsets[r + 1]):
            b = blocks[t]
            if first_sess[b] == -2:
                first_sess[b] = s_cur
            else:
                f = first_sess[b]
                by_first[2 if (f < 0 or s_cur < 0) else (0 if f == s_cur else 1)] += 1
                p = prev_sess[b]
                by_prev[2 if (p < 0 or s_cur < 0) else (0 if p == s_cur else 1)] += 1
            prev_sess[b] = s_cur
            if s_cur >= 0:
                if known_sess[b] < 0:
                    known_sess[b] = s_cur
                elif known_sess[b] != s_cur:
                    multi[b] = True


@nb.njit(cache=True, nogil=True)
def _flagged_accesses(blocks, flag):
    """The accesses of one chunk to the blocks flagged in ``flag``."""
    n = 0
    for t in range(blocks.shape[0]):
        n += flag[blocks[t]]
    return n


@nb.njit(cache=True, nogil=True)
def _node_counts(offsets, blocks, first_request, seen, input_len, block_size, parent, cum_tokens,
                 n_requests, n_children, last_req, depth_nodes):
    """One chunk (requests ``first_request`` on, ``seen`` ids met before it) of the first pass
    over the accesses: per block the requests containing it and its children; at its first
    appearance (dense first-appearance ids: the id equals ``seen``) its parent (the access
    before it in its request, -1 at position 0: chunks hold whole requests, so the parent is in
    the chunk) and its tokens from the root (``cum_tokens``: the parent appeared first, and
    the block's own tokens count from its first request's ``input_len``); the nodes per depth.
    Returns the ids seen after the chunk."""
    for r in range(offsets.shape[0] - 1):
        g = first_request + r
        s = offsets[r]
        for t in range(s, offsets[r + 1]):
            b = blocks[t]
            if b == seen:  # first appearance
                depth = t - s
                depth_nodes[depth] += 1
                tokens = min(max(input_len[g] - depth * block_size, 0), block_size)
                if depth > 0:
                    p = blocks[t - 1]
                    parent[b] = p
                    n_children[p] += 1
                    cum_tokens[b] = cum_tokens[p] + tokens
                else:
                    parent[b] = -1
                    cum_tokens[b] = tokens
                seen += 1
            if last_req[b] != g:
                last_req[b] = g
                n_requests[b] += 1
    return seen


@nb.njit(cache=True, nogil=True)
def _shared_nodes(parent, n_requests, root):
    """Passes over the blocks in id order (parents have smaller ids, so come first): whether a
    child keeps all of a node's requests; the maximal shared prefixes (shared: >= 2 requests
    and no such child); then each block's nearest shared proper ancestor, written over
    ``parent`` (no longer needed: 4 bytes per block saved), and its root (into ``root``).
    Returns the shared flags and their count."""
    n_unique = parent.shape[0]
    kept = np.zeros(n_unique, np.bool_)
    for b in range(n_unique):
        p = parent[b]
        if p >= 0 and n_requests[b] >= n_requests[p]:
            kept[p] = True
    n_shared = 0
    for b in range(n_unique):  # kept becomes "shared"
        kept[b] = n_requests[b] >= 2 and not kept[b]
        n_shared += kept[b]
    for b in range(n_unique):  # parent becomes the nearest shared proper ancestor (-1 none)
        p = parent[b]
        if p >= 0:
            parent[b] = p if kept[p] else parent[p]  # the parent's entry is done: p < b
            root[b] = root[p]
        else:
            root[b] = b
    return kept, n_shared


@nb.njit(cache=True, nogil=True)
def _group_rows(offsets, blocks, first_request, slot, seen, starting_shared, n_requests, shared, anc_slot,
                node, first_req, depth, anc, n_ending):
    """One chunk (requests ``first_request`` on; ``slot`` shared nodes and ``seen`` ids met
    before it, ``starting_shared`` requests counted) of the last pass over the accesses: per
    shared node (slot = rank in id order, which is the order of first appearance) its id, first
    request and depth, the slot of its nearest shared proper ancestor (-1 none: a top-level
    group) and the requests ending at it; and the requests whose first block is in >= 2
    requests. ``anc_slot`` holds each block's nearest shared ancestor (``_shared_nodes``); a
    shared node's entry becomes its own slot once it appears, which is before any node it
    encloses appears. Returns the three counts after the chunk."""
    for r in range(offsets.shape[0] - 1):
        s = offsets[r]
        e = offsets[r + 1]
        if e == s:
            continue
        if n_requests[blocks[s]] >= 2:
            starting_shared += 1
        for t in range(s, e):
            b = blocks[t]
            if b != seen:  # not a first appearance
                continue
            seen += 1
            if shared[b]:
                a = anc_slot[b]
                anc[slot] = anc_slot[a] if a >= 0 else -1
                anc_slot[b] = slot
                node[slot] = b
                first_req[slot] = first_request + r
                depth[slot] = t - s
                slot += 1
        if shared[blocks[e - 1]]:
            n_ending[anc_slot[blocks[e - 1]]] += 1
    return slot, seen, starting_shared


class PrefixTree:
    """Arrays over block ids (see module docstring); built by ``prefix_groups``."""
    __slots__ = ("parent", "depth", "first_req", "tokens", "cum_tokens", "n_requests",
                 "n_ending", "n_children", "shared", "shared_anc", "root")

    def __init__(self, *arrays):
        for name, value in zip(self.__slots__, arrays):
            setattr(self, name, value)

    @property
    def segment_blocks(self) -> np.ndarray:
        return self.segments(slice(None))[0]

    @property
    def segment_tokens(self) -> np.ndarray:
        return self.segments(slice(None))[1]

    def segments(self, nodes) -> tuple[np.ndarray, np.ndarray]:
        """(segment_blocks, segment_tokens) of ``nodes`` only (an index array or slice), as
        int64; cheaper than the full-length properties when few nodes are wanted."""
        anc = self.shared_anc[nodes]
        has = anc >= 0
        anc = np.maximum(anc, 0)
        depth = self.depth[nodes].astype(np.int64)
        blocks = depth - np.where(has, self.depth[anc], -1)
        tokens = self.cum_tokens[nodes].astype(np.int64) - np.where(has, self.cum_tokens[anc], 0)
        return blocks, tokens


def prefix_groups(access_chunks, n_requests: int, parent, depth, first_req, tokens) -> PrefixTree:
    """The prefix tree of a chained trace with its shared-prefix groups, from the store's
    tree columns (``parent`` -1 at a root, ``depth``, ``first_req``, ``tokens``: one int32
    entry per dense block id, as in the ``blocks`` table) and one pass over the trace's
    accesses (``access_chunks``: a ``Trace.access_chunks``, or ``arrays.one_chunk`` of CSR
    arrays, of ``n_requests`` requests). Every array over the blocks (the reference for
    ``prefix_structure``, which the analysis uses)."""
    columns = [np.ascontiguousarray(c, dtype=np.int32) for c in (parent, depth, first_req, tokens)]
    n_unique = columns[0].shape[0]
    if any(c.shape[0] != n_unique for c in columns):
        raise ValueError("the tree columns need one entry per block")
    limit = np.iinfo(np.int32).max
    longest = int(columns[1].max()) + 1 if n_unique else 0
    max_tokens = int(columns[3].max()) if n_unique else 0
    if max(n_unique, int(n_requests) + 1, longest * max_tokens) >= limit:
        raise ValueError("prefix_groups keeps node arrays as int32: too many blocks, requests or tokens")
    parent, depth, first_req, tokens = columns
    n_requests_of = np.zeros(n_unique, np.int32)
    n_ending = np.zeros(n_unique, np.int32)
    last_req = np.full(n_unique, -1, np.int32)
    for first, offsets, blocks in request_chunks(access_chunks, int(n_requests)):
        _request_counts(offsets, blocks, np.int64(first), last_req, n_requests_of, n_ending)
    del last_req
    cum_tokens, n_children, shared, shared_anc, root = _prefix_groups(parent, tokens, n_requests_of)
    return PrefixTree(parent, depth, first_req, tokens, cum_tokens, n_requests_of, n_ending,
                      n_children, shared, shared_anc, root)


def _value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_counts=True) of small non-negative integers without its sorted
    copy: bincount a slice at a time (it widens int32 input to int64)."""
    counts = np.zeros(int(values.max()) + 1 if values.shape[0] else 0, np.int64)
    for lo in range(0, values.shape[0], 1 << 20):
        piece = np.bincount(values[lo:lo + (1 << 20)])
        counts[:piece.shape[0]] += piece
    present = np.flatnonzero(counts)
    return present, counts[present]


def prefix_structure(access_chunks, offsets, n_unique: int, input_len, block_size: int) -> dict:
    """The prefix tree's shape and its maximal shared prefixes, from a trace of dense
    first-appearance ids, in three passes over its accesses (``access_chunks``: a
    ``Trace.access_chunks``, or ``arrays.one_chunk`` of CSR arrays; chunks of whole requests,
    so the results do not depend on how the accesses are cut) holding about 21 bytes per
    block and nothing per access beyond a chunk (``prefix_groups`` keeps eleven arrays per
    block). ``offsets``: the requests' CSR offsets (for their lengths). Definitions as in the
    module docstring and ``kernels/tree.py`` (a block's tokens count from its first request's
    ``input_len``).

    Returns ``groups`` (one entry per shared node, in id order: ``node``, ``first_req``,
    ``depth``, ``root``, ``anc`` (slot of the nearest shared ancestor, -1 none),
    ``n_requests``, ``n_ending``, ``n_children``, ``cum_tokens``; all int64), the nodes per
    ``depth`` and per ``fanout`` (value, count), ``leaves``, ``branching`` (fan-out >= 2),
    ``max_fanout`` and ``starting_shared`` (requests whose first block is in >= 2 requests)."""
    offsets = as_offsets(offsets)
    n_unique, n_req = int(n_unique), offsets.shape[0] - 1
    if offsets.shape[0] < 1 or input_len.shape[0] != n_req:
        raise ValueError("offsets/input_len do not describe the requests of one CSR trace")
    if max(n_unique, offsets.shape[0]) >= np.iinfo(np.int32).max:
        raise ValueError("prefix_structure keeps int32 per-block counts: too many blocks or requests")
    max_len = int(np.diff(offsets).max()) if n_req else 0
    input_len = np.ascontiguousarray(input_len, np.int64)
    # pass 1: requests, children, parent and tokens from the root per block; nodes per depth
    parent = np.empty(n_unique, np.int32)  # dense ids fit: checked above
    # tokens from the root are at most max_len blocks of block_size: int32 when that fits
    cum_tokens = np.empty(n_unique, np.int32 if max_len * block_size < 2**31 else np.int64)
    n_requests = np.zeros(n_unique, np.int32)
    n_children = np.zeros(n_unique, np.int32)
    last_req = np.full(n_unique, -1, np.int32)
    depth_nodes = np.zeros(max_len + 1, np.int64)
    seen = 0
    for first, chunk_offsets, blocks in request_chunks(access_chunks, n_req):
        seen = _node_counts(chunk_offsets, blocks, np.int64(first), np.int64(seen), input_len, np.int64(block_size),
                            parent, cum_tokens, n_requests, n_children, last_req, depth_nodes)
    del last_req
    # over the blocks: the shared nodes; parent becomes each block's nearest shared ancestor
    root = np.empty(n_unique, np.int32)
    shared, n_shared = _shared_nodes(parent, n_requests, root)
    # pass 2: the groups' rows (the ancestors become slots as the shared nodes appear)
    node, first_req, depth = (np.empty(n_shared, np.int64) for _ in range(3))
    anc = np.full(n_shared, -1, np.int64)
    n_ending = np.zeros(n_shared, np.int64)
    slot = seen = starting = 0
    for first, chunk_offsets, blocks in request_chunks(access_chunks, n_req):
        slot, seen, starting = _group_rows(chunk_offsets, blocks, np.int64(first), np.int64(slot), np.int64(seen),
                                           np.int64(starting), n_requests, shared, parent,
                                           node, first_req, depth, anc, n_ending)
    del parent, shared
    groups = {"node": node, "first_req": first_req, "depth": depth, "root": root[node].astype(np.int64), "anc": anc,
              "n_requests": n_requests[node].astype(np.int64), "n_ending": n_ending,
              "n_children": n_children[node].astype(np.int64), "cum_tokens": cum_tokens[node].astype(np.int64)}
    del cum_tokens, n_requests, root
    present = np.flatnonzero(depth_nodes)
    return {"groups": groups, "depth": (present, depth_nodes[present]), "fanout": _value_counts(n_children),
            "leaves": int(np.count_nonzero(n_children == 0)), "branching": int(np.count_nonzero(n_children >= 2)),
            "max_fanout": int(n_children.max()) if n_unique else None, "starting_shared": int(starting)}


def session_reuse(access_chunks, n_unique: int, session_codes):
    """(by_first, by_previous, multi_session, multi_session_accesses): counts of re-accesses
    [same session, other session, unknown], per block whether >= 2 distinct sessions accessed
    it, and the accesses to such blocks, in two passes over the accesses (``access_chunks``: a
    ``Trace.access_chunks``, or ``arrays.one_chunk`` of CSR arrays); ``session_codes`` is one
    integer per request (below 2**31), -1 where the request has no session."""
    codes = np.ascontiguousarray(session_codes)
    if codes.shape[0] and int(codes.max()) >= 2**31 - 1:
        raise ValueError("session codes must be below 2**31 - 1")
    codes = codes.astype(np.int32)
    n_unique = int(n_unique)
    first_sess = np.full(n_unique, -2, np.int32)   # -2: not seen yet; -1: no session
    prev_sess = np.full(n_unique, -2, np.int32)
    known_sess = np.full(n_unique, -1, np.int32)   # first session seen for the block
    multi = np.zeros(n_unique, np.bool_)
    by_first = np.zeros(3, np.int64)
    by_prev = np.zeros(3, np.int64)
    for first, offsets, blocks in request_chunks(access_chunks, codes.shape[0]):
        _session_reuse(offsets, blocks, np.int64(first), codes, first_sess, prev_sess, known_sess, multi,
                       by_first, by_prev)
    del first_sess, prev_sess, known_sess
    # a block is known to be in several sessions only at the end: count its accesses again
    multi_accesses = sum(int(_flagged_accesses(blocks, multi))
                         for _, _, blocks in request_chunks(access_chunks, codes.shape[0]))
    return by_first, by_prev, multi, multi_accesses
