"""The tier parts of the report's replay section (structure stage, from replay results):

* each tier's prefix hit ratio and mean TTFT against that tier's capacity, every other tier at
  a fixed capacity (``replay_tier_curves`` finds such groups among the replays);
* the marginal value of each tier (a ``ReplayStudy``'s sentences, replay/study.py);
* the miss taxonomy of the config as given (docs/replay.md "Miss taxonomy");
* the Redis index cost model measured on a live server next to the modelled one, when a
  calibration file (``kvctrace bench-index --calibrate``) is given.
"""
from __future__ import annotations

import altair as alt
import polars as pl

from ..formatting import format_bytes, format_value as fmt
from . import charts
from .page import frame_table

MISS_LABELS = {"cold": "cold", "capacity": "capacity", "prefix_broken": "prefix broken", "admission": "admission"}


# ---------------------------------------------------------------- one tier varied

def _setup(r) -> tuple:
    """What must be equal for two replays to sit on one curve, besides the capacities."""
    t = r.tiers
    c = r.config
    return (tuple(t["name"]), tuple(t["policy"]), tuple(t["admit_min_accesses"]), c.index.kind,
            c.hierarchy, c.promote_on_hit, c.demote_on_evict)


def _one_tier_groups(results) -> dict:
    """(setup, tier index) -> {tier capacity: replay} over the largest set of replays that
    differ only in that tier's capacity (first replay per capacity)."""
    groups: dict = {}
    for r in results:
        setup, caps = _setup(r), tuple(r.capacities)
        for k in range(len(caps)):
            groups.setdefault((setup, k, caps[:k] + caps[k + 1:]), {}).setdefault(caps[k], r)
    best: dict = {}
    for (setup, k, _), by_cap in groups.items():
        if len(by_cap) >= 2 and len(by_cap) > len(best.get((setup, k), {})):
            best[(setup, k)] = by_cap
    return best


def replay_tier_curves(results) -> pl.DataFrame:
    """Long frame, one row per point of a one-tier curve: tier, policy (the tiers' policies,
    one name when they agree), capacity_blocks, capacity_bytes (of that tier),
    prefix_hit_ratio, block_hit_ratio (of that tier), overall_prefix_hit_ratio,
    ttft_mean_ms, and fixed (the other tiers' capacities, as text). A curve is the largest set
    of replays with the same tiers, policies, admission, index and hierarchy that differ only in
    that tier's capacity; replays that change several tiers at once draw no curve."""
    rows = []
    for (setup, k), by_cap in _one_tier_groups(results).items():
        names, pols = setup[0], setup[1]
        policy = pols[0] if len(set(pols)) == 1 else "/".join(pols)
        for cap, r in sorted(by_cap.items()):
            t = r.tiers
            fixed = ", ".join(f"{names[j]} {format_bytes(t['capacity_bytes'][j])}" for j in range(len(names)) if j != k)
            rows.append({"tier": names[k], "policy": policy, "capacity_blocks": int(cap),
                         "capacity_bytes": int(t["capacity_bytes"][k]),
                         "prefix_hit_ratio": float(t["prefix_hit_ratio"][k]),
                         "block_hit_ratio": float(t["block_hit_ratio"][k]),
                         "overall_prefix_hit_ratio": float(r.prefix_hit_ratio),
                         "ttft_mean_ms": float(r.requests["ttft_ms"].mean()) if r.requests.height else 0.0,
                         "fixed": fixed or "none"})
    schema = {"tier": pl.String, "policy": pl.String, "capacity_blocks": pl.Int64, "capacity_bytes": pl.Int64,
              "prefix_hit_ratio": pl.Float64, "block_hit_ratio": pl.Float64,
              "overall_prefix_hit_ratio": pl.Float64, "ttft_mean_ms": pl.Float64, "fixed": pl.String}
    return pl.DataFrame(rows, schema=schema)


def tier_ttft_vs_capacity(curves: pl.DataFrame, tier_order: list | None = None) -> alt.FacetChart:
    """Mean TTFT against one tier's capacity, the other tiers fixed; one panel per tier, one
    line per policy. ``curves``: ``replay_tier_curves``."""
    data = charts.evenly(curves.sort("tier", "policy", "capacity_blocks"), charts.MAX_MARKS)
    tiers = tier_order or data["tier"].unique(maintain_order=True).to_list()
    caption = ("Mean time to first token of all requests as one tier's capacity varies (x) and every other tier "
               "keeps its capacity, for each eviction policy; lower is better. The slope is what that tier's next "
               "bytes buy." + charts.fixed_sentence(data, tiers))
    base = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("capacity_blocks:Q", scale=alt.Scale(type="log", nice=False),
                axis=charts.log_axis("tier capacity (blocks, log scale)")),
        y=alt.Y("ttft_mean_ms:Q", title="mean TTFT (ms)", scale=charts.linear_scale(zero=False)),
        color=alt.Color("policy:N", title="policy", scale=alt.Scale(range=charts.PALETTE)),
        strokeDash=alt.StrokeDash("policy:N", title="policy"),
        tooltip=[alt.Tooltip("tier:N"), alt.Tooltip("policy:N"),
                 alt.Tooltip("capacity_blocks:Q", format=",", title="capacity (blocks)"),
                 alt.Tooltip("ttft_mean_ms:Q", format=",.2f", title="mean TTFT (ms)"),
                 alt.Tooltip("overall_prefix_hit_ratio:Q", format=".4f", title="prefix hit ratio, all tiers"),
                 alt.Tooltip("fixed:N", title="other tiers")]
    ).properties(width=220, height=charts.HEIGHT)
    return base.facet(column=alt.Column("tier:N", title="tier", sort=tiers)).properties(
        title="Mean TTFT vs one tier's capacity", description=caption).resolve_scale(x="independent", y="independent")


