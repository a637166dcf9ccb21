"""Prefix divergence (Numba): for every request, the longest prefix it shares with any earlier
request, the earliest request that shares it, and where it diverges.

Block level (every trace with chained ids), one pass over the dense ids: dense ids are numbered
in order of first appearance, so an access is "seen before" exactly when its id is below the
number of ids seen so far. A request's shared prefix is its leading run of seen-before blocks,
which is the reuse analysis's per-request prefix hit (``kernels.reuse.per_request_hits``). With
chained ids a block names its whole prefix, so the earliest request holding the last shared block
is the earliest request sharing the whole run.

Token level (traces that keep their tokens), exact and with memory bounded by the requests,
not the tokens: inside the first unshared block only the earlier requests that hold the same
preceding block can match. Those requests' token windows after that block ("members" of the
block's group) are the distinct child blocks of the block in the prefix tree plus the token
tails past a request's last full block. Sorting each group's members by their tokens puts the
longest common prefix of any two next to each other; union-find over the adjacent common-prefix
lengths, largest first, gives every member the longest prefix it shares with an earlier member
and the earliest member sharing it. Only groups with two or more members are sorted: every
member but a group's first is the divergence window of some request, so at most about two
windows per request are ever read.

Both levels read the block ids in one pass of chunks of whole requests (a
``Trace.access_chunks``, or ``arrays.one_chunk`` of CSR arrays), carrying their state per
block and per request from one chunk to the next: nothing per access outlives a chunk.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .arrays import offsets as as_offsets, one_chunk, request_chunks
from .nrt import no_refcount


@nb.njit(cache=True, nogil=True)
def _block_pass(offsets, blocks, first_request, seen, input_len, block_size, ended,
                shared, last_shared, shared_tok, seen_before, extends):
    """One chunk (requests ``first_request`` on, ``seen`` ids met before it) of the pass over
    the accesses, per request: shared blocks (leading seen-before run), the dense id of the
    last shared block (-1 none), the tokens those blocks hold (a request's last block holds
    ``input_len - (n-1)*block_size`` clipped to [0, block_size], as ``kernels.reuse._hit_tokens``
    counts it), the distinct blocks seen before it (dense ids are numbered in order of first
    appearance, so block b first appeared in the last request whose count is <= b) and whether
    an earlier request ended at its last shared block (``ended``: a flag per block). Returns
    the ids seen after the chunk."""
    for r in range(offsets.shape[0] - 1):
        g = first_request + r
        start = offsets[r]
        n = offsets[r + 1] - start
        seen_before[g] = seen
        run = True
        k = 0
        for i in range(start, offsets[r + 1]):
            b = blocks[i]
            if b >= seen:  # first appearance (ids are first-appearance ordered: b == seen)
                seen += 1
                run = False
            elif run:
                k += 1
        shared[g] = k
        if k > 0:
            last_shared[g] = blocks[start + k - 1]
            last_tok = input_len[g] - (n - 1) * block_size
            last_tok = min(max(last_tok, 0), block_size)
            shared_tok[g] = (k - 1) * block_size + (block_size if k < n else last_tok)
            extends[g] = ended[last_shared[g]]
        if n > 0:
            ended[blocks[start + n - 1]] = True
    return seen


@nb.njit(cache=True, nogil=True)
def _members(offsets, blocks, first_request, seen, tail, n_tokens, block_size, shared,
             group, time, start, length, probe):
    """One chunk (requests ``first_request`` on; ``seen`` ids met and the token tails up to
    member ``tail`` placed before it) of the pass that fills every member window: (group,
    time, request, start, length), block members first (member ``b`` is dense id ``b``, placed
    at its first appearance: its parent in the prefix tree, the block before it there, is its
    group, -1 at position 0) then token tails; and per request the member that is its
    divergence window, or its seen-before partial last block (-1 when the request shares all
    its blocks, the last one full, and has no tail). Returns ``seen`` and ``tail`` after it."""
    for r in range(offsets.shape[0] - 1):
        g = first_request + r
        s = offsets[r]
        e = offsets[r + 1]
        for i in range(s, e):
            b = blocks[i]
            if b == seen:  # first appearance: the block's window in its first request
                group[b] = blocks[i - 1] if i > s else -1
                time[b] = g
                start[b] = (i - s) * block_size
                length[b] = max(0, min(block_size, n_tokens[g] - start[b]))
                seen += 1
        nb_ = e - s
        has_tail = n_tokens[g] > nb_ * block_size
        if has_tail:
            group[tail] = blocks[e - 1] if nb_ > 0 else -1
            time[tail] = g
            start[tail] = nb_ * block_size
            length[tail] = min(block_size, n_tokens[g] - start[tail])
        if shared[g] < nb_:
            probe[g] = blocks[s + shared[g]]
        elif has_tail:
            probe[g] = tail
        elif nb_ > 0 and n_tokens[g] < nb_ * block_size:
            # a seen-before partial last block: its tokens may first have been sent inside a
            # longer block of an earlier request, so it is matched like a divergence window
            probe[g] = blocks[e - 1]
        if has_tail:
            tail += 1
    return seen, tail


@no_refcount
def _before(a, b, group, time, woff, wtok):
    """Member ``a`` sorts before ``b``: by group, then window tokens (a proper prefix first),
    then time, then index (a strict total order)."""
    if group[a] != group[b]:
        return group[a] < group[b]
    la = woff[a + 1] - woff[a]
    lb = woff[b + 1] - woff[b]
    for i in range(min(la, lb)):
        x = wtok[woff[a] + i]
        y = wtok[woff[b] + i]
        if x != y:
            return x < y
    if la != lb:
        return la < lb
    if time[a] != time[b]:
        return time[a] < time[b]
    return a < b


@nb.njit(cache=True, nogil=True)
def _sort_members(group, time, woff, wtok):
    """Bottom-up merge sort of member indices with ``_before`` (stable, O(m log m) compares)."""
    m = group.shape[0]
    src = np.arange(m)
    dst = np.empty(m, np.int64)
    width = 1
    while width < m:
        for lo in range(0, m, 2 * width):
            mid = min(lo + width, m)
            hi = min(lo + 2 * width, m)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if _before(src[j], src[i], group, time, woff, wtok):
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                j += 1
                k += 1
        src, dst = dst, src
        width *= 2
    return src


@nb.njit(cache=True, nogil=True)
def _adjacent_lcp(order, group, woff, wtok):
    """Common-prefix length of each sorted member with the one before it (-1 across groups)."""
    m = order.shape[0]
    lcp = np.full(m, -1, np.int64)
    for p in range(1, m):
        a = order[p - 1]
        b = order[p]
        if group[a] != group[b]:
            continue
        la = woff[a + 1] - woff[a]
        lb = woff[b + 1] - woff[b]
        n = 0
        while n < min(la, lb) and wtok[woff[a] + n] == wtok[woff[b] + n]:
            n += 1
        lcp[p] = n
    return lcp


@nb.njit(cache=True, nogil=True)
def _find(dsu, x):
    root = x
    while dsu[root] != root:
        root = dsu[root]
    while dsu[x] != root:  # path compression
        nxt = dsu[x]
        dsu[x] = root
        x = nxt
    return root


@nb.njit(cache=True, nogil=True)
def _earliest_longest(order, lcp, edges, time):
    """Union-find over sorted positions, merging adjacent pairs by common-prefix length, largest
    first. A component is a maximal run of members sharing at least the current length; only its
    earliest member has no earlier member in it, so when two components merge the later one's
    earliest member has found its longest prefix shared with an earlier member (the current
    length). Its match is the earliest member of the final component at that length (after every
    pair of the same length is merged). Returns, per sorted position, that length (0 when no
    earlier member shares the group) and the matched position (-1 none)."""
    m = order.shape[0]
    dsu = np.arange(m)
    earliest = np.arange(m)  # per component root: sorted position of its earliest member
    best = np.zeros(m, np.int64)
    match = np.full(m, -1, np.int64)
    pending = np.empty(m, np.int64)
    e = 0
    while e < edges.shape[0]:
        value = lcp[edges[e]]
        n_pending = 0
        while e < edges.shape[0] and lcp[edges[e]] == value:
            p = edges[e]
            ra = _find(dsu, p - 1)
            rb = _find(dsu, p)
            ea = earliest[ra]
            eb = earliest[rb]
            ta = time[order[ea]]
            tb = time[order[eb]]
            a_first = ta < tb or (ta == tb and order[ea] < order[eb])
            later = eb if a_first else ea
            best[later] = value
            pending[n_pending] = later
            n_pending += 1
            dsu[rb] = ra
            earliest[ra] = ea if a_first else eb
            e += 1
        for i in range(n_pending):
            match[pending[i]] = earliest[_find(dsu, pending[i])]
    return best, match


@nb.njit(cache=True, nogil=True)
def _gather_windows(tokens, token_offsets, req, start, length):
    """Flat tokens and CSR offsets of the windows ``tokens[req][start:start+length]``."""
    m = req.shape[0]
    woff = np.zeros(m + 1, np.int64)
    for i in range(m):
        woff[i + 1] = woff[i] + length[i]
    out = np.empty(woff[m], tokens.dtype)
    for i in range(m):
        base = token_offsets[req[i]] + start[i]
        for j in range(length[i]):
            out[woff[i] + j] = tokens[base + j]
    return out, woff


@nb.njit(cache=True, nogil=True)
def _scatter_windows(out, woff, pick, wtok, wlen):
    """Copy window ``j`` of ``wtok`` (CSR ``wlen``) to window ``pick[j]`` of ``out`` (CSR ``woff``)."""
    for j in range(pick.shape[0]):
        dst = woff[pick[j]]
        for k in range(wlen[j + 1] - wlen[j]):
            out[dst + k] = wtok[wlen[j] + k]


def scatter_windows(out: np.ndarray, woff: np.ndarray, pick: np.ndarray, wtok: np.ndarray, wlen: np.ndarray) -> None:
    """Place windows gathered for a subset ``pick`` of the requested ones into the full result."""
    _scatter_windows(out, woff, np.ascontiguousarray(pick, np.int64), np.ascontiguousarray(wtok, out.dtype),
                     np.ascontiguousarray(wlen, np.int64))


def block_divergence(access_chunks, n_unique: int, input_len: np.ndarray, block_size: int) -> dict:
    """Block-level divergence of a trace of dense first-appearance ids, in one pass over its
    accesses (``access_chunks``: a ``Trace.access_chunks``, or ``arrays.one_chunk`` of CSR
    arrays; one request per entry of ``input_len``); see ``_block_pass``. ``match_req`` is the
    earliest request holding the last shared block (-1 when none); ``extends`` says whether an
    earlier request's whole block list is the shared prefix (the request continues where that
    one ended, e.g. the next turn of a conversation). Memory per request and a flag per block:
    the block's first request is found from the distinct counts per request."""
    input_len = np.ascontiguousarray(input_len, np.int64)
    n_req = input_len.shape[0]
    shared = np.zeros(n_req, np.int32)  # a count of the request's blocks
    last = np.full(n_req, -1, np.int64)
    shared_tok = np.zeros(n_req, np.int64)
    seen_before = np.zeros(n_req + 1, np.int64)
    extends = np.zeros(n_req, np.bool_)
    ended = np.zeros(max(n_unique, 1), np.bool_)
    seen = 0
    for first, offsets, blocks in request_chunks(access_chunks, n_req):
        if blocks.shape[0] and (int(blocks.min()) < 0 or int(blocks.max()) >= n_unique):
            raise ValueError("blocks must be dense ids below n_unique")
        seen = _block_pass(offsets, blocks, np.int64(first), np.int64(seen), input_len, np.int64(block_size), ended,
                           shared, last, shared_tok, seen_before, extends)
    seen_before[n_req] = seen
    del ended
    match = np.searchsorted(seen_before, last, side="right") - 1  # the request where `last` appeared
    match[last < 0] = -1
    del seen_before
    return {"shared_blocks": shared, "last_shared": last, "shared_tokens": shared_tok, "match_req": match,
            "extends": extends, "n_unique": int(n_unique)}


