"""The recommendation part of the report's replay section: facts, the cost frontier chart (or
the objective against memory), the frontier and ranked tables, and the reasons."""
from __future__ import annotations

import altair as alt
import polars as pl

from ..formatting import format_bytes, format_value as fmt, plural
from . import charts
from .page import frame_table

X_TITLE = "memory cost, all tiers ($ per hour)"
Y_TITLE = "prefill GPU time saved (GPU-seconds per hour of trace)"


def cost_frontier(table: pl.DataFrame, frontier: pl.DataFrame) -> alt.LayerChart:
    """Every configuration of a sweep as memory $ per hour against the prefill GPU time its hits
    save, the Pareto frontier as a line through its points, and the knee ringed. ``table``:
    ``SweepResult.table``; ``frontier``: ``SweepResult.frontier`` (columns rank, policy, index,
    admission, memory_usd_per_hour, prefill_saved_gpu_s_per_hour, net_usd_per_hour, knee)."""
    data = charts.evenly(table.sort("rank"), charts.MAX_MARKS - frontier.height - 1)
    caption = ("Each point is one configuration: what its memory costs per hour against the GPU time its "
               "cache hits save per hour of trace (prefill not recomputed). The line joins the frontier: no "
               "configuration saves more for less. The ringed point is the knee, the largest net saving "
               "(GPU dollars saved minus memory dollars): past it, more memory costs more than it saves."
               ) + charts._sampled_note(data.height, table.height, "configurations")
    tooltip = [alt.Tooltip("rank:Q"), alt.Tooltip("policy:N"), alt.Tooltip("index:N", title="index"),
               alt.Tooltip("admission:Q", title="admit after ≥ accesses"),
               alt.Tooltip("memory_usd_per_hour:Q", format=",.2f", title="memory $/h"),
               alt.Tooltip("prefill_saved_gpu_s_per_hour:Q", format=",.0f", title="GPU-s saved per hour"),
               alt.Tooltip("net_usd_per_hour:Q", format=",.2f", title="net saving $/h")]
    x = alt.X("memory_usd_per_hour:Q", title=X_TITLE, scale=charts.linear_scale(zero=False))
    y = alt.Y("prefill_saved_gpu_s_per_hour:Q", title=Y_TITLE, scale=charts.linear_scale(zero=False))
    points = alt.Chart(data).mark_point(filled=True, size=40, opacity=0.5).encode(
        x=x, y=y, color=alt.Color("policy:N", title="policy", scale=alt.Scale(range=charts.PALETTE)), tooltip=tooltip)
    line = alt.Chart(frontier).mark_line(point=True, color="#000").encode(x=x, y=y, tooltip=tooltip)
    knee = alt.Chart(frontier.filter(pl.col("knee"))).mark_point(
        size=300, shape="circle", color="#000", strokeWidth=2, filled=False).encode(x=x, y=y, tooltip=tooltip)
    return charts._finish(alt.layer(points, line, knee), "Cost frontier: memory $ vs prefill GPU time saved",
                          caption, width=charts.WIDTH - 40, height=charts.HEIGHT + 40)


def _tie_value(sw) -> str:
    n = int((sw.table["tie_group"] == 1).sum())
    return f"{n} configurations tie" if n > 1 else "no tie"


def _facts(rec) -> list:
    from ..replay.ranking import OBJECTIVES
    sw, row = rec.sweep, rec.row
    obj = OBJECTIVES[sw.objective]
    bb = sw.base.block_bytes(sw.block_size)
    tiers = ", ".join(f"{name} {fmt(row[f'cap_{name}'])} blocks ({format_bytes(row[f'cap_{name}'] * bb)})"
                      for name in sw.tier_names)
    facts = [("objective", f"{sw.objective} ({obj.label})", f"{sw.table.height:,} configurations, {sw.search} search"),
             ("ties", _tie_value(sw), sw.tie),
             ("recommended index", str(row["index"]), None),
             ("recommended policy", str(row["policy"]), f"admit to {sw.tier_names[0]} after ≥ {plural(row['admission'], 'access', 'accesses')}"),
             ("tier capacities", tiers, f"{format_bytes(row['memory_bytes'])} in all"),
             ("TTFT mean / p99", f"{row['ttft_mean_ms']:,.1f} / {row['ttft_p99_ms']:,.1f} ms", None),
             ("prefix hit ratio", fmt(row["prefix_hit_ratio"], digits=4),
              f"Belady bound at the full budget: {fmt(sw.bound.get('prefix_hit_ratio'), digits=4)}")]
    if row.get("memory_usd_per_hour") is not None:
        facts.append(("memory cost / prefill saved", f"${row['memory_usd_per_hour']:,.2f} / "
                      f"${row['prefill_saved_usd_per_hour']:,.2f} per hour",
                      f"{row['prefill_saved_gpu_s_per_hour']:,.0f} GPU-seconds of prefill saved per hour of trace; "
                      f"net ${row['net_usd_per_hour']:,.2f} per hour"))
    return facts


def recommendation_parts(rec):
    """Facts, charts, tables (frontier, ranked configurations) and the reasons of a ``Recommendation``."""
    from ..replay.ranking import OBJECTIVES
    sw, row = rec.sweep, rec.row
    obj = OBJECTIVES[sw.objective]
    figs = []
    if sw.frontier.height:
        figs.append(cost_frontier(sw.table, sw.frontier))
    if sw.objective != "cost":
        label = obj.label + (f" ({obj.unit.strip()})" if obj.unit.strip() else "")
        figs.append(charts.sweep_tradeoff(sw.table, obj.column, label, int(row["rank"])))
    caps = {f"cap_{n}": f"{n} (blocks)" for n in sw.tier_names}
    tables = []
    if sw.frontier.height:
        cols = {"rank": "rank", "policy": "policy", "admission": "admit ≥", **caps,
                "memory_usd_per_hour": "memory $/h", "prefill_saved_gpu_s_per_hour": "GPU-s saved per hour",
                "prefill_saved_usd_per_hour": "saved $/h", "net_usd_per_hour": "net $/h",
                "marginal": "$ saved per extra $", "knee": "knee"}
        tables.append(frame_table(sw.frontier, "Cost frontier",
                                  "Configurations no other beats on both memory cost and prefill GPU time saved, "
                                  "cheapest first; the knee has the largest net saving.", cols))
    cols = {"rank": "rank", "tie_group": "tie group", "index": "index", "policy": "policy", "admission": "admit ≥",
            **caps, obj.column: obj.label, "prefix_hit_ratio": "prefix hit ratio", "ttft_mean_ms": "TTFT mean (ms)",
            "ttft_p99_ms": "TTFT p99 (ms)", "metadata_p99_us": "metadata p99 (µs)"}
    tables.append(frame_table(sw.table.sort("rank"), "Best configurations",
                              f"Ranked by {sw.objective}; configurations within {sw.tie_tolerance:.1%} of a tie group's "
                              "best share its tie group and are ordered by memory cost, then the next objective.",
                              cols, max_rows=10))
    lists = [{"title": "Why this configuration", "items": list(rec.reasons)}]
    return _facts(rec), figs, tables, lists
