"""Hotness: access counts, Gini, top shares, hot-set size, first positions, windowed top-k
(kvctrace/kernels/hotness.py, kvctrace/analysis/hotness.py)."""
from __future__ import annotations

import math


def naive_access_counts(blocks):
    counts: dict = {}
    for b in blocks:
        counts[int(b)] = counts.get(int(b), 0) + 1
    return counts


def naive_gini(values):
    """Gini by its definition: mean absolute difference over all ordered pairs / (2 * mean)."""
    n = len(values)
    if n == 0 or sum(values) == 0:
        return 0.0
    mean = sum(values) / n
    return sum(abs(a - b) for a in values for b in values) / (2 * n * n * mean)


def naive_top_share(values, pct):
    """Share of the total held by the ceil(pct/100 * n) largest values (at least one)."""
    s = sorted(values, reverse=True)
    k = max(1, math.ceil(pct / 100 * len(s) - 1e-9))
    return sum(s[:k]) / sum(s)


def naive_hot_set_size(values, q):
    """Fewest values (largest first) whose sum reaches q * total."""
    s = sorted(values, reverse=True)
    total = sum(s)
    acc = 0
    for i, v in enumerate(s):
        acc += v
        if acc >= q * total - 1e-9 * total:
            return i + 1
    return len(s)


def naive_first_positions(offsets, blocks):
    """{block: (position in request at first appearance, request index)}."""
    out: dict = {}
    for r in range(len(offsets) - 1):
        for pos, b in enumerate(blocks[offsets[r]:offsets[r + 1]]):
            out.setdefault(int(b), (pos, r))
    return out


def naive_window_top_k(blocks, bounds, k):
    """Per window: the k blocks with most accesses in it, ties by lower id, as (id, count)."""
    out = []
    for w in range(len(bounds) - 1):
        counts = naive_access_counts(blocks[bounds[w]:bounds[w + 1]])
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(ranked[:k])
    return out