def token_divergence(access_chunks, offsets: np.ndarray, n_tokens: np.ndarray, block_size: int,
                     block: dict, fetch_windows) -> tuple[np.ndarray, np.ndarray]:
    """Token-exact refinement of ``block_divergence``'s result ``block``: per request, the tokens
    shared with the earliest earlier request sharing the most (all of them when the request's
    prompt is a prefix of earlier content) and that request (-1 none). One pass over the
    accesses (``access_chunks``, as for ``block_divergence``) places the member windows;
    ``offsets``: the requests' CSR offsets (for their lengths).

    ``fetch_windows(req, start, length)`` returns the flat tokens and CSR offsets of the windows
    ``tokens[req[i]][start[i]:start[i]+length[i]]`` (numpy ``gather_windows``, or a store query)."""
    offsets = as_offsets(offsets)
    n_tokens = np.ascontiguousarray(n_tokens, np.int64)
    group, time, start, length, probe = _member_windows(access_chunks, offsets, n_tokens, block_size, block)
    # Only groups with two or more members can give a member an earlier sibling to match.
    sizes = np.bincount(group + 1, minlength=block["n_unique"] + 1)
    kept = np.flatnonzero(sizes[group + 1] >= 2)
    wtok, woff = fetch_windows(time[kept], start[kept], length[kept])
    g, t = group[kept], time[kept]
    order = _sort_members(g, t, woff, wtok)
    lcp = _adjacent_lcp(order, g, woff, wtok)
    edges = np.flatnonzero(lcp >= 0)
    edges = edges[np.argsort(-lcp[edges], kind="stable")]
    best_pos, match_pos = _earliest_longest(order, lcp, edges, t)
    best = np.zeros(group.shape[0], np.int64)
    match_time = np.full(group.shape[0], -1, np.int64)
    best[kept[order]] = best_pos
    has = match_pos >= 0
    match_time[kept[order[has]]] = t[order[match_pos[has]]]

    n_req = offsets.shape[0] - 1
    n_blocks = np.diff(offsets)
    match_req = block["match_req"].copy()
    with_probe = probe >= 0
    extra = np.zeros(n_req, np.int64)
    extra[with_probe] = best[probe[with_probe]]
    # a seen-before partial last block is shared whole; an earlier member holding all its
    # tokens (extra == its length) is the earliest match, else its own first request is
    warm_partial = with_probe & (block["shared_blocks"] == n_blocks) & (n_tokens < n_blocks * block_size)
    shared_tokens = np.where(with_probe & ~warm_partial, block["shared_blocks"].astype(np.int64) * block_size + extra,
                             n_tokens)
    whole = np.zeros(n_req, np.bool_)
    whole[with_probe] = extra[with_probe] == length[probe[with_probe]]
    refined = with_probe & (extra > 0) & (~warm_partial | whole)
    match_req[refined] = match_time[probe[refined]]
    return shared_tokens, match_req


