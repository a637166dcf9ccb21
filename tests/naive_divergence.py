"""Slow, obviously-correct reference for the prefix-divergence kernels
(kvctrace/kernels/divergence.py): every request compared with every earlier request."""
from __future__ import annotations


def _common_prefix(a, b) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def naive_longest_shared_prefix(sequences):
    """Per request: (longest prefix shared with any earlier request, the earliest earlier request
    sharing that much, -1 when nothing is shared). ``sequences`` are lists of block ids or of
    tokens."""
    out = []
    for r, seq in enumerate(sequences):
        best, match = 0, -1
        for q in range(r):
            n = _common_prefix(seq, sequences[q])
            if n > best:  # strict: the earliest request wins ties
                best, match = n, q
        out.append((best, match))
    return out


def naive_extends(sequences):
    """Per request: does an earlier request's whole (non-empty) sequence equal this request's
    longest shared prefix (the request continues where that one ended)?"""
    shared = naive_longest_shared_prefix(sequences)
    return [k > 0 and any(len(sequences[q]) == k and sequences[q] == seq[:k] for q in range(r))
            for r, (seq, (k, _)) in enumerate(zip(sequences, shared))]


def naive_block_tokens(n_shared_blocks, n_blocks, input_len, block_size):
    """Tokens held by a request's first ``n_shared_blocks`` blocks: full blocks, the request's
    last block holding ``input_len - (n-1)*block_size`` clipped to [0, block_size]."""
    tokens = 0
    for j in range(n_shared_blocks):
        if j < n_blocks - 1:
            tokens += block_size
        else:
            tokens += min(max(input_len - (n_blocks - 1) * block_size, 0), block_size)
    return tokens


def naive_pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / (sxx * syy) ** 0.5 if sxx > 0 and syy > 0 else None
