"""Hotness skew: how unevenly accesses fall on blocks, and how the hot set moves over time.

Definitions (all over the blocks the trace accesses, ``U`` = number of distinct blocks,
``x_b`` = accesses of block ``b``, ``A`` = total accesses):
* one-hit blocks: ``x_b == 1``; ``one_hit_block_share`` = one-hit blocks / U.
* Lorenz curve: blocks sorted by ascending ``x_b``; point i = (i / U, accesses of the i least
  accessed blocks / A). Downsampled to at most ``lorenz_points`` + 1 points.
* ``top_<p>pct_access_share``: accesses of the ``max(1, ceil(p/100 * U))`` most-accessed
  blocks / A.
* Gini: ``sum_i sum_j |x_i - x_j| / (2 U^2 mean(x))``, computed as
  ``2 sum_i i x_(i) / (U sum x) - (U + 1) / U`` over ascending ``x_(i)``, i = 1..U.
* Zipf exponent: least-squares slope of ln(accesses) on ln(rank), rank 1 = hottest, every
  rank one point; ``zipf_alpha`` = minus the slope over ranks 1..R2 where R2 = blocks with
  >= 2 accesses (the one-hit tail is a flat plateau, not a power law); ``zipf_alpha_all_ranks``
  fits ranks 1..U. Both fit ranges are in the summary.
* hot-set size for q in 50/80/90/99%: fewest blocks (hottest first) whose accesses reach q*A.
* drift: time windows of ``window_s`` seconds (default: the trace duration / 20); per window
  the top-``top_k`` blocks by accesses in that window (ties: lower id first); Jaccard
  |T_w ∩ T_{w-1}| / |T_w ∪ T_{w-1}| between consecutive non-empty windows.
* heat by depth: a block's depth is its position in the request where it first appeared (its
  depth in the prefix tree); per depth: blocks, accesses, accesses per block, one-hit share.
* heat by type (when requests have a type): per type, accesses, distinct blocks, re-accesses
  (accesses that are not the block's first access in the trace) and their share.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..errors import ConfigError
from ..kernels.hotness import (MAX_GROUPS, block_first_position, first_access_flags,
                               heat_by_group, window_top_k)
from .access import require_block_ids
from ..results import ResultMixin  # to_json() and the Jupyter rendering of summary()

TOP_PCTS = (0.1, 1.0, 5.0, 10.0, 20.0, 50.0)
HOT_SET_QUANTILES = (0.5, 0.8, 0.9, 0.99)


def _pct_key(p: float) -> str:
    return f"{p:g}".replace(".", "_")


def top_share(counts_desc: np.ndarray, pct: float) -> float:
    """Share of accesses held by the max(1, ceil(pct% of U)) hottest blocks."""
    u = counts_desc.shape[0]
    k = max(1, math.ceil(pct / 100.0 * u - 1e-9))
    return float(counts_desc[:k].sum() / counts_desc.sum())


def _cumsum64(x: np.ndarray, lead_zero: bool = False) -> np.ndarray:
    """int64 running sums of ``x`` (optionally after a leading 0), a slice at a time: numpy's
    cumsum of int32 into int64 makes a full-length temporary of its own."""
    out = np.empty(x.shape[0] + lead_zero, np.int64)
    if lead_zero:
        out[0] = 0
    running = 0
    for lo in range(0, x.shape[0], _FIT_PIECE):
        piece = out[lo + lead_zero:lo + lead_zero + _FIT_PIECE]
        np.cumsum(x[lo:lo + _FIT_PIECE], dtype=np.int64, out=piece)
        piece += running
        running = int(piece[-1])
    return out


def hot_set_size(counts_desc: np.ndarray, q: float) -> int:
    """Fewest hottest blocks whose accesses reach q of all accesses."""
    cum = _cumsum64(counts_desc)
    total = cum[-1]
    # an integer key (cum >= x  <=>  cum >= ceil(x)): a float key would make numpy compare
    # against a float64 copy of cum
    key = math.ceil(q * total - 1e-9 * total)
    return int(np.searchsorted(cum, np.int64(key), side="left") + 1)


_FIT_PIECE = 1 << 18  # elements per slice in gini and zipf_fit


def gini(counts: np.ndarray) -> float:
    x = np.sort(np.asarray(counts))   # ascending
    u = x.shape[0]
    total = float(x.sum()) if u else 0.0
    if u == 0 or total == 0:
        return 0.0
    weighted = 0.0   # sum of i * x_i, a slice at a time (no full-length float temporaries)
    for lo in range(0, u, _FIT_PIECE):
        hi = min(lo + _FIT_PIECE, u)
        weighted += float(np.arange(lo + 1, hi + 1, dtype=np.float64) @ x[lo:hi].astype(np.float64))
    return float(2.0 * weighted / (u * total) - (u + 1.0) / u)


def zipf_fit(counts_desc: np.ndarray, max_rank: int, log_counts: np.ndarray | None = None,
             log_ranks: np.ndarray | None = None) -> tuple[float | None, float | None]:
    """(alpha, r^2) of ln(count) = c - alpha ln(rank) over ranks 1..max_rank. ``log_counts``
    and ``log_ranks`` (covering at least max_rank ranks) may be passed to share them."""
    if max_rank < 2:
        return None, None

    def pieces():  # (ln rank, ln count) a slice at a time: no full-length float temporaries
        for lo in range(0, max_rank, _FIT_PIECE):
            hi = min(lo + _FIT_PIECE, max_rank)
            y = (np.log(counts_desc[lo:hi].astype(np.float64)) if log_counts is None
                 else log_counts[lo:hi])
            x = (np.log(np.arange(lo + 1, hi + 1, dtype=np.float64)) if log_ranks is None
                 else log_ranks[lo:hi])
            yield x, y

    # closed-form simple linear regression (np.polyfit's SVD is ~10x slower on millions of
    # ranks), centred in two passes for accuracy
    sx = sy = 0.0
    for x, y in pieces():
        sx += float(x.sum())
        sy += float(y.sum())
    mx, my = sx / max_rank, sy / max_rank
    sxx = syy = sxy = 0.0
    for x, y in pieces():
        xc = x - mx
        yc = y - my
        sxx += float(xc @ xc)
        syy += float(yc @ yc)
        sxy += float(xc @ yc)
    slope = sxy / sxx
    r2 = (slope * slope * sxx / syy) if syy > 0 else None
    return -slope, r2


def _downsample_index(n: int, points: int, log: bool = False) -> np.ndarray:
    """At most points+1 sorted unique indices in [0, n], both ends included."""
    if n <= points:
        return np.arange(n + 1)
    if log:
        idx = np.unique(np.round(np.geomspace(1, n, points)).astype(np.int64))
        return np.unique(np.concatenate([[0], idx]))
    return np.unique(np.round(np.linspace(0, n, points + 1)).astype(np.int64))


@dataclass(frozen=True)
class HotnessResult(ResultMixin):
    # block, accesses (Int32). A block's depth and first request are in the store's blocks
    # table (trace.blocks_table()); not repeated here, as this frame is kept with the result.
    per_block: pl.DataFrame
    access_histogram: pl.DataFrame    # accesses, blocks (how many blocks have that count)
    lorenz: pl.DataFrame              # block_share, access_share (ascending heat)
    rank_frequency: pl.DataFrame      # rank, accesses (log-spaced ranks, for plotting)
    top_shares: pl.DataFrame          # top_pct, blocks, access_share
    hot_sets: pl.DataFrame            # access_share_target, blocks, block_share
    drift: pl.DataFrame               # window, start_s, end_s, requests, accesses, distinct_blocks, top_k_size, jaccard_with_previous
    heat_by_depth: pl.DataFrame       # depth, blocks, accesses, accesses_per_block, one_hit_share
    heat_by_type: pl.DataFrame | None  # type, requests, accesses, distinct_blocks, reaccesses, reaccess_share
    unique_blocks: int
    accesses: int
    one_hit_blocks: int
    gini: float
    zipf_alpha: float | None
    zipf_r2: float | None
    zipf_fit_ranks: tuple[int, int]
    zipf_alpha_all_ranks: float | None
    drift_window_s: float
    drift_top_k: int

    def summary(self) -> dict:
        out = {
            "unique_blocks": self.unique_blocks,
            "accesses": self.accesses,
            "mean_accesses_per_block": self.accesses / self.unique_blocks if self.unique_blocks else None,
            "max_accesses_per_block": int(self.per_block["accesses"].max()) if self.unique_blocks else None,
            "one_hit_blocks": self.one_hit_blocks,
            "one_hit_block_share": self.one_hit_blocks / self.unique_blocks if self.unique_blocks else None,
            "gini": self.gini,
            "zipf_alpha": self.zipf_alpha,
            "zipf_r2": self.zipf_r2,
            "zipf_fit_rank_min": self.zipf_fit_ranks[0],
            "zipf_fit_rank_max": self.zipf_fit_ranks[1],
            "zipf_alpha_all_ranks": self.zipf_alpha_all_ranks,
        }
        for row in self.top_shares.iter_rows(named=True):
            out[f"top_{_pct_key(row['top_pct'])}pct_access_share"] = row["access_share"]
        for row in self.hot_sets.iter_rows(named=True):
            pct = _pct_key(round(row["access_share_target"] * 100, 6))
            out[f"hot_set_blocks_{pct}pct"] = row["blocks"]
            out[f"hot_set_block_share_{pct}pct"] = row["block_share"]
        jac = self.drift["jaccard_with_previous"].drop_nulls()
        out["drift_window_s"] = self.drift_window_s
        out["drift_top_k"] = self.drift_top_k
        out["drift_jaccard_mean"] = float(jac.mean()) if jac.len() else None
        out["drift_jaccard_min"] = float(jac.min()) if jac.len() else None
        return out


def _drift(trace, window_s: float | None, top_k: int, n_unique: int):
    ts = trace.ts
    duration = trace.duration_s
    if window_s is None:
        window_s = duration / 20.0 if duration / 20.0 > 0 else 1.0  # (a tiny duration underflows)
    if not window_s > 0:
        raise ConfigError(f"window_s={window_s} must be positive", field="window_s")
    # windows [w*window_s, (w+1)*window_s); the last one also holds the request at ts == duration
    n_win = max(1, int(math.ceil(duration / window_s - 1e-12)))
    edges = np.arange(n_win + 1, dtype=np.float64) * window_s
    req_bounds = np.searchsorted(ts, edges, side="left")
    req_bounds[-1] = ts.shape[0]
    bounds = trace.offsets[req_bounds]
    top, _, n_distinct = window_top_k(trace.blocks, bounds, n_unique, top_k)
    jaccard = np.full(n_win, np.nan)
    prev = None
    for w in range(n_win):        # per window, not per access
        cur = top[w][top[w] >= 0]
        if cur.shape[0] == 0:
            continue
        if prev is not None:
            inter = np.intersect1d(prev, cur, assume_unique=True).shape[0]
            jaccard[w] = inter / (prev.shape[0] + cur.shape[0] - inter)
        prev = cur
    frame = pl.DataFrame({
        "window": np.arange(n_win, dtype=np.int64), "start_s": edges[:-1], "end_s": edges[1:],
        "requests": np.diff(req_bounds).astype(np.int64),
        "accesses": np.diff(bounds).astype(np.int64), "distinct_blocks": n_distinct,
        "top_k_size": np.minimum(n_distinct, top_k), "jaccard_with_previous": jaccard,
    }).with_columns(pl.col("jaccard_with_previous").fill_nan(None))
    return frame, float(window_s)


def _heat_by_type(trace) -> pl.DataFrame | None:
    types = trace.request_sql("SELECT type FROM requests ORDER BY req_id")["type"].cast(pl.String)
    if types.null_count() == types.len():
        return None
    names = types.unique().sort(nulls_last=True)        # null (untyped requests) last
    if names.len() <= MAX_GROUPS:
        codes = (pl.DataFrame({"type": types})
                 .join(pl.DataFrame({"type": names, "code": np.arange(names.len())}),
                       on="type", how="left", nulls_equal=True, maintain_order="left")["code"])
        requests, accesses, distinct, reacc = heat_by_group(
            trace.offsets, trace.blocks, trace.n_unique_blocks, codes.to_numpy(), names.len())
        frame = pl.DataFrame({"type": names, "requests": requests, "accesses": accesses,
                              "distinct_blocks": distinct, "reaccesses": reacc})
    else:   # many types: vectorised group-by instead of the bitmask kernel
        n_blocks = np.diff(trace.offsets)
        first = first_access_flags(trace.blocks, trace.n_unique_blocks)
        per_access = pl.DataFrame({
            "type": types.gather(np.repeat(np.arange(types.len()), n_blocks)),
            "block": trace.blocks, "reaccess": ~first})
        acc = per_access.group_by("type").agg(
            accesses=pl.len(), distinct_blocks=pl.col("block").n_unique().cast(pl.Int64),
            reaccesses=pl.col("reaccess").sum().cast(pl.Int64))
        req = pl.DataFrame({"type": types}).group_by("type").agg(requests=pl.len().cast(pl.Int64))
        frame = (req.join(acc, on="type", how="left", nulls_equal=True)
                 .with_columns(pl.col("accesses", "distinct_blocks", "reaccesses")
                               .fill_null(0).cast(pl.Int64)))
    return (frame.with_columns(reaccess_share=pl.when(pl.col("accesses") > 0)
                               .then(pl.col("reaccesses") / pl.col("accesses")))
            .sort(["requests", "type"], descending=[True, False], nulls_last=True))


def analyze_hotness(trace, *, window_s: float | None = None, top_k: int = 100,
                    lorenz_points: int = 1000) -> HotnessResult:
    """Hotness skew of ``trace`` (definitions in the module docstring)."""
    require_block_ids(trace, "the hotness analysis")
    if top_k < 1:
        raise ConfigError(f"top_k={top_k} must be >= 1", field="top_k")
    if lorenz_points < 2:
        raise ConfigError(f"lorenz_points={lorenz_points} must be >= 2", field="lorenz_points")
    blocks = trace.blocks
    n_unique = int(trace.n_unique_blocks)
    # int32 per-block arrays (one entry per distinct block, the per_block frame is kept with
    # the result): ids, positions and requests fit; counts do unless there are 2**31 accesses
    count_type = np.int32 if blocks.shape[0] < np.iinfo(np.int32).max else np.int64
    counts = np.bincount(blocks, minlength=n_unique)[:n_unique].astype(count_type)
    counts_desc = counts[counts > 0]    # dense ids: every id < n_unique is accessed
    counts_desc.sort()
    counts_desc = counts_desc[::-1].copy()   # contiguous: cumsums below need no copy of their own
    u = int(counts_desc.shape[0])
    total = int(counts_desc.sum())
    depth, _ = block_first_position(trace.offsets, blocks, n_unique)

    per_block = pl.DataFrame({"block": np.arange(n_unique, dtype=np.int32), "accesses": counts})
    values, nblk = np.unique(counts_desc, return_counts=True)
    access_histogram = pl.DataFrame({"accesses": values.astype(np.int64),
                                     "blocks": nblk.astype(np.int64)})

    if u:
        cum_asc = _cumsum64(counts_desc[::-1], lead_zero=True)
        idx = _downsample_index(u, lorenz_points)
        lorenz = pl.DataFrame({"block_share": idx / u, "access_share": cum_asc[idx] / total})
        del cum_asc  # one float per block: not kept while the rest is computed
        ridx = _downsample_index(u, lorenz_points, log=True)
        ridx = ridx[ridx >= 1]
        rank_frequency = pl.DataFrame({"rank": ridx.astype(np.int64),
                                       "accesses": counts_desc[ridx - 1].astype(np.int64)})
        top_shares = pl.DataFrame({
            "top_pct": list(TOP_PCTS),
            "blocks": [max(1, math.ceil(p / 100.0 * u - 1e-9)) for p in TOP_PCTS],
            "access_share": [top_share(counts_desc, p) for p in TOP_PCTS]})
        sizes = [hot_set_size(counts_desc, q) for q in HOT_SET_QUANTILES]
        hot_sets = pl.DataFrame({"access_share_target": list(HOT_SET_QUANTILES), "blocks": sizes,
                                 "block_share": [s / u for s in sizes]})
    else:
        lorenz = pl.DataFrame({"block_share": [0.0], "access_share": [0.0]})
        rank_frequency = pl.DataFrame(schema={"rank": pl.Int64, "accesses": pl.Int64})
        top_shares = pl.DataFrame({"top_pct": list(TOP_PCTS), "blocks": [0] * len(TOP_PCTS),
                                   "access_share": [None] * len(TOP_PCTS)},
                                  schema_overrides={"access_share": pl.Float64})
        hot_sets = pl.DataFrame({"access_share_target": list(HOT_SET_QUANTILES),
                                 "blocks": [0] * 4, "block_share": [None] * 4},
                                schema_overrides={"block_share": pl.Float64})

    n_ge2 = int((counts_desc >= 2).sum())
    alpha, r2 = zipf_fit(counts_desc, n_ge2)
    alpha_all, _ = zipf_fit(counts_desc, u)

    ndepth = int(depth.max()) + 1 if n_unique else 0
    d_blocks, d_acc, d_one = np.zeros(ndepth, np.int64), np.zeros(ndepth), np.zeros(ndepth)
    for lo in range(0, n_unique, _FIT_PIECE):   # slices: bincount widens its inputs to 8 bytes
        dp, c = depth[lo:lo + _FIT_PIECE], counts[lo:lo + _FIT_PIECE]
        d_blocks += np.bincount(dp, minlength=ndepth)
        d_acc += np.bincount(dp, weights=c, minlength=ndepth)     # integer-valued: exact sums
        d_one += np.bincount(dp, weights=(c == 1), minlength=ndepth)
    keep = d_blocks > 0
    heat_by_depth = pl.DataFrame({
        "depth": np.arange(ndepth, dtype=np.int64)[keep], "blocks": d_blocks[keep].astype(np.int64),
        "accesses": d_acc[keep].astype(np.int64),
        "accesses_per_block": d_acc[keep] / d_blocks[keep],
        "one_hit_share": d_one[keep] / d_blocks[keep]})

    drift, used_window = _drift(trace, window_s, top_k, n_unique)
    return HotnessResult(
        per_block=per_block, access_histogram=access_histogram, lorenz=lorenz,
        rank_frequency=rank_frequency, top_shares=top_shares, hot_sets=hot_sets, drift=drift,
        heat_by_depth=heat_by_depth, heat_by_type=_heat_by_type(trace),
        unique_blocks=u, accesses=total, one_hit_blocks=int((counts_desc == 1).sum()),
        gini=gini(counts_desc), zipf_alpha=alpha, zipf_r2=r2, zipf_fit_ranks=(1, n_ge2),
        zipf_alpha_all_ranks=alpha_all, drift_window_s=used_window, drift_top_k=int(top_k))
