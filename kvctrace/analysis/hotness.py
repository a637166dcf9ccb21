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
from typing import NamedTuple

import numpy as np
import polars as pl

from ..errors import ConfigError
from ..kernels.hotness import MAX_GROUPS, BlockHeat, GroupHeat, WindowTopK, run_passes
from .access import require_block_ids
from ..results import ResultMixin  # to_json() and the Jupyter rendering of summary()

TOP_PCTS = (0.1, 1.0, 5.0, 10.0, 20.0, 50.0)
HOT_SET_QUANTILES = (0.5, 0.8, 0.9, 0.99)


def _pct_key(p: float) -> str:
    return f"{p:g}".replace(".", "_")


class CountHistogram:
    """Per-block access counts as a histogram: the distinct counts (descending) and how many
    blocks have each. Every statistic below is read from it with integer arithmetic, so none
    sorts or copies the per-block counts (millions) and the results are exact: the same
    integers, and the same floats from them, as from the sorted counts."""

    def __init__(self, by_count: np.ndarray):
        """``by_count[c]``: blocks accessed exactly ``c`` times."""
        present = np.flatnonzero(by_count)
        self.values = present[::-1].astype(np.int64)           # distinct counts, hottest first
        self.blocks = by_count[present][::-1].astype(np.int64)  # blocks with each
        self.rank_end = np.cumsum(self.blocks)                   # last rank (1-based) of each value
        self.access_end = np.cumsum(self.values * self.blocks)   # accesses of the ranks up to there
        self.u = int(self.rank_end[-1]) if self.values.shape[0] else 0
        self.total = int(self.access_end[-1]) if self.values.shape[0] else 0

    @classmethod
    def of(cls, counts) -> "CountHistogram":
        counts = np.asarray(counts)
        return cls(np.bincount(counts) if counts.shape[0] else np.zeros(1, np.int64))

    def hottest_accesses(self, k) -> np.ndarray:
        """Accesses of the ``k`` hottest blocks, for each k (0 <= k <= u)."""
        k = np.asarray(k, dtype=np.int64)
        group = np.searchsorted(self.rank_end, k, side="left")   # the value group holding rank k
        group = np.minimum(group, max(self.values.shape[0] - 1, 0))
        before_blocks = np.where(group > 0, self.rank_end[group - 1], 0)
        before = np.where(group > 0, self.access_end[group - 1], 0)
        return before + (k - before_blocks) * self.values[group]

    def value_at_rank(self, ranks) -> np.ndarray:
        """The count of the block at each rank (1 = hottest)."""
        return self.values[np.searchsorted(self.rank_end, np.asarray(ranks, np.int64), side="left")]

    def top_share(self, pct: float) -> float:
        """Share of accesses held by the max(1, ceil(pct% of U)) hottest blocks."""
        k = max(1, math.ceil(pct / 100.0 * self.u - 1e-9))
        return float(int(self.hottest_accesses(k)) / self.total)

    def hot_set_size(self, q: float) -> int:
        """Fewest hottest blocks whose accesses reach q of all accesses."""
        key = math.ceil(q * self.total - 1e-9 * self.total)
        if key <= 0:
            return 1
        group = int(np.searchsorted(self.access_end, key, side="left"))
        if group == self.values.shape[0]:  # more than every access (q > 1)
            return self.u + 1
        before = int(self.access_end[group - 1]) if group else 0
        before_blocks = int(self.rank_end[group - 1]) if group else 0
        return max(1, before_blocks + -(-(key - before) // int(self.values[group])))

    def gini(self) -> float:
        """``2 sum_i i x_(i) / (U sum x) - (U + 1) / U`` over ascending x_(i): the weighted sum
        exactly, as a Python integer (ranks a+1..a+n of value v add v n (2a + n + 1) / 2)."""
        if self.u == 0 or self.total == 0:
            return 0.0
        weighted, below = 0, 0
        for v, n in zip(self.values[::-1].tolist(), self.blocks[::-1].tolist()):
            weighted += v * n * (2 * below + n + 1) // 2
            below += n
        return float(2.0 * float(weighted) / (self.u * float(self.total)) - (self.u + 1.0) / self.u)

    def _pieces(self, shift_x: float, shift_y: float):
        """(first rank - 1, ln rank - shift_x, ln count - shift_y) over ranks 1..u, a slice at a
        time: no full-length temporaries. ln count comes from one log per distinct count."""
        log_values = np.log(self.values.astype(np.float64)) - shift_y
        for lo in range(0, self.u, _FIT_PIECE):
            hi = min(lo + _FIT_PIECE, self.u)
            first, last = np.searchsorted(self.rank_end, [lo + 1, hi])  # value groups in the slice
            ends = np.minimum(self.rank_end[first:last + 1], hi)
            starts = np.maximum(self.rank_end[first:last + 1] - self.blocks[first:last + 1], lo)
            x = np.log(np.arange(lo + 1, hi + 1, dtype=np.float64))
            x -= shift_x
            yield lo, x, np.repeat(log_values[first:last + 1], ends - starts)

    def zipf_fits(self, max_rank: int) -> tuple[tuple, tuple]:
        """(alpha, r^2) of ln(count) = c - alpha ln(rank) over ranks 1..max_rank, and over
        every rank; (None, None) for fewer than two ranks. Closed-form least squares (np.polyfit's
        SVD is ~10x slower on millions of ranks) from sums in one pass, numerically centred:
        the values are shifted by their means over every rank first (ln rank: lgamma(u+1)/u;
        ln count: from the histogram), so the sums of squares lose no digits to cancellation.
        numpy's pairwise sums keep it deterministic (a BLAS dot product depends on the BLAS
        thread count)."""
        u = self.u
        split = min(max_rank, u)
        shift_x = math.lgamma(u + 1) / u if u else 0.0
        shift_y = float((np.log(self.values.astype(np.float64)) * self.blocks).sum() / u) if u else 0.0
        below, above = [0.0] * 6, [0.0] * 6  # n, sx, sy, sxx, syy, sxy over ranks <= / > split
        for lo, x, y in self._pieces(shift_x, shift_y):
            cut = min(max(split - lo, 0), x.shape[0])
            for part, xs, ys in ((below, x[:cut], y[:cut]), (above, x[cut:], y[cut:])):
                if xs.shape[0]:
                    part[0] += xs.shape[0]
                    part[1] += float(xs.sum())
                    part[2] += float(ys.sum())
                    part[3] += float((xs * xs).sum())
                    part[4] += float((ys * ys).sum())
                    part[5] += float((xs * ys).sum())
        total = [a + b for a, b in zip(below, above)]
        # one distinct count over the range: ln count is constant, r^2 undefined (not noise)
        constant = (split <= int(self.rank_end[0]) if u else True, self.values.shape[0] <= 1)
        return tuple(_line(*sums, constant=flat) if sums[0] >= 2 else (None, None)
                     for sums, flat in zip((below, total), constant))


def _line(n, sx, sy, sxx, syy, sxy, constant: bool = False) -> tuple[float, float | None]:
    """(-slope, r^2) of the least-squares line from raw sums over n points (r^2 None when y
    is ``constant``)."""
    sxx, syy, sxy = sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n
    slope = sxy / sxx
    return -slope, (slope * slope * sxx / syy) if syy > 0 and not constant else None


_FIT_PIECE = 1 << 16  # ranks per slice of the Zipf fit (half a MB of floats: cache-sized)


def top_share(counts_desc: np.ndarray, pct: float) -> float:
    """Share of accesses held by the max(1, ceil(pct% of U)) hottest blocks."""
    return CountHistogram.of(counts_desc).top_share(pct)


def hot_set_size(counts_desc: np.ndarray, q: float) -> int:
    """Fewest hottest blocks whose accesses reach q of all accesses."""
    return CountHistogram.of(counts_desc).hot_set_size(q)


def gini(counts: np.ndarray) -> float:
    return CountHistogram.of(counts).gini()


def zipf_fit(counts_desc: np.ndarray, max_rank: int) -> tuple[float | None, float | None]:
    """(alpha, r^2) of ln(count) = c - alpha ln(rank) over ranks 1..max_rank of the
    descending counts: closed-form least squares (np.polyfit's SVD is ~10x slower on millions
    of ranks), in one fixed-order pass (``kernels.hotness.rank_log_fit``)."""
    if max_rank < 2:
        return None, None
    return CountHistogram.of(np.asarray(counts_desc)[:max_rank]).zipf_fits(max_rank)[1]


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
    # accesses of each block (int32, index = dense block id): kept with the result as the one
    # array; ``per_block`` makes the frame when asked. A block's depth and first request are in
    # the store's blocks table (trace.blocks_table()).
    block_accesses: np.ndarray
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

    @property
    def per_block(self) -> pl.DataFrame:
        """block, accesses (both Int32): one row per distinct block."""
        return pl.DataFrame({"block": np.arange(self.block_accesses.shape[0], dtype=np.int32),
                             "accesses": self.block_accesses})

    def summary(self) -> dict:
        out = {
            "unique_blocks": self.unique_blocks,
            "accesses": self.accesses,
            "mean_accesses_per_block": self.accesses / self.unique_blocks if self.unique_blocks else None,
            "max_accesses_per_block": int(self.block_accesses.max()) if self.unique_blocks else None,
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


class _DriftWindows(NamedTuple):
    edges: np.ndarray          # window w spans [edges[w], edges[w + 1]) seconds
    request_bounds: np.ndarray  # its requests: request_bounds[w] .. request_bounds[w + 1] - 1
    access_bounds: np.ndarray   # its accesses, in the stream
    window_s: float


def _drift_windows(trace, window_s: float | None) -> _DriftWindows:
    duration = trace.duration_s
    if window_s is None:
        window_s = duration / 20.0 if duration / 20.0 > 0 else 1.0  # (a tiny duration underflows)
    if not window_s > 0:
        raise ConfigError(f"window_s={window_s} must be positive", field="window_s")
    # windows [w*window_s, (w+1)*window_s); the last one also holds the request at ts == duration
    n_win = max(1, int(math.ceil(duration / window_s - 1e-12)))
    edges = np.arange(n_win + 1, dtype=np.float64) * window_s
    req_bounds = np.searchsorted(trace.ts, edges, side="left")
    req_bounds[-1] = trace.ts.shape[0]
    return _DriftWindows(edges, req_bounds, trace.offsets[req_bounds], float(window_s))


def _drift(windows: _DriftWindows, top: np.ndarray, n_distinct: np.ndarray, top_k: int) -> pl.DataFrame:
    """The drift frame from each window's top-k blocks (``WindowTopK``)."""
    n_win = top.shape[0]
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
    edges, bounds = windows.edges, windows.access_bounds
    return pl.DataFrame({
        "window": np.arange(n_win, dtype=np.int64), "start_s": edges[:-1], "end_s": edges[1:],
        "requests": np.diff(windows.request_bounds).astype(np.int64),
        "accesses": np.diff(bounds).astype(np.int64), "distinct_blocks": n_distinct,
        "top_k_size": np.minimum(n_distinct, top_k), "jaccard_with_previous": jaccard,
    }).with_columns(pl.col("jaccard_with_previous").fill_nan(None))


def _request_types(trace) -> tuple[pl.Series, np.ndarray] | None:
    """(the distinct request types, sorted, null last; each request's index in them), or
    None when no request has a type."""
    types = trace.request_sql("SELECT type FROM requests ORDER BY req_id")["type"].cast(pl.String)
    if types.null_count() == types.len():
        return None
    names = types.unique().sort(nulls_last=True)        # null (untyped requests) last
    codes = (pl.DataFrame({"type": types})
             .join(pl.DataFrame({"type": names, "code": np.arange(names.len())}),
                   on="type", how="left", nulls_equal=True, maintain_order="left")["code"])
    return names, codes.to_numpy()


class _TypeHeat:
    """Heat by request type as an accumulator for ``_feed`` (a ``GroupHeat`` over the types,
    none for a trace without types). The types are read when it is made: on a trace in memory
    after the other accumulators' scratch is freed, so the query's memory adds nothing to
    their peak. More than ``MAX_GROUPS`` types take a pass per ``MAX_GROUPS`` (a block's mask
    of types is one word; a test lowers it to make a pass per type)."""

    def __init__(self, trace, n_unique: int):
        types = _request_types(trace)
        self.names, self.heat = None, None
        if types is not None:
            self.names = types[0]
            self.heat = GroupHeat(trace.offsets, n_unique, types[1], self.names.len(),
                                  groups_per_pass=max(1, MAX_GROUPS))

    def add(self, chunk) -> None:
        if self.heat is not None:
            self.heat.add(chunk)

    def end_pass(self) -> bool:
        return self.heat is not None and self.heat.end_pass()

    def result(self) -> pl.DataFrame | None:
        """type, requests, accesses, distinct_blocks, reaccesses, reaccess_share (None without types)."""
        if self.heat is None:
            return None
        requests, accesses, distinct, reacc = self.heat.result()
        frame = pl.DataFrame({"type": self.names, "requests": requests, "accesses": accesses,
                              "distinct_blocks": distinct, "reaccesses": reacc})
        return (frame.with_columns(reaccess_share=pl.when(pl.col("accesses") > 0)
                                   .then(pl.col("reaccesses") / pl.col("accesses")))
                .sort(["requests", "type"], descending=[True, False], nulls_last=True))


def _feed(trace, makers: list) -> list:
    """The results of accumulators (``kernels.hotness``; ``makers`` make them) fed the trace's
    accesses for every pass each asks. A trace that is one chunk (in memory: its own arrays)
    feeds them one after another, so each one's per-block scratch is freed before the next is
    made (the peak of calling the kernels in turn); a trace in chunks (a store) feeds each
    chunk to all of them, so that one read of the store serves every accumulator."""
    if trace.in_one_chunk:
        return [run_passes([make()], trace.access_chunks)[0] for make in makers]
    return run_passes([make() for make in makers], trace.access_chunks)


def window_drift(trace, window_s: float | None, top_k: int, n_unique: int) -> tuple[pl.DataFrame, float]:
    """The ``drift`` frame of ``trace`` alone (its windows' distinct blocks and top-``top_k``
    overlap) and the window length: the working set the replay's capacity candidates take."""
    windows = _drift_windows(trace, window_s)
    (top, _, n_distinct), = _feed(trace, [lambda: WindowTopK(windows.access_bounds, n_unique, top_k)])
    return _drift(windows, top, n_distinct, top_k), windows.window_s


def analyze_hotness(trace, *, window_s: float | None = None, top_k: int = 100,
                    lorenz_points: int = 1000) -> HotnessResult:
    """Hotness skew of ``trace`` (definitions in the module docstring).

    The block ids are read a chunk of whole requests at a time (``trace.access_chunks()``)
    into state per block (accesses, depth, the open window's counts, types seen), so a store
    opened in chunks is analyzed without holding its accesses; more than ``MAX_GROUPS``
    request types take a further pass per ``MAX_GROUPS`` types (``_TypeHeat``)."""
    require_block_ids(trace, "the hotness analysis")
    if top_k < 1:
        raise ConfigError(f"top_k={top_k} must be >= 1", field="top_k")
    if lorenz_points < 2:
        raise ConfigError(f"lorenz_points={lorenz_points} must be >= 2", field="lorenz_points")
    n_unique = int(trace.n_unique_blocks)
    windows = _drift_windows(trace, window_s)
    # per-block state only, fed the ids a chunk of requests at a time: a store bigger than
    # memory streams through, a trace in memory is one chunk of its arrays
    (counts, by_count, by_depth), (top, _, n_distinct), heat_by_type = _feed(trace, [
        lambda: BlockHeat(n_unique, trace.offsets),
        lambda: WindowTopK(windows.access_bounds, n_unique, top_k),
        lambda: _TypeHeat(trace, n_unique)])
    heat = CountHistogram(by_count)
    u, total = heat.u, heat.total
    access_histogram = pl.DataFrame({"accesses": heat.values[::-1].copy(), "blocks": heat.blocks[::-1].copy()})

    if u:
        idx = _downsample_index(u, lorenz_points)
        # accesses of the idx coldest blocks = all minus those of the u - idx hottest
        lorenz = pl.DataFrame({"block_share": idx / u, "access_share": (total - heat.hottest_accesses(u - idx)) / total})
        ridx = _downsample_index(u, lorenz_points, log=True)
        ridx = ridx[ridx >= 1]
        rank_frequency = pl.DataFrame({"rank": ridx.astype(np.int64), "accesses": heat.value_at_rank(ridx)})
        top_shares = pl.DataFrame({
            "top_pct": list(TOP_PCTS),
            "blocks": [max(1, math.ceil(p / 100.0 * u - 1e-9)) for p in TOP_PCTS],
            "access_share": [heat.top_share(p) for p in TOP_PCTS]})
        sizes = [heat.hot_set_size(q) for q in HOT_SET_QUANTILES]
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

    one_hit = int(by_count[1]) if by_count.shape[0] > 1 else 0
    n_ge2 = u - one_hit
    (alpha, r2), (alpha_all, _) = heat.zipf_fits(n_ge2)
    d_blocks, d_acc, d_one = by_depth
    keep = np.flatnonzero(d_blocks)
    heat_by_depth = pl.DataFrame({
        "depth": keep.astype(np.int64), "blocks": d_blocks[keep], "accesses": d_acc[keep],
        "accesses_per_block": d_acc[keep] / d_blocks[keep], "one_hit_share": d_one[keep] / d_blocks[keep]})

    return HotnessResult(
        block_accesses=counts, access_histogram=access_histogram, lorenz=lorenz,
        rank_frequency=rank_frequency, top_shares=top_shares, hot_sets=hot_sets,
        drift=_drift(windows, top, n_distinct, top_k), heat_by_depth=heat_by_depth,
        heat_by_type=heat_by_type,
        unique_blocks=u, accesses=total, one_hit_blocks=one_hit,
        gini=heat.gini(), zipf_alpha=alpha, zipf_r2=r2, zipf_fit_ranks=(1, n_ge2),
        zipf_alpha_all_ranks=alpha_all, drift_window_s=windows.window_s, drift_top_k=int(top_k))
