"""Readable console output of the commands (rich), made to fit the terminal: 80 columns, or 80
when piped. No table is ever cut: ``print_table`` measures a table at its natural widths and,
when it does not fit, prints the same rows as one block per row ("header: value" lines).
Per-tier figures are printed with the tiers as columns, in as many groups as the width needs.

The functions take a command's result (kvctrace.commands) and print it; cli.py only picks one.
"""
from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import KvctraceError
from .formatting import format_bytes, format_value as fv, plural

# ≥ and > differ by the requests exactly at the threshold (many requests have 2, 4 or 5 blocks,
# so 0.5 and 0.8 are common values): said once under the reuse figures.
GE_GT_NOTE = ("≥ x includes requests whose hit rate is exactly x (e.g. 4 of 5 blocks for 0.8); "
              "> x leaves them out.")


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit 1 here; the CLI's handler (cli.handle_errors) stops every command the
        # same quiet way when stdout's reader leaves (`kvctrace ... | head`)
        raise BrokenPipeError


def console() -> Console:
    return _Console(highlight=False)


def print_table(con: Console, table: Table) -> None:
    """``table`` as is when its unwrapped cells fit the width, else one block per row. The
    title goes on its own line (a table narrower than its title would wrap it)."""
    for column in table.columns:
        column.no_wrap = True
    if table.title:
        con.print(Text(str(table.title), style="bold"))
        table.title = None
    if con.measure(table).maximum <= con.width:
        con.print(table)
        return
    headers = [str(c.header) for c in table.columns]
    cells = [list(c.cells) for c in table.columns]
    for row in zip(*cells):
        con.print(Text(f"{headers[0]} {row[0]}".strip(), style="bold"))
        for header, value in zip(headers[1:], row[1:]):
            con.print(Text(f"  {header}: {value}"))


def print_by_column(con: Console, title: str, names: list, rows: list) -> None:
    """A table with one column per name (e.g. per tier) and one row per (label, values), split
    into groups of columns that fit the width."""
    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(str(name)), *(len(values[i]) for _, values in rows)) for i, name in enumerate(names)]
    groups, group, used = [], [], label_width + 1
    for i, width in enumerate(widths):
        if group and used + width + 2 > con.width:
            groups.append(group)
            group, used = [], label_width + 1
        group.append(i)
        used += width + 2
    groups.append(group)
    for group in groups:
        table = Table("", *(names[i] for i in group), title=title, box=None,
                      pad_edge=False, show_edge=False)
        for column in table.columns[1:]:
            column.justify = "right"
        table.columns[0].style = "cyan"
        for label, values in rows:
            table.add_row(label, *(values[i] for i in group))
        print_table(con, table)


# ---- ingest / info ----------------------------------------------------------------------------

def print_ingest(info: dict) -> None:
    print(f"{info['path']}: {info['format']}, {fv(info['requests'])} requests, "
          + (f"{fv(info['accesses'])} block accesses, {fv(info['unique_blocks'])} unique blocks, "
             if info["has_block_ids"] else "no block ids, ")
          + f"{fv(info['rejected_lines'])} rejected lines -> {info['db']}")
    if not info["sorted_input"]:
        print("note: requests were not in timestamp order; they were sorted", file=sys.stderr)


def print_info(info: dict) -> None:
    con = console()
    con.print(f"[bold]{info['path']}[/bold]")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("key", style="cyan")
    table.add_column("value", justify="right")
    blocks = info["has_block_ids"]
    rows = [
        ("format", info["format"]),
        ("block size (tokens)", fv(info["block_size"]) + (f" ({fv(info['source_block_size'])} x {info['coarsen']})" if info["coarsen"] > 1 else "")),
        ("requests", fv(info["requests"])),
        ("block accesses", fv(info["accesses"]) if blocks else "n/a (no block ids)"),
        ("unique blocks", fv(info["unique_blocks"]) if blocks else "n/a (no block ids)"),
        ("duration", fv(info["duration_s"], unit="s")),
        ("input tokens", fv(info["input_tokens"])),
        ("output tokens", fv(info["output_tokens"])),
        ("rejected lines", fv(info["rejected_lines"])),
        ("sorted input", "yes" if info["sorted_input"] else "no (requests were sorted by timestamp)"),
    ]
    if info.get("tokenizer"):  # text traces: which tokenizer (bytes: an approximation), template, skipped parts
        rows += [("tokenizer", info["tokenizer"]), ("chat template", info["chat_template"]),
                 ("non-text parts skipped", fv(info["non_text_parts_skipped"]))]
        if info["message_start_fallbacks"]:
            rows.append(("message starts fell back", plural(info["message_start_fallbacks"], "request")))
    if info.get("db") is not None:
        rows.append(("database", str(info["db"])))
    for key, value in rows:
        table.add_row(key, value)
    print_table(con, table)
    if info["rejected_lines"]:
        print(f"note: {fv(info['rejected_lines'])} lines were rejected; see the rejects table", file=sys.stderr)


