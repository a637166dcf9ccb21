"""Report and notebook charts: pure functions ``frame -> alt.Chart``.

Every function takes the polars frames an analysis returns (columns named in each docstring),
returns an Altair chart with a title, axis titles that carry their units, and a one-sentence
caption in the chart's ``description`` (the HTML report prints it under the chart; vega-embed
also uses it as the chart's accessible description). The same call displays in Jupyter.

Scale: no chart embeds more than ``MAX_MARKS`` rows. Frames that can be larger are binned or
evenly downsampled here, and the caption says so. Altair's default data transformer refuses
more than 5,000 rows, which keeps this honest.
"""
from __future__ import annotations

import math

import altair as alt
import numpy as np
import polars as pl

from ..formatting import format_value, format_window
from .axes import (coinciding, linear_scale, log_axis, log_scale, merge_coinciding, pow10_axis,
                   spans_powers_of_ten, symlog)

MAX_MARKS = 5000
WIDTH = 460
HEIGHT = 230
# Okabe-Ito palette: distinguishable for colour-blind readers and in greyscale print.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


# ---------------------------------------------------------------- helpers

def _chart(data, title: str, caption: str, width: int = WIDTH, height: int = HEIGHT) -> alt.Chart:
    return alt.Chart(data).properties(title=title, description=caption, width=width, height=height)


def _finish(chart, title: str, caption: str, width: int = WIDTH, height: int = HEIGHT):
    """Title and caption on a layered chart (properties go on the top-level object)."""
    return chart.properties(title=title, description=caption, width=width, height=height)


def evenly(frame: pl.DataFrame, n: int) -> pl.DataFrame:
    """At most ``n`` rows of ``frame``, evenly strided, first and last row kept."""
    if frame.height <= n:
        return frame
    idx = np.unique(np.linspace(0, frame.height - 1, n).round().astype(np.int64))
    return frame[idx]


def _sampled_note(kept: int, total: int, what: str) -> str:
    return f" Downsampled to {kept:,} of {total:,} {what}, evenly spaced." if kept < total else ""


