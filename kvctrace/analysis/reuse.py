"""Block reusability (paper Fig. 1), reuse distance, reuse time and miss-ratio curves.

Definitions (docs/metrics.md "Reuse"), with the readings named where there are two:

* A block access is **seen before** when the same block id was accessed earlier in the trace's
  access stream (an earlier request, or an earlier position of the same request). This is
  exactly "hit in an unlimited block cache" and "finite stack distance".
* Per request, two readings of the hit rate:
  - ``block`` (paper Fig. 1a, "hit rate = blocks seen before / blocks in request"): any block seen
    before counts;
  - ``prefix``: only the longest run of seen-before blocks starting at block 0 counts (the KV
    of a block depends on every earlier token). On chained traces (Mooncake, rechained
    Bailian, hashed token traces) a seen-before block's whole prefix was seen with it, so the
    two readings agree for an unlimited cache; ``prefix_and_block_hits_agree`` checks it.
* Share of requests with hit rate ``≥ x`` (named ``_ge_``) and ``> x`` (``_gt_``), over the
  requests that have at least one block.
* Ideal (unlimited-cache) hit ratio: ``blocks`` = hit accesses / accesses; ``tokens`` = hit
  tokens / tokens covered by blocks, where block ``j < n-1`` holds ``block_size`` tokens and
  the last one ``input_len - (n-1)·block_size`` (clipped to ``[0, block_size]``).
* Stack distance ``d``: distinct other blocks accessed between two accesses of a block (a
  re-access of the most recently used block has ``d = 0``; a first access is cold, infinite).
  An LRU cache of ``C`` blocks, updated on every block access in trace order, hits exactly
  when ``d < C``: ``hit_ratio(C) = #{d < C} / #accesses``, exact for every ``C``.
* Reuse time of a non-cold access: seconds and requests since the previous access of the same
  block (``0`` requests = reused within the same request).
* One-hit blocks: blocks accessed exactly once, as a share of distinct blocks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ..errors import ConfigError, NoBlockIdsError
from ..kernels.reuse import distance_counts, quantiles_from_counts, stack_distances
from ..kernels.reuse_stats import reuse_pass, reuse_seconds_quantiles
from ..kernels.sampling import FixedRateShards, FixedSizeShards, curve_at_sparse, sparse_histogram
from ..results import ResultMixin  # to_json() and the Jupyter rendering of summary()
from ..trace import Trace
from .columns import null_nan

MAX_PLOT_POINTS = 5000


@dataclass(frozen=True)
class ReuseResult(ResultMixin):
    """Everything ``analyze_reuse`` measured. Frames are for tables and charts; the scalars
    and ``summary()`` are for reports and JSON."""
    block_size: int
    n_requests: int
    n_accesses: int
    n_unique_blocks: int
    ideal_hit_ratio_blocks: float
    ideal_hit_ratio_tokens: float
    ideal_prefix_hit_ratio_blocks: float
    ideal_prefix_hit_ratio_tokens: float
    request_hit_rate_mean: float
    request_prefix_hit_rate_mean: float
    request_hit_rate_shares: dict            # {"ge_0_5": .., "gt_0_5": .., ...} block reading
    request_prefix_hit_rate_shares: dict     # same keys, prefix reading
    prefix_and_block_hits_agree: bool
    requests_prefix_differs: int
    requests_without_blocks: int
    one_hit_block_share: float
    cold_accesses: int
    window_s: float
    requests: pl.DataFrame = field(repr=False)        # per request
    hit_rate_cdf: pl.DataFrame = field(repr=False)    # reading, hit_rate, cdf (Fig. 1a)
    windows: pl.DataFrame = field(repr=False)         # reuse per time window
    block_time: pl.DataFrame = field(repr=False)      # Fig. 1b, downsampled
    distance_counts: pl.DataFrame = field(repr=False)  # distance, count (finite, nonzero)
    mrc: pl.DataFrame = field(repr=False)             # capacity_blocks, hit_ratio, miss_ratio, unlimited
    reuse_time: pl.DataFrame = field(repr=False)      # quantiles of reuse time
    reuse_time_hist: pl.DataFrame = field(repr=False)  # unit, lo, hi, count (log bins)
    shards: pl.DataFrame | None = field(repr=False, default=None)  # capacity, exact, fixed_rate, fixed_size
    shards_info: dict = field(default_factory=dict)
    # The distances that occur (ascending) and the accesses at or below each: kept sparse, as
    # a full cumulative array has one entry per possible distance (millions).
    _hit_distances: np.ndarray = field(repr=False, default=None)
    _cum_hits: np.ndarray = field(repr=False, default=None)

    def hit_ratio_at(self, capacities) -> np.ndarray:
        """Exact block-LRU hit ratio at each capacity (blocks): share of accesses with d < C."""
        caps = np.asarray(capacities, dtype=np.int64)
        if self.n_accesses == 0:
            return np.zeros(caps.shape, np.float64)
        below = np.searchsorted(self._hit_distances, caps, side="left")  # distances < C
        cum = np.concatenate(([0], self._cum_hits))
        return cum[below] / float(self.n_accesses)

    def summary(self) -> dict:
        s = self.request_hit_rate_shares
        p = self.request_prefix_hit_rate_shares
        out = {
            "ideal_hit_ratio_blocks": self.ideal_hit_ratio_blocks,
            "ideal_hit_ratio_tokens": self.ideal_hit_ratio_tokens,
            "ideal_prefix_hit_ratio_blocks": self.ideal_prefix_hit_ratio_blocks,
            "ideal_prefix_hit_ratio_tokens": self.ideal_prefix_hit_ratio_tokens,
            "request_hit_rate_mean": self.request_hit_rate_mean,
            "request_prefix_hit_rate_mean": self.request_prefix_hit_rate_mean,
            "request_hit_rate_share_ge_0_5": s["ge_0_5"],
            "request_hit_rate_share_ge_0_8": s["ge_0_8"],
            "request_hit_rate_share_gt_0_5": s["gt_0_5"],
            "request_hit_rate_share_gt_0_8": s["gt_0_8"],
            "request_prefix_hit_rate_share_ge_0_5": p["ge_0_5"],
            "request_prefix_hit_rate_share_ge_0_8": p["ge_0_8"],
            "request_prefix_hit_rate_share_gt_0_5": p["gt_0_5"],
            "request_prefix_hit_rate_share_gt_0_8": p["gt_0_8"],
            "prefix_and_block_hits_agree": self.prefix_and_block_hits_agree,
            "requests_prefix_differs": self.requests_prefix_differs,
            "requests_without_blocks": self.requests_without_blocks,
            "one_hit_block_share": self.one_hit_block_share,
            "cold_accesses": self.cold_accesses,
            "window_s": self.window_s,
            "hit_rate_definition": "block: blocks seen before / blocks in request; "
                                   "prefix: leading run of seen-before blocks / blocks in request",
            "stack_distance_convention": "distinct other blocks between two accesses; "
                                         "LRU of C blocks hits iff d < C; first access cold",
        }
        q = {row["quantile"]: row for row in self.reuse_time.iter_rows(named=True)}
        for key in (0.5, 0.9, 0.99):
            if key in q:
                tag = f"p{int(round(key * 100))}"
                out[f"reuse_time_s_{tag}"] = q[key]["seconds"]
                out[f"reuse_time_requests_{tag}"] = q[key]["requests"]
        if self.shards_info:
            out["shards"] = dict(self.shards_info)
        return out

    def mrc_points(self) -> list[dict]:
        """The summary's ``mrc`` list: log-spaced capacities and the unlimited point."""
        return [{"capacity_blocks": int(c), "hit_ratio": float(h)}
                for c, h in zip(self.mrc["capacity_blocks"], self.mrc["hit_ratio"])]


