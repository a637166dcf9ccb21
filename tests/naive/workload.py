"""Workload statistics (queries/workload_*.sql, kvctrace/analysis/workload.py)."""
from __future__ import annotations

import math


def naive_window_counts(ts, window_s):
    """Requests per window [w * window_s, (w + 1) * window_s), windows 0 .. floor(max / window_s)."""
    n_windows = int(max(ts) // window_s) + 1
    counts = [0] * n_windows
    for t in ts:
        counts[int(t // window_s)] += 1
    return counts


def naive_index_of_dispersion(ts, window_s):
    """Population variance / mean of counts over the floor(max / window_s) complete windows."""
    n_complete = int(max(ts) // window_s)
    counts = naive_window_counts(ts, window_s)[:n_complete]
    mean = sum(counts) / len(counts)
    var = sum((c - mean) ** 2 for c in counts) / len(counts)
    return var / mean if mean > 0 else None


def naive_quantile_linear(values, q):
    """Quantile with linear interpolation between order statistics (numpy 'linear')."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