def log2_bins(values: np.ndarray, weights: np.ndarray | None = None) -> pl.DataFrame:
    """Counts of non-negative values in bins [0,1), [1,2), [2,4), [4,8), ... (lo, hi, count)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] == 0:
        return pl.DataFrame(schema={"lo": pl.Float64, "hi": pl.Float64, "count": pl.Float64})
    top = max(float(values.max()), 1.0)
    edges = np.concatenate(([0.0], 2.0 ** np.arange(0, math.ceil(math.log2(top + 1)) + 1)))
    counts, _ = np.histogram(values, bins=edges, weights=weights)
    return pl.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": counts.astype(np.float64)})


def _bars(data, title: str, caption: str, x, y, bound: str, tooltip: list, bar_color: str | None = None,
          **encodings) -> alt.Chart:
    """Histogram bars spanning each bin's ``lo`` to ``hi``: ``x`` encodes ``lo``, ``y`` the
    count; the tooltip opens with the bin's bounds ("<bound> ≥", "<bound> <"). Bars are
    ``bar_color`` unless ``encodings`` colour them by a field."""
    mark = {"color": bar_color} if bar_color else {}
    return _chart(data, title, caption).mark_rect(stroke="white", strokeWidth=0.5, **mark).encode(
        x=x, x2="hi:Q", y=y, **encodings,
        tooltip=[alt.Tooltip("lo:Q", title=f"{bound} ≥"), alt.Tooltip("hi:Q", title=f"{bound} <"), *tooltip])


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


# ---------------------------------------------------------------- reusability (paper Fig. 1)

def hit_rate_cdf(cdf: pl.DataFrame, shares: dict | None = None, per_reading: int = 1000) -> alt.LayerChart:
    """Per-request hit-rate CDF (paper Fig. 1a). ``cdf``: reading, hit_rate, cdf (the
    ``ReuseResult.hit_rate_cdf`` frame). ``shares``: ``{"ge_0_5": .., "ge_0_8": ..}`` of the
    block reading, quoted in the caption."""
    parts, total, kept = [], 0, 0
    for reading in cdf["reading"].unique(maintain_order=True).to_list():
        part = cdf.filter(pl.col("reading") == reading).sort("hit_rate")
        total += part.height
        part = evenly(part, per_reading)
        kept += part.height
        parts.append(part)
    data = pl.concat(parts) if parts else cdf
    series = {p["reading"][0]: np.concatenate([p["hit_rate"].to_numpy() * WIDTH, p["cdf"].to_numpy() * HEIGHT])
              for p in parts if p.height}
    data, merged = merge_coinciding(data, "reading", series, coinciding(series, lambda px: px))
    caption = ("Each line gives, for a hit rate x, the share of requests whose hit rate in an "
               "unlimited cache is at most x; the further right the curve rises, the more reuse.")
    if shares:
        caption += (f" {_pct(shares.get('ge_0_5'))} of requests have hit rate ≥ 0.5 and "
                    f"{_pct(shares.get('ge_0_8'))} have ≥ 0.8 (dashed rules).")
    caption += merged + _sampled_note(kept, total, "distinct hit rates")
    line = alt.Chart(data).mark_line(interpolate="step-after").encode(
        x=alt.X("hit_rate:Q", title="per-request hit rate (fraction of blocks)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("cdf:Q", title="share of requests (CDF)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("reading:N", title="reading", scale=alt.Scale(range=PALETTE), legend=alt.Legend(labelLimit=0)),
        strokeDash=alt.StrokeDash("reading:N", title="reading"),
        tooltip=[alt.Tooltip("reading:N"), alt.Tooltip("hit_rate:Q", format=".3f", title="hit rate"),
                 alt.Tooltip("cdf:Q", format=".3f", title="share of requests ≤")])
    rules = alt.Chart(pl.DataFrame({"x": [0.5, 0.8]})).mark_rule(strokeDash=[4, 4], color="#777").encode(x="x:Q")
    return _finish(alt.layer(line, rules), "Per-request hit rate, unlimited cache (Fig. 1a)", caption)


def block_id_vs_time(block_time: pl.DataFrame) -> alt.Chart:
    """Block id against arrival time (paper Fig. 1b). ``block_time``: ts, req_id, block,
    reused (the ``ReuseResult.block_time`` frame, already downsampled by the analysis)."""
    data = evenly(block_time, MAX_MARKS).with_columns(
        pl.when(pl.col("reused")).then(pl.lit("reused")).otherwise(pl.lit("first access")).alias("access"))
    caption = ("Each dot is one block access: its dense block id (ids are numbered in order of "
               "first appearance) against the request's arrival time; dots below the rising "
               "frontier of new ids are reuses of older blocks.")
    caption += f" Shows {data.height:,} accesses sampled evenly over the trace."
    return _chart(data, "Block id vs time (Fig. 1b)", caption).mark_circle(size=6, opacity=0.6).encode(
        x=alt.X("ts:Q", title="arrival time (s)", scale=linear_scale(), axis=alt.Axis(tickCount=8, labelOverlap=True)),
        y=alt.Y("block:Q", title="block id (first-appearance order)", scale=linear_scale()),
        color=alt.Color("access:N", title="access", scale=alt.Scale(domain=["first access", "reused"],
                                                                    range=[PALETTE[1], PALETTE[0]])),
        tooltip=[alt.Tooltip("ts:Q", format=".1f", title="time (s)"), alt.Tooltip("req_id:Q", title="request"),
                 alt.Tooltip("block:Q", title="block id"), alt.Tooltip("access:N")])


def reuse_over_time(windows: pl.DataFrame) -> alt.Chart:
    """Hit ratio per time window. ``windows``: t_start, t_end, requests, accesses, hit_ratio,
    prefix_hit_ratio (the ``ReuseResult.windows`` frame)."""
    data = evenly(windows.filter(pl.col("accesses") > 0), MAX_MARKS // 2)
    width = float(windows["t_end"][0] - windows["t_start"][0]) if windows.height else 0.0
    long = data.select("t_start", "t_end", "requests", "accesses",
                       pl.col("hit_ratio").alias("block"), pl.col("prefix_hit_ratio").alias("prefix")
                       ).unpivot(index=["t_start", "t_end", "requests", "accesses"],
                                 variable_name="reading", value_name="ratio")
    series = {"block": data["hit_ratio"].to_numpy() * HEIGHT, "prefix": data["prefix_hit_ratio"].to_numpy() * HEIGHT}
    long, merged = merge_coinciding(long, "reading", series, coinciding(series, lambda px: px))
    caption = (f"Share of block accesses in each {format_window(width)} window that hit blocks seen "
               "earlier in the trace (unlimited cache); a rising line means the cache warms up, "
               "dips mark bursts of new content.") + merged
    return _chart(long, "Reuse over time", caption).mark_line(point=True).encode(
        x=alt.X("t_start:Q", title="window start (s)", scale=linear_scale(), axis=alt.Axis(tickCount=8, labelOverlap=True)),
        y=alt.Y("ratio:Q", title="hit ratio (fraction of accesses)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("reading:N", title="reading", scale=alt.Scale(range=PALETTE), legend=alt.Legend(labelLimit=0)),
        strokeDash=alt.StrokeDash("reading:N", title="reading"),
        tooltip=[alt.Tooltip("t_start:Q", title="window start (s)"), alt.Tooltip("reading:N"),
                 alt.Tooltip("ratio:Q", format=".3f", title="hit ratio"),
                 alt.Tooltip("requests:Q"), alt.Tooltip("accesses:Q")])


# ---------------------------------------------------------------- reuse distance and time

def reuse_distance_distribution(distance_counts: pl.DataFrame, cold: int | None = None) -> alt.Chart:
    """Histogram of LRU stack distances in power-of-two bins. ``distance_counts``: distance,
    count (``ReuseResult.distance_counts``; distances 0, 1, 2, ... with non-zero counts)."""
    bins = log2_bins(distance_counts["distance"].to_numpy(),
                     distance_counts["count"].to_numpy().astype(np.float64))
    total = float(bins["count"].sum()) if bins.height else 0.0
    bins = bins.with_columns(share=pl.col("count") / total if total else pl.lit(0.0))
    caption = ("Bars count re-accesses by LRU stack distance (distinct other blocks touched since "
               "the block's previous access), in power-of-two bins; an LRU cache of C blocks hits "
               "every access left of C.")
    if cold is not None:
        caption += f" First accesses (infinite distance, {cold:,}) are not shown."
    return _bars(bins, "Reuse distance distribution", caption, bar_color=PALETTE[0],
                 x=alt.X("lo:Q", scale=alt.Scale(type="symlog"),
                         axis=pow10_axis(bins["hi"].max() if bins.height else 1, "stack distance (blocks, symlog scale)")),
                 y=alt.Y("count:Q", title="re-accesses (count)"), bound="distance",
                 tooltip=[alt.Tooltip("count:Q", format=",.0f", title="re-accesses"),
                          alt.Tooltip("share:Q", format=".1%", title="share")])


def reuse_time_distribution(reuse_time_hist: pl.DataFrame, unit: str = "seconds") -> alt.Chart:
    """Histogram of reuse time in power-of-two bins. ``reuse_time_hist``: unit, lo, hi, count
    (``ReuseResult.reuse_time_hist``); ``unit`` selects ``seconds`` or ``requests``."""
    data = reuse_time_hist.filter(pl.col("unit") == unit)
    total = float(data["count"].sum()) if data.height else 0.0
    data = data.with_columns(share=pl.col("count") / total if total else pl.lit(0.0))
    label = "seconds" if unit == "seconds" else "requests in between"
    what = "seconds" if unit == "seconds" else "requests"
    caption = (f"Bars count re-accesses by the time since the block's previous access, in {what} "
               "(power-of-two bins; the first bin [0, 1) holds reuse within the same "
               f"{'second' if unit == 'seconds' else 'request'}); mass on the left means short-lived reuse.")
    return _bars(data, f"Reuse time ({what})", caption, bar_color=PALETTE[2],
                 x=alt.X("lo:Q", scale=alt.Scale(type="symlog"),
                         axis=pow10_axis(data["hi"].max() if data.height else 1, f"reuse time ({label}, symlog scale)")),
                 y=alt.Y("count:Q", title="re-accesses (count)"), bound=f"reuse time ({what})",
                 tooltip=[alt.Tooltip("count:Q", format=",.0f", title="re-accesses"),
                          alt.Tooltip("share:Q", format=".1%", title="share")])


def miss_ratio_curve(mrc: pl.DataFrame, shards: pl.DataFrame | None = None) -> alt.Chart:
    """Exact block-LRU miss-ratio curve, SHARDS estimates overlaid when given. ``mrc``:
    capacity_blocks, miss_ratio (``ReuseResult.mrc``); ``shards``: capacity_blocks, exact,
    fixed_rate, fixed_size (``ReuseResult.shards``)."""
    curves = [mrc.select(pl.col("capacity_blocks").cast(pl.Float64), pl.col("miss_ratio"),
                         pl.lit("exact").alias("curve"))]
    if shards is not None and shards.height:
        for col, name in (("fixed_rate", "SHARDS fixed-rate"), ("fixed_size", "SHARDS fixed-size")):
            if col in shards.columns:
                curves.append(shards.select(pl.col("capacity_blocks").cast(pl.Float64),
                                            (1.0 - pl.col(col)).alias("miss_ratio"), pl.lit(name).alias("curve")))
    data = pl.concat(curves).filter(pl.col("capacity_blocks") > 0)
    per_curve = MAX_MARKS // max(len(curves), 1)
    parts = [evenly(data.filter(pl.col("curve") == c), per_curve)
             for c in data["curve"].unique(maintain_order=True).to_list()]
    data = pl.concat(parts) if parts else data  # no capacity > 0: a trace without block accesses
    data = data.with_columns(hit_ratio=1.0 - pl.col("miss_ratio"))
    names = data["curve"].unique(maintain_order=True).to_list()    # exact first
    caption = ("Miss ratio of a block-level LRU cache as a function of its capacity, exact for "
               "every capacity from one stack-distance pass; read the capacity needed for a "
               "target miss ratio off the x axis.")
    if len(curves) > 1:
        caption += " Dashed lines are SHARDS sampled estimates of the same curve."
    return _chart(data, "Miss-ratio curve (block LRU)", caption).mark_line().encode(
        x=alt.X("capacity_blocks:Q", scale=log_scale(data["capacity_blocks"]),
                axis=log_axis("cache capacity (blocks, log scale)", data["capacity_blocks"])),
        y=alt.Y("miss_ratio:Q", title="miss ratio (fraction of accesses)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("curve:N", title="curve", scale=alt.Scale(domain=names, range=PALETTE[:len(names)]),
                        legend=alt.Legend(orient="bottom-left", labelLimit=200)),
        strokeDash=alt.condition(alt.datum.curve == "exact", alt.value([1, 0]), alt.value([5, 3])),
        tooltip=[alt.Tooltip("curve:N"), alt.Tooltip("capacity_blocks:Q", format=",.0f", title="capacity (blocks)"),
                 alt.Tooltip("miss_ratio:Q", format=".4f", title="miss ratio"),
                 alt.Tooltip("hit_ratio:Q", format=".4f", title="hit ratio")])


# ---------------------------------------------------------------- access pattern (paper Fig. 2)

def _unit_hist(values: np.ndarray, bins: int = 20) -> pl.DataFrame:
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    return pl.DataFrame({"lo": edges[:-1], "hi": edges[1:], "requests": counts.astype(np.int64)})


def sequential_share_distribution(per_request: pl.DataFrame) -> alt.Chart:
    """Histogram of per-request sequential share. ``per_request``: sequential_share (null for
    empty requests), as in ``AccessResult.per_request``."""
    values = per_request["sequential_share"].drop_nulls().to_numpy()
    data = _unit_hist(values)
    caption = ("Requests binned by the share of their blocks that lie in runs of ≥ 2 consecutive "
               "block ids (0.05-wide bins); mass at 1 means requests read their prefix as one "
               "contiguous range, mass at 0 means scattered point lookups.")
    return _bars(data, "Sequential share per request", caption, bar_color=PALETTE[0],
                 x=alt.X("lo:Q", title="sequential share (fraction of the request's blocks)", scale=alt.Scale(domain=[0, 1])),
                 y=alt.Y("requests:Q", title="requests"), bound="share", tooltip=[alt.Tooltip("requests:Q")])


def run_length_distribution(run_lengths: pl.DataFrame) -> alt.Chart:
    """Run lengths of consecutive block ids. ``run_lengths``: run_length, runs, blocks,
    share_of_runs, share_of_blocks (``AccessResult.run_lengths``)."""
    bins = log2_bins(run_lengths["run_length"].to_numpy(), run_lengths["blocks"].to_numpy().astype(np.float64))
    nruns = log2_bins(run_lengths["run_length"].to_numpy(), run_lengths["runs"].to_numpy().astype(np.float64))
    data = bins.rename({"count": "blocks"}).with_columns(runs=nruns["count"]).filter(pl.col("lo") >= 1)
    total = float(data["blocks"].sum()) if data.height else 0.0
    data = data.with_columns(share_of_blocks=pl.col("blocks") / total if total else pl.lit(0.0))
    caption = ("Blocks by the length of the run of consecutive ids they belong to (power-of-two "
               "bins; length 1 = an isolated, randomly placed block); a range index serves each "
               "run with one scan, a key-value store needs one lookup per block.")
    return _bars(data, "Run-length distribution", caption, bar_color=PALETTE[2],
                 x=alt.X("lo:Q", title="run length (blocks, log scale)", scale=alt.Scale(type="log", base=2)),
                 y=alt.Y("blocks:Q", title="blocks in runs of this length (count)"), bound="length",
                 tooltip=[alt.Tooltip("runs:Q", format=",.0f"), alt.Tooltip("blocks:Q", format=",.0f"),
                          alt.Tooltip("share_of_blocks:Q", format=".1%", title="share of blocks")])


def runs_test_pvalues(per_request: pl.DataFrame) -> alt.Chart:
    """Histogram of Wald–Wolfowitz runs-test p-values (paper Fig. 2). ``per_request``:
    runs_test_p (null when a request was not tested), as in ``AccessResult.per_request``."""
    values = per_request["runs_test_p"].drop_nulls().to_numpy()
    data = _unit_hist(values).with_columns(
        pl.when(pl.col("hi") <= 0.05 + 1e-12).then(pl.lit("p ≤ 0.05: not random"))
        .otherwise(pl.lit("p > 0.05: random")).alias("verdict"))
    caption = (f"Runs-test p-values of the {values.shape[0]:,} requests with enough non-sequential "
               "block ids (0.05-wide bins); p > 0.05 means the order of those ids is consistent "
               "with random placement.")
    return _bars(data, "Runs test on non-sequential ids (Fig. 2)", caption,
                 x=alt.X("lo:Q", title="runs-test p-value (probability)", scale=alt.Scale(domain=[0, 1])),
                 y=alt.Y("requests:Q", title="requests"), bound="p", tooltip=[alt.Tooltip("requests:Q")],
                 color=alt.Color("verdict:N", title="verdict",
                                 scale=alt.Scale(domain=["p ≤ 0.05: not random", "p > 0.05: random"],
                                                 range=[PALETTE[3], PALETTE[0]]),
                                 legend=alt.Legend(labelLimit=0)))


# ---------------------------------------------------------------- hotness

def lorenz_curve(lorenz: pl.DataFrame) -> alt.LayerChart:
    """Lorenz curve of accesses over blocks. ``lorenz``: block_share, access_share
    (``HotnessResult.lorenz``, coldest blocks first)."""
    data = evenly(lorenz, MAX_MARKS - 2)
    caption = ("Cumulative share of accesses held by the coldest x share of blocks; the further "
               "the curve sags below the diagonal (perfect equality), the more a small hot set "
               "dominates.") + _sampled_note(data.height, lorenz.height, "points")
    line = alt.Chart(data).mark_line(color=PALETTE[0]).encode(
        x=alt.X("block_share:Q", title="share of blocks, coldest first", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("access_share:Q", title="share of accesses", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("block_share:Q", format=".3f", title="blocks"),
                 alt.Tooltip("access_share:Q", format=".3f", title="accesses")])
    diag = alt.Chart(pl.DataFrame({"block_share": [0.0, 1.0], "access_share": [0.0, 1.0]})).mark_line(
        color="#999", strokeDash=[4, 4]).encode(x="block_share:Q", y="access_share:Q")
    return _finish(alt.layer(diag, line), "Lorenz curve of block heat", caption, width=360, height=300)


def rank_frequency(rank_frequency: pl.DataFrame, zipf: dict | None = None) -> alt.LayerChart:
    """Rank–frequency plot on log–log axes with the fitted Zipf line. ``rank_frequency``:
    rank, accesses (``HotnessResult.rank_frequency``); ``zipf``: alpha, intercept (natural
    log of accesses at rank 1 on the fitted line), rank_min, rank_max."""
    data = evenly(rank_frequency, MAX_MARKS - 2)
    caption = ("Accesses of each block against its rank (1 = hottest) on log–log axes; a straight "
               "line means Zipf-like popularity, and its slope is the exponent.")
    ranks, counts = data["rank"].to_numpy(), data["accesses"].to_numpy()
    layers = [alt.Chart(data).mark_circle(size=14, color=PALETTE[0]).encode(
        x=alt.X("rank:Q", scale=log_scale(ranks), axis=log_axis("block rank (1 = hottest, log scale)", ranks)),
        y=alt.Y("accesses:Q", scale=log_scale(counts), axis=log_axis("accesses per block (log scale)", counts)),
        tooltip=[alt.Tooltip("rank:Q", format=","), alt.Tooltip("accesses:Q", format=",")])]
    if zipf and zipf.get("alpha") is not None and zipf.get("intercept") is not None:
        r0, r1 = float(zipf.get("rank_min", 1)), float(zipf["rank_max"])
        fit = pl.DataFrame({"rank": [r0, r1]}).with_columns(
            accesses=(zipf["intercept"] - zipf["alpha"] * pl.col("rank").log()).exp())
        layers.append(alt.Chart(fit).mark_line(color=PALETTE[3], strokeDash=[6, 3]).encode(
            x="rank:Q", y="accesses:Q"))
        caption += (f" The dashed line is the least-squares Zipf fit, exponent {zipf['alpha']:.2f}, "
                    f"over ranks {int(r0):,}–{int(r1):,} (blocks accessed at least twice).")
    caption += _sampled_note(data.height, rank_frequency.height, "log-spaced ranks")
    return _finish(alt.layer(*layers), "Rank–frequency (Zipf fit)", caption, width=360, height=300)


def hot_set_drift(drift: pl.DataFrame, top_k: int | None = None) -> alt.Chart:
    """Jaccard similarity of consecutive windows' top-k block sets. ``drift``: start_s, end_s,
    accesses, jaccard_with_previous (``HotnessResult.drift``)."""
    data = evenly(drift.filter(pl.col("jaccard_with_previous").is_not_null()), MAX_MARKS)
    k = f"top-{top_k}" if top_k else "top-k"
    caption = (f"Overlap (Jaccard) of each window's {k} hottest blocks with the previous "
               "window's; values near 1 mean a stable hot set that a small cache can pin, near 0 "
               "a hot set that keeps moving.")
    return _chart(data, "Hot-set drift between windows", caption).mark_line(point=True, color=PALETTE[0]).encode(
        x=alt.X("start_s:Q", title="window start (s)", scale=linear_scale(), axis=alt.Axis(tickCount=8, labelOverlap=True)),
        y=alt.Y("jaccard_with_previous:Q", title="Jaccard with previous window", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("start_s:Q", title="start (s)"), alt.Tooltip("end_s:Q", title="end (s)"),
                 alt.Tooltip("accesses:Q"), alt.Tooltip("jaccard_with_previous:Q", format=".3f", title="Jaccard")])


def heat_by_depth(heat: pl.DataFrame) -> alt.Chart:
    """Mean accesses per block by depth in the prefix tree. ``heat``: depth, blocks, accesses,
    accesses_per_block, one_hit_share (``HotnessResult.heat_by_depth``)."""
    data = evenly(heat, MAX_MARKS)
    caption = ("Mean accesses per block at each position in the prefix (depth 0 = a request's "
               "first block); early blocks shared by many requests (system prompts) are hottest."
               ) + _sampled_note(data.height, heat.height, "depths")
    return _chart(data, "Heat by prefix depth", caption).mark_line(point=True, color=PALETTE[0]).encode(
        x=alt.X("depth:Q", title="depth in prefix tree (block position)", scale=linear_scale()),
        y=alt.Y("accesses_per_block:Q", scale=log_scale(data["accesses_per_block"]),
                axis=log_axis("accesses per block (mean, log scale)", data["accesses_per_block"])),
        tooltip=[alt.Tooltip("depth:Q"), alt.Tooltip("blocks:Q", format=","), alt.Tooltip("accesses:Q", format=","),
                 alt.Tooltip("accesses_per_block:Q", format=".2f", title="accesses per block"),
                 alt.Tooltip("one_hit_share:Q", format=".1%", title="one-hit share")])


# ---------------------------------------------------------------- workload

def arrival_rate(arrivals: pl.DataFrame, window_s: float) -> alt.Chart:
    """Request arrival rate per window. ``arrivals``: start_s, requests, requests_per_s,
    input_tokens_per_s, complete (``WorkloadResult.arrivals``)."""
    data = evenly(arrivals, MAX_MARKS)
    caption = (f"Requests arriving per second, averaged over {format_window(window_s)} windows; peaks well "
               "above the typical level are bursts the cache and the prefill pool must absorb."
               ) + _sampled_note(data.height, arrivals.height, "windows")
    if arrivals.height and not bool(arrivals["complete"][-1]):
        caption += " The last window is partial (the trace ends inside it)."
    return _chart(data, "Arrival rate over time", caption).mark_area(
        line={"color": PALETTE[0]}, color=PALETTE[5], opacity=0.5, interpolate="step-after").encode(
        x=alt.X("start_s:Q", title="time since first request (s)", scale=linear_scale(),
                axis=alt.Axis(tickCount=8, labelOverlap=True)),
        y=alt.Y("requests_per_s:Q", title="arrival rate (requests/s)"),
        tooltip=[alt.Tooltip("start_s:Q", title="window start (s)"), alt.Tooltip("requests:Q"),
                 alt.Tooltip("requests_per_s:Q", format=".2f", title="requests/s"),
                 alt.Tooltip("input_tokens_per_s:Q", format=",.0f", title="input tokens/s")])


def length_distribution(length_quantiles: pl.DataFrame) -> alt.Chart:
    """CDFs of input and output lengths. ``length_quantiles``: prob, input_len, output_len
    (``WorkloadResult.length_quantiles``: the length at each percentile)."""
    data = length_quantiles.unpivot(index="prob", on=["input_len", "output_len"],
                                    variable_name="field", value_name="tokens").with_columns(
        pl.col("field").replace({"input_len": "input (prompt)", "output_len": "output (generated)"}))
    caption = ("Share of requests whose input or output length is at most x tokens (percentiles "
               "0–100 of each); where the input curve sits far right of the output curve, the "
               "workload is prefill-heavy and prefix caching matters most.")
    return _chart(data, "Input and output lengths", caption).mark_line(interpolate="linear").encode(
        x=alt.X("tokens:Q", scale=alt.Scale(type="symlog"),
                axis=pow10_axis(data["tokens"].max() if data.height else 1, "length (tokens, symlog scale)")),
        y=alt.Y("prob:Q", title="share of requests (CDF)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("field:N", title="length", scale=alt.Scale(range=PALETTE), legend=alt.Legend(labelLimit=0)),
        tooltip=[alt.Tooltip("field:N", title="length"), alt.Tooltip("prob:Q", format=".0%", title="percentile"),
                 alt.Tooltip("tokens:Q", format=",.0f", title="tokens")])


def request_types(types: pl.DataFrame, top: int = 25) -> alt.Chart:
    """Requests per type. ``types``: type, requests, share, mean_input_len, mean_output_len
    (``WorkloadResult.types``, most frequent first)."""
    data = types.sort("requests", descending=True).head(top)
    caption = "Requests of each request type, most frequent first, with mean prompt and output lengths in the tooltip."
    if types.height > top:
        caption += f" Shows the {top} most frequent of {types.height:,} types."
    return _chart(data, "Request types", caption, height=max(60, 18 * data.height)).mark_bar(color=PALETTE[0]).encode(
        y=alt.Y("type:N", title="request type", sort="-x"),
        x=alt.X("requests:Q", title="requests"),
        tooltip=[alt.Tooltip("type:N"), alt.Tooltip("requests:Q", format=","),
                 alt.Tooltip("share:Q", format=".1%"),
                 alt.Tooltip("mean_input_len:Q", format=",.0f", title="mean input (tokens)"),
                 alt.Tooltip("mean_output_len:Q", format=",.0f", title="mean output (tokens)")])


def session_sizes(sessions: pl.DataFrame) -> alt.Chart:
    """How many requests (turns) sessions have, in power-of-two bins. ``sessions``:
    session_id, requests (``WorkloadResult.sessions``)."""
    bins = log2_bins(sessions["requests"].to_numpy()).filter(pl.col("lo") >= 1).rename({"count": "sessions"})
    caption = ("Sessions binned by their number of requests (power-of-two bins); long sessions "
               "re-send a growing conversation history, the prefix reuse a cache should keep.")
    return _bars(bins, "Requests per session", caption, bar_color=PALETTE[4],
                 x=alt.X("lo:Q", title="requests in the session (log scale)", scale=alt.Scale(type="log", base=2)),
                 y=alt.Y("sessions:Q", title="sessions (count)"), bound="requests",
                 tooltip=[alt.Tooltip("sessions:Q", format=",.0f")])


# ---------------------------------------------------------------- prefix structure

def prefix_tree_depth(depth_distribution: pl.DataFrame) -> alt.Chart:
    """Prefix-tree nodes (distinct blocks) per depth. ``depth_distribution``: depth, nodes
    (``PrefixResult.depth_distribution``)."""
    data = evenly(depth_distribution, MAX_MARKS)
    caption = ("Distinct blocks at each depth of the prefix tree (depth 0 = first block of a "
               "request); a narrow top and a wide middle mean few shared prompts fanning out into "
               "many private continuations.") + _sampled_note(data.height, depth_distribution.height, "depths")
    return _chart(data, "Prefix-tree width by depth", caption).mark_area(
        color=PALETTE[5], line={"color": PALETTE[0]}, opacity=0.6, interpolate="step-after").encode(
        x=alt.X("depth:Q", title="depth (block position in the prefix)", scale=linear_scale()),
        y=alt.Y("nodes:Q", title="nodes (distinct blocks, count)"),
        tooltip=[alt.Tooltip("depth:Q"), alt.Tooltip("nodes:Q", format=",")])


def prefix_tree_fanout(fanout_distribution: pl.DataFrame) -> alt.Chart:
    """Nodes by number of children, power-of-two bins. ``fanout_distribution``: fanout, nodes
    (``PrefixResult.fanout_distribution``; fan-out 0 = leaves)."""
    bins = log2_bins(fanout_distribution["fanout"].to_numpy(),
                     fanout_distribution["nodes"].to_numpy().astype(np.float64)).rename({"count": "nodes"})
    caption = ("Prefix-tree nodes by how many distinct next blocks follow them (power-of-two bins; "
               "0 = leaves, 1 = a chain); the few nodes with large fan-out are the shared prefixes "
               "whose KV every branch reuses.")
    return _bars(bins, "Prefix-tree fan-out", caption, bar_color=PALETTE[4],
                 x=alt.X("lo:Q", scale=alt.Scale(type="symlog"),
                         axis=pow10_axis(bins["hi"].max() if bins.height else 1, "children per node (symlog scale)")),
                 y=alt.Y("nodes:Q", scale=alt.Scale(type="symlog"),
                         axis=pow10_axis(bins["nodes"].max() if bins.height else 1, "nodes (count, symlog scale)")),
                 bound="children", tooltip=[alt.Tooltip("nodes:Q", format=",.0f")])


# ---------------------------------------------------------------- replay

def _tier_coincidences(data: pl.DataFrame, tiers: list) -> str:
    """Caption sentence naming, per tier, the policies whose lines coincide (the same
    capacities, hit ratios within a pixel): a coinciding line hides the one under it."""
    parts = []
    for tier in tiers:
        by_capacities: dict = {}          # policies replayed at the same capacities
        for (policy,), g in data.filter(pl.col("tier") == tier).sort("capacity_blocks").group_by(
                "policy", maintain_order=True):
            by_capacities.setdefault(tuple(g["capacity_blocks"]), {})[policy] = g["prefix_hit_ratio"].to_numpy()
        for series in by_capacities.values():
            for group in coinciding(dict(sorted(series.items())), lambda ratio: ratio * HEIGHT):
                if len(group) > 1:
                    parts.append(f"{tier}: {', '.join(group[:-1])} and {group[-1]} coincide")
    return (" Lines drawn over one another: " + "; ".join(parts) + ".") if parts else ""


def fixed_sentence(curves: pl.DataFrame, tiers: list) -> str:
    """Caption sentence: the capacities the other tiers keep in each panel (``fixed`` column)."""
    if "fixed" not in curves.columns:
        return ""
    per_tier = [(t, curves.filter(pl.col("tier") == t)["fixed"].unique(maintain_order=True).to_list()) for t in tiers]
    parts = [f"{t} panel: {fixed[0]}" for t, fixed in per_tier if len(fixed) == 1]
    return (" The other tiers stay fixed (" + "; ".join(parts) + ").") if parts else ""


def tier_hit_ratio_vs_capacity(curves: pl.DataFrame, tier_order: list | None = None) -> alt.FacetChart:
    """Prefix hit ratio of each tier against that tier's capacity while every other tier keeps
    its capacity, one line per policy, one panel per tier. ``curves``: tier, policy,
    capacity_blocks, prefix_hit_ratio and optionally fixed (the other tiers' capacities as
    text), one row per point: ``report.replay_tier_curves`` of replays that vary one tier."""
    data = evenly(curves.sort("tier", "policy", "capacity_blocks"), MAX_MARKS)
    tiers = tier_order or data["tier"].unique(maintain_order=True).to_list()
    caption = ("Share of all block accesses served as prefix hits by one tier as that tier's capacity "
               "varies (x) and every other tier keeps its capacity, for each eviction policy; the higher "
               "line at a given capacity is the better policy for this trace. Policies differ in "
               "colour and dash, so lines that overlap stay visible."
               ) + fixed_sentence(data, tiers) + _tier_coincidences(data, tiers)
    # every panel has its own x range: label powers of ten only when each one spans two of them
    axis = log_axis("tier capacity (blocks, log scale)", powers_of_ten=bool(tiers) and all(
        spans_powers_of_ten(data.filter(pl.col("tier") == t)["capacity_blocks"]) for t in tiers))
    base = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("capacity_blocks:Q", scale=alt.Scale(type="log", nice=False), axis=axis),
        y=alt.Y("prefix_hit_ratio:Q", title="prefix hit ratio (fraction of accesses)", scale=linear_scale()),
        color=alt.Color("policy:N", title="policy", scale=alt.Scale(range=PALETTE)),
        strokeDash=alt.StrokeDash("policy:N", title="policy"),
        tooltip=[alt.Tooltip("tier:N"), alt.Tooltip("policy:N"),
                 alt.Tooltip("capacity_blocks:Q", format=",", title="capacity (blocks)"),
                 alt.Tooltip("prefix_hit_ratio:Q", format=".4f", title="prefix hit ratio")]
        + ([alt.Tooltip("fixed:N", title="other tiers")] if "fixed" in data.columns else [])
    ).properties(width=220, height=HEIGHT)
    return base.facet(column=alt.Column("tier:N", title="tier", sort=tiers)).properties(
        title="Hit ratio per tier vs that tier's capacity", description=caption).resolve_scale(x="independent")


def _spread(cdf: pl.DataFrame, unit: str) -> str:
    """How far apart the models are at the median and at p99 (lines that nearly overlap are
    then read from the numbers)."""
    def at(q):
        values = [float(np.interp(q, g["cdf"].to_numpy(), g["value"].to_numpy()))
                  for _, g in cdf.group_by("index", maintain_order=True) if g.height]
        return f"{format_value(min(values))} to {format_value(max(values))} {unit}"
    if cdf["index"].n_unique() < 2:
        return ""
    return f" Across the models the median runs from {at(0.5)}, p99 from {at(0.99)}."


def latency_cdf(cdf: pl.DataFrame, unit: str, title: str, what: str) -> alt.Chart:
    """CDF of a per-request latency, one line per index model. ``cdf``: index, value, cdf
    (e.g. quantiles of ``ReplayResult.requests['ttft_ms']``); ``unit`` labels the x axis.
    Models whose curves coincide (within a pixel everywhere) are drawn once, named together."""
    data = evenly(cdf, MAX_MARKS)
    top = float(symlog(data["value"].max())) if data.height else 1.0
    series = {k: g["value"].to_numpy() for (k,), g in data.group_by("index", maintain_order=True)}
    data, merged = merge_coinciding(data, "index", series, coinciding(
        series, lambda v: symlog(v) / max(top, 1e-12) * WIDTH))
    caption = (f"Share of requests whose {what} is at most x, one line per metadata index model; "
               "a curve further left is faster, and its top end is the tail (p99).") + merged + _spread(cdf, unit)
    return _chart(data, title, caption).mark_line().encode(
        x=alt.X("value:Q", title=f"{what} ({unit}, symlog scale)", scale=alt.Scale(type="symlog"),
                axis=pow10_axis(data["value"].max() if data.height else 1, f"{what} ({unit}, symlog scale)")),
        y=alt.Y("cdf:Q", title="share of requests (CDF)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("index:N", title="index model", scale=alt.Scale(range=PALETTE), legend=alt.Legend(labelLimit=0)),
        strokeDash=alt.StrokeDash("index:N", title="index model"),
        tooltip=[alt.Tooltip("index:N", title="index"), alt.Tooltip("value:Q", format=",.3f", title=unit),
                 alt.Tooltip("cdf:Q", format=".3f", title="share ≤")])


def sweep_tradeoff(table: pl.DataFrame, objective_col: str, objective_label: str,
                   recommended_rank: int | None = None) -> alt.LayerChart:
    """Every config of a recommendation sweep: objective against total cache memory, one colour
    per policy, one shape per index model. ``table``: rank, policy, index, admission,
    memory_bytes, prefix_hit_ratio, ttft_p99_ms and ``objective_col`` (``SweepResult.table``)."""
    data = evenly(table.sort("rank"), MAX_MARKS - 1).with_columns(memory_gb=pl.col("memory_bytes") / 1e9)
    caption = (f"Each point is one configuration of the sweep (policy × index model × admission × tier "
               f"capacities): its {objective_label} against the cache memory it uses; the best "
               "configurations sit at the bottom left, and the ringed point is the recommendation."
               ) + _sampled_note(data.height, table.height, "configurations")
    higher = objective_col == "prefix_hit_ratio"
    if higher:
        caption = caption.replace("bottom left", "top left")
    tooltip = [alt.Tooltip("rank:Q"), alt.Tooltip("policy:N"), alt.Tooltip("index:N", title="index"),
               alt.Tooltip("admission:Q", title="admit after ≥ accesses"),
               alt.Tooltip("memory_gb:Q", format=",.1f", title="memory (GB)"),
               alt.Tooltip("prefix_hit_ratio:Q", format=".4f", title="prefix hit ratio"),
               alt.Tooltip("ttft_p99_ms:Q", format=",.1f", title="TTFT p99 (ms)")]
    points = alt.Chart(data).mark_point(filled=True, size=40, opacity=0.7).encode(
        x=alt.X("memory_gb:Q", title="cache memory, all tiers (GB)", scale=linear_scale()),
        y=alt.Y(f"{objective_col}:Q", title=objective_label, scale=linear_scale(zero=False)),
        color=alt.Color("policy:N", title="policy", scale=alt.Scale(range=PALETTE)),
        shape=alt.Shape("index:N", title="index model"), tooltip=tooltip)
    layers = [points]
    if recommended_rank is not None:
        pick = table.filter(pl.col("rank") == recommended_rank).with_columns(memory_gb=pl.col("memory_bytes") / 1e9)
        layers.append(alt.Chart(pick).mark_point(size=260, shape="circle", color="#000", strokeWidth=2,
                                                 filled=False).encode(
            x="memory_gb:Q", y=f"{objective_col}:Q", tooltip=tooltip))
    return _finish(alt.layer(*layers), "Sweep: objective vs memory", caption, width=WIDTH - 40, height=HEIGHT + 40)