def _shares(rates: np.ndarray) -> dict:
    n = rates.shape[0]
    if n == 0:
        return {k: 0.0 for k in ("ge_0_5", "ge_0_8", "gt_0_5", "gt_0_8")}
    return {"ge_0_5": float(np.count_nonzero(rates >= 0.5) / n),
            "ge_0_8": float(np.count_nonzero(rates >= 0.8) / n),
            "gt_0_5": float(np.count_nonzero(rates > 0.5) / n),
            "gt_0_8": float(np.count_nonzero(rates > 0.8) / n)}


def _cdf(values: np.ndarray, reading: str) -> pl.DataFrame:
    if values.shape[0] == 0:
        return pl.DataFrame(schema={"reading": pl.String, "hit_rate": pl.Float64, "cdf": pl.Float64})
    uniq, counts = np.unique(values, return_counts=True)
    return pl.DataFrame({"reading": [reading] * uniq.shape[0], "hit_rate": uniq,
                         "cdf": np.cumsum(counts) / values.shape[0]})


def _nice_window(duration: float, target: int = 60) -> float:
    """A round window length (1, 2 or 5 × 10^k s) giving about ``target`` windows."""
    raw = duration / target
    if not raw > 0:  # no duration (or one so short that the division underflows to 0)
        return 1.0
    base = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if base * m >= raw:
            return base * m
    return base * 10