# ---- analyze ----------------------------------------------------------------------------------

def _flatten(section: dict, prefix: str = "") -> list:
    """(dotted key, scalar) pairs of a summary section; lists are left to summary.json."""
    rows = []
    for key, value in section.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            rows.append((f"{prefix}{key}", value))
    return rows


def summary_value(key: str, value) -> str:
    """A summary figure for reading: shares as percentages, seconds with minutes beside."""
    if isinstance(value, float) and "share" in key:
        return fv(value, unit="%")
    if key.endswith(("_s", "_s_p50", "_s_p90", "_s_p99")):
        return fv(value, unit="s")
    return fv(value)


def print_analysis(summary: dict, written: list) -> None:
    """The headline figures of each registered analysis under readable labels (every figure
    is in summary.json, under its key), then the block-LRU hit ratio at ten capacities."""
    from .analysis.registry import ANALYSES

    con = console()
    t = summary["trace"]
    con.print(f"[bold]{t['path']}[/bold]  format {t['format']}, block size {t['block_size']}, "
              f"{plural(t['requests'], 'request')}, {plural(t['accesses'], 'block access', 'block accesses')}, "
              f"{plural(t['unique_blocks'], 'distinct block')}, {fv(t['duration_s'], unit='s')}"
              + (f", {plural(t['rejected_lines'], 'rejected line')}" if t["rejected_lines"] else ""))
    if t.get("tokenizer"):  # text traces (bytes: labelled an approximation)
        con.print(f"tokenizer {t['tokenizer']}, chat template {t['chat_template']}", markup=False, highlight=False)
    if not t.get("sorted_input", True):
        con.print("[yellow]note: requests were not in timestamp order; they were sorted[/yellow]")
    for analysis in ANALYSES:
        section = summary.get(analysis.name) or {}
        if not section.get("available", False):
            con.print(f"[bold]{analysis.title}[/bold]: [yellow]{section.get('reason', 'not available')}[/yellow]")
            continue
        rows = _flatten(section)
        if analysis.headline:
            rows = [r for r in rows if r[0] in analysis.headline]
        table = Table(title=analysis.title, show_header=False, box=None, pad_edge=False)
        table.add_column("metric", style="cyan")
        table.add_column("value", justify="right")
        for key, value in rows:
            if key == "available" or value is None or (isinstance(value, str) and len(value) > 60):
                continue  # definitions and the rest live in summary.json
            table.add_row(analysis.labels.get(key, key), summary_value(key, value))   # unlabelled: the key
        print_table(con, table)
        if analysis.sentence and section.get(analysis.sentence):  # what to do (divergence headline), in full
            con.print(section[analysis.sentence], markup=False, highlight=False)  # wrapped to the width
        if any("_ge_" in key for key, _ in rows) and any("_gt_" in key for key, _ in rows):
            con.print(f"[dim]{GE_GT_NOTE}[/dim]")
    _print_mrc(con, summary.get("mrc"))
    for path in written:
        con.print(f"wrote {path}", soft_wrap=True)


