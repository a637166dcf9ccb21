"""The cost frontier of a sweep: memory dollars against the GPU prefill time the cache saves.

A configuration is on the frontier when no other costs no more memory per hour and saves at
least as much prefill GPU time per hour, one of the two strictly (Pareto). Rows with the same
(memory cost, prefill saved) -- the index models of one replay, or policies that hit alike --
are one point, shown by the best-ranked of them.

The knee (docs/replay.md "Cost objective and its knee"): the frontier point with the largest net
saving, GPU dollars saved minus memory dollars per hour. Walking the frontier from the cheapest
point, each step buys more saved prefill for more memory; the knee is where the steps stop
paying for themselves -- past it, the next step's extra memory dollars exceed the GPU dollars
it saves (``marginal`` < 1). Configurations within the tie tolerance of the best net saving
tie and the cheapest of them is the knee, which is also rank 1 of the ``cost`` ranking
(ranking.py: net saving, then memory cost, then prefill saved), so the knee is the
recommendation.
"""
from __future__ import annotations

import numpy as np
import polars as pl

X, Y = "memory_usd_per_hour", "prefill_saved_gpu_s_per_hour"


def pareto_mask(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """True where (cost, value) is not dominated (lower cost and higher value are better);
    of equal points only the first (in the given order) is kept."""
    order = np.lexsort((np.arange(cost.shape[0]), -value, cost))   # cheapest, then most value, then first
    keep = np.zeros(cost.shape[0], bool)
    best = -np.inf
    for i in order:
        if value[i] > best:
            keep[i] = True
            best = value[i]
    return keep


def frontier(table: pl.DataFrame, tolerance: float) -> pl.DataFrame:
    """The frontier rows of a ranked sweep table (``rank`` order = which row stands for equal
    points), cheapest first, with ``marginal`` (GPU $ saved per extra memory $ from the previous
    frontier point; null for the first) and ``knee`` (the cheapest frontier point whose net
    saving is within ``tolerance`` of the largest, relative to that point's GPU dollars saved,
    as the cost ranking's ties). Empty when the table has no prices."""
    from .ranking import within
    if table.height == 0 or X not in table.columns or table[X].null_count():
        return pl.DataFrame()
    t = table.sort("rank")
    keep = pareto_mask(t[X].to_numpy().astype(np.float64), t[Y].to_numpy().astype(np.float64))
    f = t.filter(pl.Series(keep)).sort([X, "rank"])
    saved, mem, net = (f[c].to_numpy().astype(np.float64) for c in ("prefill_saved_usd_per_hour", X, "net_usd_per_hour"))
    with np.errstate(divide="ignore", invalid="ignore"):
        marginal = np.concatenate(([np.nan], np.diff(saved) / np.diff(mem)))
    top = int(np.argmax(net))   # (the first of equal maxima: the cheapest)
    knee = np.zeros(f.height, bool)
    knee[next(i for i in range(f.height) if within(float(net[i]), float(net[top]), tolerance, float(saved[top])))] = True
    return f.with_columns(pl.Series("marginal", marginal).fill_nan(None), pl.Series("knee", knee))