def log_capacities(n_unique: int, n_points: int = 64) -> np.ndarray:
    """Log-spaced integer capacities from 1 to ``n_unique`` (deduplicated, at least 50 when
    ``n_unique`` allows)."""
    if n_unique <= 0:
        return np.zeros(0, np.int64)
    caps = np.unique(np.round(np.logspace(0, math.log10(max(n_unique, 1)), n_points)).astype(np.int64))
    if caps.shape[0] < 50 and n_unique > caps.shape[0]:
        # small traces: fill with a linear grid so there are still >= 50 points
        caps = np.unique(np.concatenate([caps, np.linspace(1, n_unique, 50).round().astype(np.int64)]))
    return caps


def _log2_bins(counts: np.ndarray) -> np.ndarray:
    """Counts per integer value -> counts per log2 bin (bin 0 = value 0, bin e = [2**(e-1), 2**e))."""
    nz = np.flatnonzero(counts)
    if nz.shape[0] == 0:
        return np.zeros(0, np.int64)
    top = int(nz[-1])
    edges = np.concatenate(([0, 1], 2 ** np.arange(1, max(top, 1).bit_length() + 1)))
    edges = edges[edges <= top]
    return np.add.reduceat(counts[:top + 1], edges)


def _log_hist(bins: np.ndarray, unit: str) -> pl.DataFrame:
    """Frame of log2-bin counts: [0,1), [1,2), [2,4), ..."""
    if bins.shape[0] == 0 or bins.sum() == 0:
        return pl.DataFrame(schema={"unit": pl.String, "lo": pl.Float64, "hi": pl.Float64, "count": pl.Int64})
    edges = np.concatenate(([0.0], 2.0 ** np.arange(0, bins.shape[0])))
    return pl.DataFrame({"unit": [unit] * bins.shape[0], "lo": edges[:-1], "hi": edges[1:],
                         "count": bins.astype(np.int64)})


def analyze_reuse(trace: Trace, *, window_s: float | None = None, mrc_points: int = 64,
                  shards: bool = True, shards_rate: float = 0.01, shards_s_max: int = 8192,
                  plot_points: int = MAX_PLOT_POINTS) -> ReuseResult:
    """Reusability, reuse distance/time and the exact LRU miss-ratio curve of ``trace``.

    ``window_s``: window length for reuse over time (default: a round value giving ~60
    windows). ``shards``: also build SHARDS curves (fixed-rate at ``shards_rate``, fixed-size
    with ``shards_s_max`` tracked blocks) and report their error against the exact curve.
    Raises ``NoBlockIdsError`` for a trace without block ids (lengths-only).

    The block ids are read through ``trace.access_chunks()``, never whole: one pass of the LRU
    stack (``reuse_pass``), usually one more for the exact reuse-time quantiles in seconds and
    one for SHARDS, each keeping state per block, per request or per 64 accesses only, so a
    store opened in chunks is analyzed without loading its accesses (a trace in memory is one
    chunk of its own arrays).
    """
    _check_options(trace, window_s, mrc_points, shards_rate, shards_s_max, plot_points)
    offsets = np.ascontiguousarray(trace.offsets, dtype=np.int64)
    n_req = int(offsets.shape[0] - 1)
    n_acc = trace.n_accesses
    n_unique = _n_unique(trace)
    ts = np.asarray(trace.ts, dtype=np.float64)

    sample = _plot_sample(n_acc, plot_points)
    passed = reuse_pass(offsets, trace.access_chunks, n_unique, trace.input_len, trace.block_size, ts, sample)
    cold = passed["cold"]
    hit_distances, cum_hits = _sparse_counts(passed.pop("distance_counts"))
    requests, hit_ratios = _request_hits(trace, passed, ts, n_acc - cold)
    win = float(window_s) if window_s else _nice_window(trace.duration_s)
    windows = _reuse_windows(requests, ts, win)
    block_time = _block_time(offsets, sample, passed.pop("sample_blocks"), passed.pop("sample_warm"), ts)
    reuse_time, reuse_time_hist = _reuse_times(trace, offsets, n_unique, ts, passed)

    caps = log_capacities(n_unique, mrc_points)
    top = int(hit_distances[-1]) + 1 if hit_distances.shape[0] else 0  # the dense histogram's length
    mrc = _exact_curve(hit_distances, cum_hits, top, n_acc, n_unique, caps)
    dcounts = pl.DataFrame({"distance": hit_distances, "count": np.diff(cum_hits, prepend=0)})
    one_hit = (n_unique - passed["reaccessed_blocks"]) / n_unique if n_unique else 0.0
    shards_frame, shards_info = None, {}
    if shards and n_acc:
        shards_frame, shards_info = _shards(trace, n_unique, (hit_distances, cum_hits, top), n_acc,
                                            shards_rate, shards_s_max, caps)
    return ReuseResult(
        block_size=int(trace.block_size), n_requests=n_req, n_accesses=n_acc, n_unique_blocks=n_unique,
        **hit_ratios, one_hit_block_share=float(one_hit), cold_accesses=int(cold),
        window_s=win, requests=requests, windows=windows, block_time=block_time, distance_counts=dcounts, mrc=mrc,
        reuse_time=reuse_time, reuse_time_hist=reuse_time_hist, shards=shards_frame, shards_info=shards_info,
        _hit_distances=hit_distances, _cum_hits=cum_hits)