def _print_mrc(con: Console, mrc) -> None:
    if not mrc:
        return
    table = Table(title="block-LRU hit ratio by cache capacity (exact)", box=None, pad_edge=False)
    table.add_column("capacity (blocks)", justify="right")
    table.add_column("hit ratio", justify="right")
    step = max(1, len(mrc) // 10)
    for point in mrc[::step] + ([mrc[-1]] if (len(mrc) - 1) % step else []):
        table.add_row(fv(point["capacity_blocks"]), fv(point["hit_ratio"], digits=4))
    print_table(con, table)


# Labels of the partitioned analysis's exact figures (the reuse analysis's where they are shared).
_PARTITIONED = ("ideal_hit_ratio_blocks", "ideal_prefix_hit_ratio_blocks", "ideal_hit_ratio_tokens",
                "ideal_prefix_hit_ratio_tokens", "request_hit_rate_mean", "request_prefix_hit_rate_mean",
                "one_hit_block_share")
_PARTITIONED_LABELS = {"ideal_prefix_hit_ratio_tokens": "prefix hit ratio, unlimited cache (tokens)",
                       "request_prefix_hit_rate_mean": "mean per-request prefix hit rate"}


def print_partitioned(result, path) -> None:
    from .analysis.registry import get

    s = result.summary()
    labels = {**get("reuse").labels, **_PARTITIONED_LABELS}
    con = console()
    con.print(f"[bold]{s['path']}[/bold]  partitioned reuse: {s['partitions']} partitions (seed {s['seed']}, "
              f"engine {s['engine']}), {plural(s['requests'], 'request')}, "
              f"{plural(s['accesses'], 'access', 'accesses')}, {plural(s['unique_blocks'], 'distinct block')}")
    t = Table(title="exact (per-request figures merged across partitions)",
              show_header=False, box=None, pad_edge=False)
    t.add_column("metric", style="cyan")
    t.add_column("value", justify="right")
    for key in _PARTITIONED:
        t.add_row(labels[key], summary_value(key, s[key]) if "share" in key else f"{s[key]:.4f}")
    print_table(con, t)
    err = s["mrc_error"]
    m = Table("capacity (blocks)", "merged hit ratio", "exact hit ratio",
              title="block-LRU hit ratio by capacity (merged from partitions)", box=None, pad_edge=False)
    for column in m.columns:
        column.justify = "right"
    step = max(1, len(s["mrc"]) // 10)
    for point in s["mrc"][::step] + ([s["mrc"][-1]] if (len(s["mrc"]) - 1) % step else []):
        exact = point["exact_hit_ratio"]
        m.add_row(f"{point['capacity_blocks']:,}", f"{point['hit_ratio']:.4f}", "-" if exact is None else f"{exact:.4f}")
    print_table(con, m)
    if err["exact_computed"]:
        con.print(f"error against the exact curve: MAE {err['mae_linear']:.5f} (linear grid), "
                  f"{err['mae_log']:.5f} (log grid), max {err['max_abs']:.4f}")
    else:
        con.print(f"error against the exact curve: not computed ({err['reason']})")
    tm = result.timings_s
    con.print(f"time: {tm['total']:.2f} s (partitions {tm['partitions_wall']:.2f} s wall, slowest "
              f"{tm['partition_max']:.2f} s; merge {tm['merge']:.3f} s; exact {tm['exact']:.2f} s)")
    con.print(f"wrote {path}", soft_wrap=True)


# ---- replay / recommend -----------------------------------------------------------------------

def print_replay(s: dict, out) -> None:
    con = console()
    con.print(f"[bold]{s['config']}[/]: {plural(s['n_requests'], 'request')}, "
              f"{plural(s['n_accesses'], 'block access', 'block accesses')} ({s['block_size']} tokens/block), "
              f"index {s['index']}, overlap {s['overlap']}")
    con.print(f"prefix hit ratio {fv(s['prefix_hit_ratio'], digits=4)}   "
              f"block hit ratio {fv(s['block_hit_ratio'], digits=4)}   token hit ratio {fv(s['token_hit_ratio'], digits=4)}")
    tiers = s["tiers"]
    print_by_column(con, "per tier", [t["name"] for t in tiers], [
        ("policy", [t["policy"] for t in tiers]),
        ("capacity (blocks)", [fv(t["capacity_blocks"]) for t in tiers]),
        ("capacity", [format_bytes(t["capacity_bytes"]) for t in tiers]),
        ("prefix hits", [fv(t["prefix_hits"]) for t in tiers]),
        ("prefix hit ratio", [fv(t["prefix_hit_ratio"], digits=4) for t in tiers]),
        ("block hits", [fv(t["block_hits"]) for t in tiers]),
        ("read", [format_bytes(t["bytes_read"]) for t in tiers]),
        ("written", [format_bytes(t["bytes_written"]) for t in tiers]),
        ("evictions", [fv(t["evictions"]) for t in tiers])])
    _print_misses(con, s)
    p = Table("per request", "p50", "p90", "p99", "mean", box=None, pad_edge=False)
    for column in p.columns[1:]:
        column.justify = "right"
    for key, label in (("ttft_ms", "TTFT (ms)"), ("metadata_us", "metadata (µs)"), ("load_us", "load (µs)"),
                       ("prefill_ms", "prefill (ms)")):
        p.add_row(label, *(fv(s[key][q]) for q in ("p50", "p90", "p99", "mean")))
    print_table(con, p)
    if s.get("marginal"):
        con.print("[bold]marginal value per tier[/] (the next step of one tier, the others as configured)")
        for m in s["marginal"]:
            con.print(f"  {m['sentence']}")
    if out is not None:
        con.print(f"per-request results: {out}", soft_wrap=True)


MISS_LABELS = {"cold": "cold", "capacity": "capacity", "prefix_broken": "prefix broken", "admission": "admission"}


def _print_misses(con, s: dict) -> None:
    """The miss taxonomy: overall in one line, then per tier (the accesses falling through it)."""
    overall = s["misses"]
    total = sum(overall.values())
    share = (lambda n: f" ({fv(n / total, unit='%')})") if total else (lambda n: "")
    con.print(f"misses {fv(total)} (accesses not served as prefix hits): "
              + ", ".join(f"{label} {fv(overall[c])}{share(overall[c])}" for c, label in MISS_LABELS.items()))
    tiers = s["tiers"]
    print_by_column(con, "misses per tier (accesses falling through it)", [t["name"] for t in tiers], [
        ("misses", [fv(sum(t["misses"].values())) for t in tiers]),
        *((label, [fv(t["misses"][c]) for t in tiers]) for c, label in MISS_LABELS.items())])


def _size(n: float) -> str:
    """A short size for a crowded table: 48G, 3.84T."""
    return format_bytes(n).replace(" ", "").replace("B", "").replace("k", "K") or "0"


def _caps_cell(sw, row: dict, bb: int) -> str:
    return "/".join(_size(row[f"cap_{n}"] * bb) for n in sw.tier_names)


def _print_facts(con, sw) -> None:
    """The analysis figures the candidate capacities come from, and the prices."""
    f = sw.facts
    if f is not None:
        hot = " / ".join(f"{s.blocks:,}" for s in f.hot_sets)
        knees = ", ".join(f"{s.blocks:,} blocks (hit ratio {h:.3f})" for s, h in zip(f.knees, f.knee_hit_ratios))
        ws = f"; working set {f.working_set.blocks:,} blocks ({f.working_set_window_s:,.0f}-s windows)" if f.working_set else ""
        knees = f"exact LRU curve knee(s) at {knees}" if knees else "no knee in the exact LRU curve"
        con.print(f"analyses: {f.one_hit_share:.0%} of blocks accessed once; hot sets 50/80/90/99% of accesses = "
                  f"{hot} blocks; {knees}{ws}")
    try:
        from .replay.prices import tier_prices
        tiers = ", ".join(f"{p.tier} ${p.gb_hour:g}" for p in tier_prices(sw.base))
        con.print(f"prices: {tiers} per GB-hour; GPU ${sw.base.prices.gpu_hour:g} per hour")
    except KvctraceError:
        pass


def _print_frontier(con, sw, bb: int) -> None:
    f = sw.frontier
    t = Table("#", "policy", "adm", "/".join(sw.tier_names), "mem$/h", "GPU-s/h", "net$/h", "$/$", box=None,
              title="cost frontier: memory $ per hour vs prefill GPU time saved per hour of trace")
    for column in t.columns[3:]:
        column.justify = "right"
    for row in f.iter_rows(named=True):
        t.add_row(f"{row['rank']}{'*' if row['knee'] else ''}", row["policy"], f">={row['admission']}",
                  _caps_cell(sw, row, bb), f"{row['memory_usd_per_hour']:,.2f}",
                  f"{row['prefill_saved_gpu_s_per_hour']:,.0f}", f"{row['net_usd_per_hour']:,.2f}",
                  "" if row["marginal"] is None else f"{row['marginal']:,.2f}",
                  style="bold green" if row["knee"] else None)
    print_table(con, t)
    con.print("[dim]GPU-s/h: prefill GPU-seconds saved per hour of trace; net = GPU $ saved - memory $; "
              "$/$: GPU $ saved per extra memory $ from the previous point; * the knee (largest net saving)[/dim]")


def print_recommendation(rec, top: int, path) -> None:
    import polars as pl

    from .replay.ranking import objective as get_objective
    sw = rec.sweep
    obj = get_objective(sw.objective)
    con = console()
    bb = sw.base.block_bytes(sw.block_size)
    n = sw.replays
    con.print(f"[bold]{sw.table.height}[/] configs from {sw.table['replay'].n_unique()} replays ({n.get('stack', 0)} "
              f"from one stack-distance pass, {n.get('kernel', 0)} by the engine), {sw.search} search, "
              f"ranked by {sw.objective}")
    _print_facts(con, sw)
    if sw.objective == "cost" and sw.frontier.height:
        _print_frontier(con, sw, bb)
    shown = {"prefix_hit_ratio": "prefix", "ttft_mean_ms": "mean", "ttft_p99_ms": "p99"}
    if obj.column not in shown:    # the objective's own column instead of the prefix hit ratio
        shown = {obj.column: {"cost": "net$/h", "prefill-saved": "GPU-s/h"}.get(obj.name, obj.name),
                 "ttft_mean_ms": "mean", "ttft_p99_ms": "p99"}
    cols = shown
    t = Table("#", "index", "policy", "adm", "/".join(sw.tier_names), *cols.values(), box=None,
              title=f"top {top} by {sw.objective}")
    for column in t.columns[4:]:
        column.justify = "right"
    rows = sw.table.head(top)
    if rec.row["rank"] > top:
        rows = pl.concat([rows, sw.table.filter(pl.col("rank") == rec.row["rank"])])
    digits = {"prefix_hit_ratio": 4, "net_usd_per_hour": 2, "prefill_saved_gpu_s_per_hour": 0}
    for row in rows.iter_rows(named=True):
        t.add_row(str(row["rank"]), row["index"], row["policy"], f">={row['admission']}", _caps_cell(sw, row, bb),
                  *(fv(row[c], digits=digits.get(c, 1)) for c in cols),
                  style="bold green" if row["rank"] == rec.row["rank"] else None)
    print_table(con, t)
    con.print(f"[dim]adm: admitted to {sw.tier_names[0]} after that many accesses; capacities in bytes; "
              + ("prefix: prefix hit ratio; " if "prefix_hit_ratio" in cols else "")
              + ("net$/h: GPU $ saved - memory $ per hour; " if obj.name == "cost" else "")
              + "mean, p99: TTFT (ms)[/dim]")
    r = rec.row
    con.print(f"[bold]recommended[/] (rank {r['rank']}): index {r['index']}, policy {r['policy']}, admit >= "
              f"{r['admission']} to {sw.tier_names[0]}, "
              + ", ".join(f"{n} {format_bytes(r[f'cap_{n}'] * bb)}" for n in sw.tier_names))
    reasons = Table.grid(padding=(0, 1))     # wrapped reasons keep their indent
    reasons.add_column(no_wrap=True)
    reasons.add_column()
    for line in rec.reasons:
        reasons.add_row("  -", line)
    con.print(reasons)
    con.print(f"config written to {path}", soft_wrap=True)


# ---- bench-index ------------------------------------------------------------------------------

def print_bench_index(result, comparison) -> None:
    con = console()
    s = result.summary()
    con.print(f"[bold]Redis {s['server']['version']}[/] at {result.url}: {result.n_requests:,} requests of "
              f"{result.trace}, {result.clients} client(s), keys under {result.key_prefix!r}")
    for d in s["designs"]:
        t = Table("op", "count", "p50 µs", "p90 µs", "p99 µs", box=None,
                  title=f"design {d['design']}: {d['throughput_ops_s']:,.0f} ops/s")
        for op, n in d["ops"].items():
            q = d["latency_us"][op]
            t.add_row(op, f"{n:,}", *((f"{q[k]:,.1f}" for k in ("p50", "p90", "p99")) if q else ("-",) * 3))
        print_table(con, t)
    if comparison:
        t = Table("design", "op", "model", "p50 meas.", "p50 model", "p99 meas.", "p99 model", box=None,
                  title="measured vs modelled latency (µs)")
        for row in comparison:
            t.add_row(row["design"], row["op"], row["model"], *(f"{row[k]:,.1f}" for k in (
                "measured_p50_us", "modelled_p50_us", "measured_p99_us", "modelled_p99_us")))
        print_table(con, t)
    con.print(f"keys written {s['keys_written']:,}, keys left {s['keys_left']:,}")
