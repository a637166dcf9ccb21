"""Access pattern: sequential runs of consecutive ids, index lookup plans, the runs test
(kvctrace/kernels/runs.py, kvctrace/analysis/access.py)."""
from __future__ import annotations

import math


def naive_sequential_flags(offsets, blocks):
    """Per access: True when the block's left or right neighbour in the same request is its
    id - 1 or id + 1 respectively (i.e. it lies in a run of >= 2 consecutive ids)."""
    flags = []
    for r in range(len(offsets) - 1):
        ids = [int(b) for b in blocks[offsets[r]:offsets[r + 1]]]
        for i, b in enumerate(ids):
            left = i > 0 and ids[i - 1] + 1 == b
            right = i + 1 < len(ids) and ids[i + 1] == b + 1
            flags.append(left or right)
    return flags


def naive_runs(offsets, blocks):
    """Per request, the list of maximal run lengths of consecutive ids, by splitting the id
    list wherever the next id is not previous + 1."""
    out = []
    for r in range(len(offsets) - 1):
        ids = [int(b) for b in blocks[offsets[r]:offsets[r + 1]]]
        lengths = []
        for i, b in enumerate(ids):
            if i > 0 and ids[i - 1] + 1 == b:
                lengths[-1] += 1
            else:
                lengths.append(1)
        out.append(lengths)
    return out


def naive_lookup_plan(offsets, blocks):
    """(n_runs, n_point, n_range) per request from naive_runs."""
    plans = []
    for lengths in naive_runs(offsets, blocks):
        n_point = sum(1 for x in lengths if x == 1)
        n_range = sum(1 for x in lengths if x >= 2)
        plans.append((len(lengths), n_point, n_range))
    return plans


def naive_runs_test(values, min_ids, ties="drop"):
    """Wald–Wolfowitz runs test above/below the median; values equal to the median are
    dropped (ties="drop") or counted as above (ties="upper": the >= median split).
    Returns (status, runs, n1, n2, z, p); status 'too_few' / 'degenerate' / 'tested'."""
    values = [float(v) for v in values]
    if len(values) < min_ids or not values:
        return ("too_few", 0, 0, 0, None, None)
    s = sorted(values)
    m = len(s)
    median = s[m // 2] if m % 2 else (s[m // 2 - 1] + s[m // 2]) / 2
    if ties == "upper":
        signs = ["+" if v >= median else "-" for v in values]
    else:
        signs = ["+" if v > median else "-" for v in values if v != median]
    n1, n2 = signs.count("+"), signs.count("-")
    runs = sum(1 for i, c in enumerate(signs) if i == 0 or signs[i - 1] != c)
    if n1 == 0 or n2 == 0:
        return ("degenerate", runs, n1, n2, None, None)
    n = n1 + n2
    mu = 2 * n1 * n2 / n + 1
    var = 2 * n1 * n2 * (2 * n1 * n2 - n) / (n * n * (n - 1))
    if var <= 0:
        return ("degenerate", runs, n1, n2, None, None)
    z = (runs - mu) / math.sqrt(var)
    # two-sided p from the standard normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2
    p = 2 * (1 - (1 + math.erf(abs(z) / math.sqrt(2))) / 2)
    return ("tested", runs, n1, n2, z, p)