def _n_unique(trace: Trace) -> int:
    """The trace's distinct blocks: as recorded, else one past the largest id (a pass over the
    chunks, for a trace built without the count)."""
    if trace.n_unique_blocks:
        return int(trace.n_unique_blocks)
    tops = [int(chunk.blocks.max()) for chunk in trace.access_chunks() if chunk.blocks.shape[0]]
    return max(tops) + 1 if tops else 0


def _sparse_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distances that occur (int64, ascending) and the accesses at or below each (int64):
    a dense histogram has one entry per possible distance (millions), few of them non-zero."""
    nz = np.flatnonzero(counts).astype(np.int64)
    return nz, np.cumsum(counts[nz], dtype=np.int64)


def _hits_below(hit_distances, cum_hits, caps) -> np.ndarray:
    """Accesses with stack distance < C for each capacity C (int64; 0 for C <= 0)."""
    below = np.searchsorted(hit_distances, np.asarray(caps, dtype=np.int64), side="left")
    return np.concatenate(([0], cum_hits))[below]


def _check_options(trace, window_s, mrc_points, shards_rate, shards_s_max, plot_points) -> None:
    if not trace.has_block_ids:
        raise NoBlockIdsError("the trace has no block ids, so block reuse cannot be measured",
                              path=trace.path, hint="only workload statistics apply to a lengths-only trace")
    if window_s is not None and not window_s > 0:
        raise ConfigError(f"window_s={window_s} must be > 0", field="window_s", hint="e.g. 60 (seconds)")
    if not 0 < shards_rate <= 1:
        raise ConfigError(f"shards_rate={shards_rate} must be in (0, 1]", field="shards_rate", hint="e.g. 0.01")
    if shards_s_max < 1:
        raise ConfigError(f"shards_s_max={shards_s_max} must be >= 1", field="shards_s_max", hint="e.g. 8192")
    if mrc_points < 2 or plot_points < 2:
        raise ConfigError("mrc_points and plot_points must be >= 2", field="mrc_points" if mrc_points < 2 else "plot_points")


def _request_hits(trace, passed: dict, ts, n_hits) -> tuple[pl.DataFrame, dict]:
    """The per-request frame (block and prefix readings, blocks and tokens; from ``reuse_pass``)
    and the ``ReuseResult`` fields derived from it: ideal hit ratios, request hit rates and
    their shares and CDF, and whether the two readings agree."""
    hits, prefix_hits = passed.pop("hits"), passed.pop("prefix_hits")
    hit_tok, phit_tok, all_tok = passed.pop("hit_tokens"), passed.pop("prefix_hit_tokens"), passed.pop("tokens")
    req_id, n_blocks = trace.request_columns()
    n_req = int(n_blocks.shape[0])
    n_acc = int(trace.offsets[-1])
    has = n_blocks > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(has, hits / np.maximum(n_blocks, 1), np.nan)
        prate = np.where(has, prefix_hits / np.maximum(n_blocks, 1), np.nan)
    rate_v, prate_v = rate[has], prate[has]
    means = [float(v.mean()) if v.shape[0] else 0.0 for v in (rate_v, prate_v)]
    tok_total = int(all_tok.sum())
    differs = int(np.count_nonzero(hits != prefix_hits))
    shares, pshares = _shares(rate_v), _shares(prate_v)
    cdf = pl.concat([_cdf(rate_v, "block"), _cdf(prate_v, "prefix")])
    del rate_v, prate_v
    requests = pl.DataFrame({
        "req_id": req_id, "ts": ts, "n_blocks": n_blocks,
        "hit_blocks": hits, "prefix_hit_blocks": prefix_hits,
        "hit_rate": null_nan(rate), "prefix_hit_rate": null_nan(prate),
        "tokens": all_tok, "hit_tokens": hit_tok, "prefix_hit_tokens": phit_tok})
    return requests, dict(
        ideal_hit_ratio_blocks=float(n_hits / n_acc) if n_acc else 0.0,
        ideal_hit_ratio_tokens=float(hit_tok.sum() / tok_total) if tok_total else 0.0,
        ideal_prefix_hit_ratio_blocks=float(prefix_hits.sum() / n_acc) if n_acc else 0.0,
        ideal_prefix_hit_ratio_tokens=float(phit_tok.sum() / tok_total) if tok_total else 0.0,
        request_hit_rate_mean=means[0], request_prefix_hit_rate_mean=means[1],
        request_hit_rate_shares=shares, request_prefix_hit_rate_shares=pshares,
        prefix_and_block_hits_agree=differs == 0, requests_prefix_differs=differs,
        requests_without_blocks=int(n_req - np.count_nonzero(has)), hit_rate_cdf=cdf)


def _reuse_windows(requests: pl.DataFrame, ts, win: float) -> pl.DataFrame:
    """Reuse over time: requests, accesses and hits per window of ``win`` seconds."""
    wid = np.floor(ts / win).astype(np.int64) if requests.height else np.zeros(0, np.int64)
    return (requests.with_columns(pl.Series("window", wid))
            .group_by("window").agg(
                pl.len().alias("requests"), pl.col("n_blocks").sum().alias("accesses"),
                pl.col("hit_blocks").cast(pl.Int64).sum().alias("hit_blocks"),
                pl.col("prefix_hit_blocks").cast(pl.Int64).sum().alias("prefix_hit_blocks"),
                pl.col("hit_rate").mean().alias("mean_request_hit_rate"))
            .sort("window")
            .with_columns((pl.col("window") * win).alias("t_start"),
                          ((pl.col("window") + 1) * win).alias("t_end"),
                          (pl.col("accesses") - pl.col("hit_blocks")).alias("new_blocks"),
                          pl.when(pl.col("accesses") > 0)
                          .then(pl.col("hit_blocks") / pl.col("accesses")).alias("hit_ratio"),
                          pl.when(pl.col("accesses") > 0)
                          .then(pl.col("prefix_hit_blocks") / pl.col("accesses")).alias("prefix_hit_ratio")))


def _plot_sample(n_acc: int, plot_points: int) -> np.ndarray:
    """The accesses Fig. 1b plots: evenly strided, at most ``plot_points``."""
    if not n_acc:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, n_acc - 1, min(n_acc, plot_points)).round().astype(np.int64))


def _block_time(offsets, idx, sampled_blocks, reused, ts) -> pl.DataFrame:
    """Fig. 1b: block id vs time at the sampled accesses ``idx`` (their ids, collected by
    ``reuse_pass``), and whether each was reused."""
    req_idx = np.searchsorted(offsets, idx, side="right") - 1
    return pl.DataFrame({"ts": ts[req_idx], "req_id": req_idx, "block": sampled_blocks, "reused": reused})


def _reuse_times(trace, offsets, n_unique, ts, passed: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reuse time of the non-cold accesses in seconds and in requests: quantiles and log2
    histograms, from the counts of ``reuse_pass`` (no float per access); the quantiles in
    seconds are exact, by a radix selection over further passes of the chunks."""
    qs = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
    req_counts = passed.pop("request_counts")
    seconds = reuse_seconds_quantiles(offsets, trace.access_chunks, n_unique, ts, passed.pop("seconds_digits"), qs)
    warm = seconds is not None
    reuse_time = pl.DataFrame({
        "quantile": qs,
        "seconds": seconds if warm else [None] * len(qs),
        "requests": quantiles_from_counts(req_counts, qs) if warm else [None] * len(qs)},
        schema={"quantile": pl.Float64, "seconds": pl.Float64, "requests": pl.Float64})
    hist = pl.concat([_log_hist(passed.pop("seconds_bins"), "seconds"),
                      _log_hist(_log2_bins(req_counts), "requests")])
    return reuse_time, hist


