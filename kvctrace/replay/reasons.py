"""Why the recommended configuration: one sentence per dimension that distinguishes it.

Rules (docs/replay.md "Reasons"): a comparison is printed only when the two numbers differ as
printed (never "5,167.3 ms vs 5,167.3 ms"); against each alternative the sentence names the
first measure that separates them, in ranking order (the objective, then the secondary key);
capacities cite the analysis figure they come from (candidates.py).
"""
from __future__ import annotations

import polars as pl

from ..formatting import format_bytes
from . import cost, ranking
from .candidates import ONE_HIT_SWEEP_SHARE

_FORMATS = {
    "ttft_p50_ms": ("p50 TTFT", "{:,.1f} ms"), "ttft_p90_ms": ("p90 TTFT", "{:,.1f} ms"),
    "ttft_p99_ms": ("p99 TTFT", "{:,.1f} ms"), "ttft_mean_ms": ("mean TTFT", "{:,.1f} ms"),
    "metadata_p99_us": ("metadata p99", "{:,.1f} µs"), "prefix_hit_ratio": ("prefix hit ratio", "{:.4f}"),
    "memory_usd_per_hour": ("memory cost", "${:,.2f}/h"), "net_usd_per_hour": ("net saving", "${:,.2f}/h"),
    "prefill_saved_gpu_s_per_hour": ("prefill saved", "{:,.0f} GPU-s/h"),
}


def show(col: str, value) -> str:
    if col == "memory_bytes":
        return format_bytes(value)
    return _FORMATS.get(col, (col, "{}"))[1].format(value)


def label(col: str) -> str:
    return "memory" if col == "memory_bytes" else _FORMATS.get(col, (col,))[0]


def keys(sw, obj) -> list[str]:
    """The ranking's measures in order: the objective, then the secondary key."""
    return [obj.column] + [c for c, _ in ranking.secondary_keys(sw.table, obj)]


def first_difference(sw, obj, a: dict, b: dict) -> str | None:
    """The first measure (ranking order) on which rows ``a`` and ``b`` differ as printed."""
    for col in keys(sw, obj):
        if show(col, a[col]) != show(col, b[col]):
            return col
    return None


def versus(sw, obj, row: dict, other: dict, what: str) -> str | None:
    """"{measure} {row} vs {other} with {what}" on the first measure that separates them in the
    ranking: the objective when they are in different tie groups, else the first secondary key
    that differs as printed (the objective then named as a tie). None when nothing separates them."""
    if other["tie_group"] != row["tie_group"]:
        col = obj.column
    else:
        col = next((c for c in keys(sw, obj)[1:] if show(c, row[c]) != show(c, other[c])), None)
        if col is None:
            return None
    text = f"{label(col)} {show(col, row[col])} vs {show(col, other[col])} with {what}"
    if col != obj.column:
        a, b = show(obj.column, row[obj.column]), show(obj.column, other[obj.column])
        tied = a if a == b else f"{a} and {b}, within the {sw.tie_tolerance:.1%} tolerance"
        text = f"ties on {obj.label} ({tied}); {text}"
    return text


def _same(sw, row: dict, **differ) -> pl.DataFrame:
    """Rows equal to ``row`` in every dimension but those named in ``differ`` (name -> True:
    different; None: either)."""
    cond = [pl.col(f"cap_{n}") == row[f"cap_{n}"] for n in sw.tier_names]
    for dim in ("index", "policy", "admission"):
        if dim in differ and differ[dim] is None:
            continue                       # either way
        cond.append(pl.col(dim) != row[dim] if differ.get(dim) else pl.col(dim) == row[dim])
    return sw.table.filter(pl.all_horizontal(cond)).sort("rank")


def _best_of(sw, obj, row: dict) -> str:
    """"the best of N configurations", or how far from the best a tied pick is."""
    n = sw.table.height
    best = ranking.best_value(sw.table, obj)
    if show(obj.column, best) == show(obj.column, row[obj.column]):
        return f"the {'most' if obj.higher else 'best'} of {n} configurations"
    return f"within the tie tolerance of the best of {n} configurations ({show(obj.column, best)})"