def _member_windows(access_chunks, offsets: np.ndarray, n_tokens: np.ndarray, block_size: int, block: dict):
    """(group, time, start, length) of every member window and the probe member of every
    request (``_members``), filled a chunk of requests at a time."""
    n_req = offsets.shape[0] - 1
    n_unique = block["n_unique"]
    n_blocks = np.diff(offsets)
    m = n_unique + int(np.count_nonzero(n_tokens > n_blocks * block_size))  # blocks, then token tails
    del n_blocks
    group, time, start, length = (np.empty(m, np.int64) for _ in range(4))
    probe = np.full(n_req, -1, np.int64)
    seen, tail = 0, n_unique
    for first, chunk_offsets, blocks in request_chunks(access_chunks, n_req):
        seen, tail = _members(chunk_offsets, blocks, np.int64(first), np.int64(seen), np.int64(tail), n_tokens,
                              np.int64(block_size), block["shared_blocks"], group, time, start, length, probe)
    return group, time, start, length, probe


def gather_windows(tokens: np.ndarray, token_offsets: np.ndarray):
    """A ``fetch_windows`` over in-memory tokens (flat array + CSR offsets per request)."""
    tokens = np.ascontiguousarray(tokens)
    token_offsets = np.ascontiguousarray(token_offsets, np.int64)

    def fetch(req, start, length):
        return _gather_windows(tokens, token_offsets, np.ascontiguousarray(req, np.int64),
                               np.ascontiguousarray(start, np.int64), np.ascontiguousarray(length, np.int64))
    return fetch


def token_prefix(offsets: np.ndarray, blocks: np.ndarray, n_unique: int, block_size: int, tokens: np.ndarray,
                 token_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token-exact (shared tokens, earliest matching request) of every request of a trace whose
    tokens are in memory (flat ``tokens`` with CSR ``token_offsets``); what the store keeps for
    text traces at ingest, so the analysis need not read the tokens back."""
    n_tokens = np.diff(np.asarray(token_offsets, np.int64))
    chunks = one_chunk(offsets, blocks)
    block = block_divergence(chunks, n_unique, n_tokens, block_size)
    return token_divergence(chunks, offsets, n_tokens, block_size, block, gather_windows(tokens, token_offsets))