def _exact_curve(hit_distances, cum_hits, top: int, n_acc: int, n_unique: int, caps) -> pl.DataFrame:
    """The exact block-LRU curve at the log-spaced ``caps`` plus the unlimited point (``top``:
    one past the largest finite distance)."""
    unlimited_cap = max(top, 1)   # any C > max distance hits every warm access
    caps_all = np.unique(np.concatenate([caps, [unlimited_cap]])) if n_unique else caps
    hr = _hits_below(hit_distances, cum_hits, caps_all) / float(n_acc) if n_acc else np.zeros(caps_all.shape)
    return pl.DataFrame({"capacity_blocks": caps_all, "hit_ratio": hr, "miss_ratio": 1.0 - hr,
                         "unlimited": caps_all >= unlimited_cap})


def _shards(trace, n_unique, exact_counts, n_acc, rate, s_max, log_caps):
    """SHARDS fixed-rate and fixed-size curves beside the exact one, with their errors; both
    samplers fed each chunk of one pass over the trace's accesses.

    Errors are mean absolute differences of the hit ratio, named by grid: ``mae_linear`` over
    200 evenly spaced capacities from 1 to the largest finite distance + 1 (the FAST'15
    evaluation), ``mae_log`` over the log-spaced capacities of the ``mrc`` frame."""
    fixed_rate, fixed_size = FixedRateShards(n_unique, rate), FixedSizeShards(n_unique, s_max)
    for chunk in trace.access_chunks():
        fixed_rate.feed(chunk.blocks)
        fixed_size.feed(chunk.blocks)
    fr_counts, fr_total, fr_n = fixed_rate.result(sparse=True)
    fs_counts, fs_total, fs_rate, fs_n = fixed_size.result()
    fs_counts = sparse_histogram(fs_counts)  # its running sums without the zeros (8 bytes each)
    hit_distances, cum_hits, top = exact_counts
    top = max(top, 1)
    lin = np.unique(np.linspace(1, top, 200).round().astype(np.int64))
    grid = np.unique(np.concatenate([log_caps, lin]))
    exact = _hits_below(hit_distances, cum_hits, grid) / float(n_acc)
    fr = curve_at_sparse(*fr_counts, fr_total, grid)
    fs = curve_at_sparse(*fs_counts, fs_total, grid)
    on_lin = np.isin(grid, lin)
    on_log = np.isin(grid, log_caps)

    def mae(a, mask):
        return float(np.abs(a[mask] - exact[mask]).mean()) if mask.any() else 0.0

    frame = pl.DataFrame({"capacity_blocks": grid, "exact": exact, "fixed_rate": fr, "fixed_size": fs,
                          "linear_grid": on_lin, "log_grid": on_log})
    info = {"fixed_rate": {"rate": float(rate), "sampled_accesses": int(fr_n),
                           "mae_linear": mae(fr, on_lin), "mae_log": mae(fr, on_log)},
            "fixed_size": {"s_max": int(s_max), "final_rate": float(fs_rate), "sampled_accesses": int(fs_n),
                           "mae_linear": mae(fs, on_lin), "mae_log": mae(fs, on_log)}}
    return frame, info


def exact_mrc(trace: Trace, capacities) -> pl.DataFrame:
    """Exact block-LRU hit ratio of ``trace`` at the given capacities (one stack-distance pass);
    the cross-check for a replayed single-tier LRU."""
    if not trace.has_block_ids:
        raise NoBlockIdsError("the trace has no block ids, so an LRU curve cannot be computed",
                              path=trace.path, hint="use a trace with hash_ids or token_ids")
    dist = stack_distances(trace.blocks, int(trace.n_unique_blocks) or None)
    hit_distances, cum_hits = _sparse_counts(distance_counts(dist)[0])
    del dist
    caps = np.asarray(capacities, dtype=np.int64)
    hr = _hits_below(hit_distances, cum_hits, caps) / float(trace.n_accesses) if trace.n_accesses \
        else np.zeros(caps.shape, np.float64)
    return pl.DataFrame({"capacity_blocks": caps, "hit_ratio": hr})
