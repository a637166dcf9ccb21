"""Maximal shared prefixes and session sharing over a chained trace's prefix tree (Numba).

With chained ids (every format kvctrace ingests yields them: an id names a block together
with its whole prefix) the prefix tree (trie) of the requests' block sequences has one node
per block id: a block's parent is the block before it in the request where it first appeared
(-1 at position 0: a root), its depth is that position. The tree is built once, at ingest,
into the store's ``blocks`` table (``kernels/tree.py``); the functions here take its
``parent`` and ``tokens`` columns. Dense first-appearance ids make a parent's id smaller
than its children's, so one pass in id order sees parents first.

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


@nb.njit(cache=True)
def _prefix_groups(offsets, blocks, parent, tokens):
    # Per-node arrays are int32 (the wrapper checks that requests and token sums fit): on
    # millions of nodes they are the analysis' largest allocation.
    n_unique = parent.shape[0]
    n_requests = np.zeros(n_unique, np.int32)
    n_ending = np.zeros(n_unique, np.int32)
    last_req = np.full(n_unique, -1, np.int32)
    for r in range(offsets.shape[0] - 1):
        s = offsets[r]
        e = offsets[r + 1]
        for t in range(s, e):
            b = blocks[t]
            if last_req[b] != r:
                last_req[b] = r
                n_requests[b] += 1
        if e > s:
            n_ending[blocks[e - 1]] += 1
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
    return cum_tokens, n_requests, n_ending, n_children, shared, shared_anc, root


@nb.njit(cache=True)
def _session_reuse(offsets, blocks, n_unique, session):
    """Classify every re-access (not the block's first access) by whether the block's first
    access / its previous access came from the same session. Index 0 = same session,
    1 = other session, 2 = unknown (either request has no session). Also flags the blocks
    accessed from at least two distinct sessions (requests without a session ignored)."""
    first_sess = np.full(n_unique, -2, np.int64)   # -2: not seen yet; -1: no session
    prev_sess = np.full(n_unique, -2, np.int64)
    known_sess = np.full(n_unique, -1, np.int64)   # first session seen for the block
    multi = np.zeros(n_unique, np.bool_)
    by_first = np.zeros(3, np.int64)
    by_prev = np.zeros(3, np.int64)
    for r in range(offsets.shape[0] - 1):
        s_cur = session[r]
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
    return by_first, by_prev, multi


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


def prefix_groups(offsets, blocks, parent, depth, first_req, tokens) -> PrefixTree:
    """The prefix tree of a chained trace with its shared-prefix groups, from the store's
    tree columns (``parent`` -1 at a root, ``depth``, ``first_req``, ``tokens``: one int32
    entry per dense block id, as in the ``blocks`` table) and the trace's CSR accesses."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    blocks = np.ascontiguousarray(blocks, dtype=np.int64)
    columns = [np.ascontiguousarray(c, dtype=np.int32) for c in (parent, depth, first_req, tokens)]
    n_unique = columns[0].shape[0]
    if any(c.shape[0] != n_unique for c in columns):
        raise ValueError("the tree columns need one entry per block")
    limit = np.iinfo(np.int32).max
    longest = int(columns[1].max()) + 1 if n_unique else 0
    max_tokens = int(columns[3].max()) if n_unique else 0
    if max(n_unique, offsets.shape[0], longest * max_tokens) >= limit:
        raise ValueError("prefix_groups keeps node arrays as int32: too many blocks, requests or tokens")
    parent, depth, first_req, tokens = columns
    cum_tokens, n_requests, n_ending, n_children, shared, shared_anc, root = _prefix_groups(
        offsets, blocks, parent, tokens)
    return PrefixTree(parent, depth, first_req, tokens, cum_tokens, n_requests, n_ending,
                      n_children, shared, shared_anc, root)


def session_reuse(offsets, blocks, n_unique: int, session_codes):
    """(by_first, by_previous, multi_session): counts of re-accesses [same session, other
    session, unknown], and per block whether >= 2 distinct sessions accessed it;
    ``session_codes`` is one int64 per request, -1 where the request has no session."""
    return _session_reuse(np.ascontiguousarray(offsets, dtype=np.int64),
                          np.ascontiguousarray(blocks, dtype=np.int64), int(n_unique),
                          np.ascontiguousarray(session_codes, dtype=np.int64))