def headline(sw, obj, row: dict) -> list[str]:
    out = []
    if obj.name == "cost":
        p = sw.base.prices
        out.append(f"knee of the cost frontier: {show('memory_usd_per_hour', row['memory_usd_per_hour'])} of memory "
                   f"saves {row['prefill_saved_gpu_s_per_hour']:,.0f} GPU-seconds of prefill per hour of trace "
                   f"(${row['prefill_saved_usd_per_hour']:,.2f}/h at ${p.gpu_hour:g} per GPU-hour): "
                   f"net {show('net_usd_per_hour', row['net_usd_per_hour'])}, {_best_of(sw, obj, row)}")
        out += _frontier_steps(sw, row)
    else:
        out.append(f"{obj.label} {ranking.fmt_value(obj, row[obj.column])}: {_best_of(sw, obj, row)}")
    tie = sw.tie
    if tie.startswith("tie:") and sw.table.height > 1:
        nxt = sw.table.row(1, named=True)
        col = first_difference(sw, obj, row, nxt)
        if nxt["tie_group"] == 1 and col is not None and col != obj.column and show(col, nxt[col]) != show(col, row[col]):
            tie += f" (rank 2 has {label(col)} {show(col, nxt[col])} against {show(col, row[col])})"
    out.append(tie)
    return out


def _frontier_steps(sw, row: dict) -> list[str]:
    f = sw.frontier
    if not f.height or "knee" not in f.columns:
        return []
    at = f.with_row_index("_i").filter(pl.col("knee"))
    if not at.height:
        return []
    i = int(at["_i"][0])
    out = []
    if i + 1 < f.height:
        nxt = f.row(i + 1, named=True)
        dm = nxt["memory_usd_per_hour"] - row["memory_usd_per_hour"]
        dg = nxt["prefill_saved_usd_per_hour"] - row["prefill_saved_usd_per_hour"]
        out.append(f"the next frontier point ({_caps(sw, nxt)}) adds ${dm:,.2f}/h of memory for ${dg:,.2f}/h of "
                   f"GPU time saved ({dg / dm:.2f} $ per $): past the knee, memory costs more than it saves")
    if i > 0:
        prv = f.row(i - 1, named=True)
        dm = row["memory_usd_per_hour"] - prv["memory_usd_per_hour"]
        dg = row["prefill_saved_usd_per_hour"] - prv["prefill_saved_usd_per_hour"]
        out.append(f"the step to it from the cheaper frontier point ({_caps(sw, prv)}) adds ${dm:,.2f}/h of memory "
                   f"and saves ${dg:,.2f}/h of GPU time ({dg / dm:.2f} $ per $)")
    return out


def _caps(sw, row: dict) -> str:
    bb = sw.base.block_bytes(sw.block_size)
    return ", ".join(f"{n} {format_bytes(row[f'cap_{n}'] * bb)}" for n in sw.tier_names)


def capacities(sw, row: dict) -> list[str]:
    """Each tier's capacity and the analysis figure it comes from; candidate sizes too large for
    the budget."""
    bb = sw.base.block_bytes(sw.block_size)
    sources = sw.sources_of(row)
    if sources is None:
        return [f"capacities: {_caps(sw, row)} (fractions of the tier budgets)"]
    sizes = {s.source: s for s in sw.facts.sizes()}
    full = [n for n, src in zip(sw.tier_names, sources) if src == "full budget"]
    out = []
    if full:
        upto = sum(row[f"cap_{n}"] for n in full)
        smaller = [s for s in sizes.values() if s.blocks < upto]
        text = f"{', '.join(full)} at the full budget ({format_bytes(upto * bb)})"
        if not smaller and sizes:
            text += (f": every candidate size from the analyses is larger; the smallest is "
                     f"{min(sizes.values(), key=lambda s: s.blocks).figure(bb)}")
        out.append(text)
    cum = 0
    for n, src in zip(sw.tier_names, sources):
        cum += row[f"cap_{n}"]
        if src in sizes:
            upper = "+".join(sw.tier_names[:sw.tier_names.index(n) + 1])
            out.append(f"{n} {format_bytes(row[f'cap_{n}'] * bb)}: with it, {upper} hold {sizes[src].figure(bb)}")
        elif src.startswith("not needed"):
            out.append(f"{n} 0 B: {src}")
    total = sum(sw.budget_blocks)
    big = [s for s in (sw.facts.hot_sets + sw.facts.knees + ((sw.facts.working_set,) if sw.facts.working_set else ()))
           if s.blocks > total]
    if big:
        out.append("beyond the budget (" + format_bytes(total * bb) + " in all): "
                   + "; ".join(f"{s.text(bb)}" for s in sorted(big, key=lambda s: s.blocks)[:2]))
    return out