# ---------------------------------------------------------------- miss taxonomy

def miss_frame(result) -> pl.DataFrame:
    """One row per tier: misses (accesses falling through it) and each cause, with shares."""
    t = result.tiers
    frame = t.select(pl.col("name").alias("tier"), "misses", *(f"misses_{c}" for c in MISS_LABELS))
    return frame.with_columns(*(pl.when(pl.col("misses") > 0).then(pl.col(f"misses_{c}") / pl.col("misses"))
                                .otherwise(0.0).alias(f"share_{c}") for c in MISS_LABELS))


def miss_taxonomy_chart(misses: pl.DataFrame) -> alt.Chart:
    """Stacked bars: per tier, the accesses falling through it by cause. ``misses``: ``miss_frame``."""
    tiers = misses["tier"].to_list()
    data = pl.concat([misses.select("tier", pl.lit(label).alias("cause"), pl.col(f"misses_{c}").alias("accesses"),
                                    pl.col(f"share_{c}").alias("share"))
                      for c, label in MISS_LABELS.items()])
    caption = ("Each bar: the block accesses that fall through a tier (not served as prefix hits by it or any "
               "tier above), by cause: first accesses (cold), evicted or moved below (capacity), held but after a "
               "missing block of the request (prefix broken), kept out by an admission threshold (admission). "
               f"The last bar, {tiers[-1] if tiers else ''}, is the whole hierarchy's misses.")
    return charts._chart(data, "Misses by cause, per tier", caption, height=28 * max(len(tiers), 1) + 20).mark_bar().encode(
        y=alt.Y("tier:N", title="falls through tier", sort=tiers),
        x=alt.X("accesses:Q", title="block accesses", stack="zero", scale=charts.linear_scale()),
        color=alt.Color("cause:N", title="cause", sort=list(MISS_LABELS.values()),
                        scale=alt.Scale(domain=list(MISS_LABELS.values()), range=charts.PALETTE[:4])),
        order=alt.Order("cause_order:Q"),
        tooltip=[alt.Tooltip("tier:N"), alt.Tooltip("cause:N"), alt.Tooltip("accesses:Q", format=","),
                 alt.Tooltip("share:Q", format=".1%", title="share of the tier's misses")]
    ).transform_calculate(cause_order=" + ".join(
        f"(datum.cause == '{label}' ? {i} : 0)" for i, label in enumerate(MISS_LABELS.values())))


def miss_parts(result) -> tuple[list, list]:
    """The miss taxonomy of ``result`` (a ReplayResult): its chart and table."""
    misses = miss_frame(result)
    cols = {"tier": "falls through", "misses": "misses"}
    cols.update({f"misses_{c}": label for c, label in MISS_LABELS.items()})
    table = frame_table(misses, "Misses by cause",
                        f"Replay of {result.config.name}. A tier's misses are the accesses it and the tiers above it "
                        "do not serve as prefix hits; the last row is the hierarchy's. Causes as defined in "
                        "docs/replay.md (\"Miss taxonomy\").", cols)
    return [miss_taxonomy_chart(misses)], [table]


# ---------------------------------------------------------------- marginal value, calibration

def marginal_list(marginal) -> dict:
    """The report list of a ``ReplayStudy``'s marginal values (replay/study.py)."""
    return {"title": "Marginal value per tier (the next step of one tier, the others as configured)",
            "items": [m.sentence() for m in marginal]}


def calibration_parts(cal) -> tuple[list, list]:
    """Facts and the measured-vs-modelled table of a ``RedisCalibration``."""
    from ..replay.index_calibration import calibration_comparison
    prov = cal.provenance
    facts = [("Redis round trip (fitted)", f"{cal.rtt_us:,.2f} µs",
              f"kvctrace bench-index on Redis {prov.get('server_version', '?')}, {prov.get('date', '?')}"),
             ("Redis cost per key (fitted)", f"{cal.per_key_us:,.3f} µs",
              f"{fmt(prov.get('n_ops'))} ops of trace {prov.get('trace', '?')}")]
    rows = calibration_comparison(cal)
    if not rows:
        return facts, []
    cols = {"design": "design", "op": "op", "model": "model", "n": "ops", "measured_p50_us": "measured p50 (µs)",
            "fitted_p50_us": "fitted p50 (µs)", "published_p50_us": "published p50 (µs)",
            "measured_p99_us": "measured p99 (µs)", "fitted_p99_us": "fitted p99 (µs)",
            "published_p99_us": "published p99 (µs)"}
    table = frame_table(pl.DataFrame(rows), "Index cost model vs a live Redis",
                        "Latency per op measured by kvctrace bench-index next to the Redis cost models over the "
                        "same ops: fitted to the measurements (used by this report's replays) and as published "
                        "(docs/replay.md \"Index cost models\"). The models price the typical op; the measured "
                        "p99 also holds what they leave out (scheduling delays, page faults).", cols)
    return facts, [table]
