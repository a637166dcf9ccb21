"""Prefix structure: chained ids, maximal shared prefixes, session reuse
(kvctrace/analysis/prefix.py)."""
from __future__ import annotations


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