def other_capacities(sw, obj, row: dict) -> list[str]:
    """Against the best configuration with other capacities (and where those come from)."""
    same = pl.all_horizontal([pl.col(f"cap_{n}") == row[f"cap_{n}"] for n in sw.tier_names])
    alt = sw.table.filter(~same).sort("rank")
    if not alt.height:
        return []
    o = alt.row(0, named=True)
    src = sw.sources_of(o)
    where = [f"{n}: {s}" for n, s in zip(sw.tier_names, src) if s != "full budget"] if src else []
    text = versus(sw, obj, row, o, f"{_caps(sw, o)}" + (f" ({'; '.join(where)})" if where else ""))
    return [f"capacities: {text}"] if text else []


def against(sw, obj, row: dict, alts: pl.DataFrame, name, extra: str | None = None) -> str | None:
    """``row`` against the best alternative of ``alts`` (rank order) that differs from it as
    printed, naming the ones before it that tie on every measure; ``name(alt)`` says what an
    alternative is; ``extra`` a column compared when no ranking measure separates them."""
    ties = []
    for o in alts.iter_rows(named=True):
        text = versus(sw, obj, row, o, name(o))
        if text is None and extra and show(extra, row[extra]) != show(extra, o[extra]):
            text = f"{label(extra)} {show(extra, row[extra])} vs {show(extra, o[extra])} with {name(o)}"
        if text is None:
            ties.append(name(o))
            continue
        return (f"ties with {', '.join(ties)} on every measure; " if ties else "") + text
    return f"ties with {', '.join(ties)} on every measure" if ties else None


def policy_and_admission(sw, obj, row: dict) -> list[str]:
    out = []

    def name(o):
        adm = "" if o["admission"] == row["admission"] else f" (admission >= {o['admission']})"
        return f"{o['policy']}{adm} at the same capacities"
    alts = _same(sw, row, policy=True, admission=None).unique("policy", keep="first", maintain_order=True)
    text = against(sw, obj, row, alts, name)
    if text:
        out.append(f"policy {row['policy']}: {text}")
    share = sw.one_hit_fraction
    tried = _same(sw, row, admission=True)
    if share < ONE_HIT_SWEEP_SHARE:
        out.append(f"admission: every block enters {sw.tier_names[0]}; {share:.0%} of blocks are accessed once, "
                   f"under the {ONE_HIT_SWEEP_SHARE:.0%} at which a threshold is worth trying")
    elif tried.height:
        o = tried.row(0, named=True)
        text = versus(sw, obj, row, o, f"admission >= {o['admission']}")
        head = f"admission >= {row['admission']} to {sw.tier_names[0]}: {share:.0%} of blocks are accessed once"
        if text:
            out.append(f"{head}; {text}")
        else:
            out.append(f"{head}, yet admission >= {o['admission']} changes no measure here (same hits and TTFT); "
                       f"kept at >= {row['admission']}")
    return out


def index(sw, obj, row: dict) -> list[str]:
    model = cost.INDEX_MODELS[row["index"]]
    kind = "range index" if model.range_scan else ("batched point index" if model.batch else "point index")
    why = f"index {row['index']} ({kind}): {sw.sequential_fraction:.0%} of blocks in sequential runs"
    if model.range_scan:
        why += " (one range scan per run instead of a lookup per block)"
    text = against(sw, obj, row, _same(sw, row, index=True), lambda o: o["index"], "metadata_p99_us")
    return [f"{why}; {text}"] if text else [why]


def reasons(sw, row: dict) -> list[str]:
    """The reasons for ``row`` (rank 1 of ``sw``), in reading order."""
    obj = ranking.objective(sw.objective)
    out = (headline(sw, obj, row) + capacities(sw, row) + other_capacities(sw, obj, row)
           + policy_and_admission(sw, obj, row) + index(sw, obj, row))
    b = sw.bound.get("prefix_hit_ratio")
    if b is not None and show("prefix_hit_ratio", b) != show("prefix_hit_ratio", row["prefix_hit_ratio"]):
        out.append(f"Belady (offline optimum) at the full budget: prefix hit ratio {b:.4f}; this config reaches "
                   f"{row['prefix_hit_ratio']:.4f} ({row['prefix_hit_ratio'] / b:.1%} of it)")
    elif b is not None:
        out.append(f"this config reaches the prefix hit ratio of Belady (offline optimum) at the full budget, {b:.4f}")
    return out
