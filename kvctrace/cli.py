"""Command line: thin. Each command parses options, calls one library function (kvctrace.commands)
and renders the result; KvctraceError becomes a one-line message and exit code 1, never a traceback."""
from __future__ import annotations

import functools
import inspect
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import KvctraceError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure how an LLM serving trace reuses its KV cache, and what to build for it.")


def handle_errors(fn):
    """Turn KvctraceError into 'error: <file, line, field: message (hint)>' and exit code 1;
    an OSError (an output path that cannot be written) into 'error: <path>: <reason>'."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KvctraceError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(1)
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            print(f"error: {where}{err.strerror or err}", file=sys.stderr)
            raise typer.Exit(1)
    return wrapper


# Options shared by every command that reads a trace (same names as open_trace's keywords); the
# help lists them in their own panel, after the command's own options.
_READING = "Reading the trace"
TraceArg = Annotated[Path, typer.Argument(help="Trace file (.jsonl[.gz|.zst], .json, .csv, .parquet) or a kvctrace .duckdb")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", rich_help_panel=_READING, help="mooncake | bailian | tokens | prompts | lengths (default: detect from the first record)")]
BlockSizeOpt = Annotated[Optional[int], typer.Option("--block-size", rich_help_panel=_READING, help="Tokens per block (default: the format's own: mooncake 512, bailian 16, tokens 16, prompts 16)")]
PartialOpt = Annotated[Optional[str], typer.Option("--partial-block", rich_help_panel=_READING, help="Last partial token block: include (Mooncake) or drop (vLLM) (default: drop for prompts, else include)")]
CoarsenOpt = Annotated[int, typer.Option("--coarsen", rich_help_panel=_READING, help="Re-block at K times the block size (chained ids of K-block groups)")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad-lines", rich_help_panel=_READING, help="Ingest the good lines; keep rejected ones in the rejects table and report the count")]
DbOpt = Annotated[Optional[Path], typer.Option("--db", rich_help_panel=_READING, help="DuckDB file to ingest into (re-used if it already holds this trace)")]
TokenizerOpt = Annotated[Optional[str], typer.Option("--tokenizer", rich_help_panel=_READING, help="Text traces (prompts): a tokenizer.json, a model folder holding one, or 'bytes' (UTF-8 bytes as tokens, an approximation); local files only")]
ChatTemplateOpt = Annotated[Optional[Path], typer.Option("--chat-template", rich_help_panel=_READING, help="Text traces: Jinja chat template file (default: the tokenizer folder's, else a plain 'role: content' template)")]
_TRACE_OPTIONS = (("fmt", FormatOpt, None), ("block_size", BlockSizeOpt, None), ("partial_block", PartialOpt, None),
                  ("coarsen", CoarsenOpt, 1), ("skip_bad_lines", SkipBadOpt, False), ("db", DbOpt, None),
                  ("tokenizer", TokenizerOpt, None), ("chat_template", ChatTemplateOpt, None))


def trace_options(fmt, block_size, partial_block, coarsen, skip_bad_lines, db, tokenizer=None, chat_template=None) -> dict:
    """The keyword arguments of kvctrace.open_trace built from the shared CLI options."""
    return dict(format=fmt, block_size=block_size, partial_block=partial_block,
                coarsen=coarsen, skip_bad_lines=skip_bad_lines, db=db, tokenizer=tokenizer,
                chat_template=chat_template)


def _register(name: str, fn, params: list) -> None:
    """Register ``fn(**options)`` as command ``name`` with a generated parameter list: typer
    reads a function's signature, so the command gets one built from ``params``."""
    def command(**kwargs):
        return fn(**kwargs)
    command.__name__ = command.__qualname__ = name
    command.__doc__ = fn.__doc__
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    app.command(name=name)(handle_errors(command))


def trace_command(db_option=DbOpt):
    """Register the decorated function as a command that reads a trace: after its own
    parameters it gets the shared trace options (declared once, in _TRACE_OPTIONS) and receives
    them as ``trace_opts``, the keyword arguments of ``open_trace``. ``db_option`` replaces the
    declaration of --db (ingest writes a database rather than re-using one)."""
    def register(fn):
        kw = inspect.Parameter.KEYWORD_ONLY
        own = [p.replace(kind=kw) for p in inspect.signature(fn, eval_str=True).parameters.values()
               if p.name != "trace_opts"]
        shared = [inspect.Parameter(name, kw, default=default, annotation=db_option if name == "db" else option)
                  for name, option, default in _TRACE_OPTIONS]

        @functools.wraps(fn)
        def call(**kwargs):
            opts = trace_options(*(kwargs.pop(name) for name, _, _ in _TRACE_OPTIONS))
            return fn(trace_opts=opts, **kwargs)
        _register(fn.__name__, call, own + shared)
        return fn
    return register


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object instead of the readable output")]


# ---- ingest / info ---------------------------------------------------------------------------

def _with_status(trace: Path, command, options: dict) -> dict:
    """Run an ingesting command with a progress line on a terminal."""
    from .progress import status

    with status(f"ingesting {trace.name}") as update:
        return command(trace, options, progress=update)


@trace_command(db_option=Annotated[Optional[Path], typer.Option(
    "--db", rich_help_panel=_READING, help="DuckDB file to write (default: <trace name>.duckdb here)")])
def ingest(trace: TraceArg, json: JsonOpt = False, trace_opts: dict = None):
    """Ingest a trace into a DuckDB file (requests, accesses, blocks, meta, rejects tables)."""
    import json as json_mod

    from .commands import ingest as run_ingest

    info = _with_status(trace, run_ingest, trace_opts)
    if json:
        print(json_mod.dumps(info))
        return
    print(f"{info['path']}: {info['format']}, {info['requests']:,} requests, "
          + (f"{info['accesses']:,} block accesses, {info['unique_blocks']:,} unique blocks, "
             if info["has_block_ids"] else "no block ids, ")
          + f"{info['rejected_lines']:,} rejected lines -> {info['db']}")
    if not info["sorted_input"]:
        print("note: requests were not in timestamp order; they were sorted", file=sys.stderr)


@trace_command()
def info(trace: TraceArg, json: JsonOpt = False, trace_opts: dict = None):
    """Facts about a trace or a kvctrace database: format, block size, requests, accesses,
    unique blocks, duration, rejected lines, whether the input was sorted."""
    import json as json_mod

    from .commands import info as trace_info

    facts = _with_status(trace, trace_info, trace_opts)
    if json:
        print(json_mod.dumps(facts))
        return
    _print_info(facts, trace_opts["db"])


# ---- analyze / report ------------------------------------------------------------------------

OutDirOpt = Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: reports/<trace name>/)")]


@trace_command()
def analyze(trace: TraceArg, out: OutDirOpt = None, json: JsonOpt = False,
            trace_opts: dict = None):
    """Run every analysis (reuse, MRC, access pattern, hotness, prefix structure, workload);
    print a summary and write summary.json (and the HTML report)."""
    from .commands import analyze as run_analyze

    done = run_analyze(trace, trace_opts, out)
    if json:
        print(done.result.to_json())
        print(f"wrote {done.summary_path}\nwrote {done.report_path}", file=sys.stderr)
        return
    _print_analysis(done.result.summary(), [done.summary_path, done.report_path])


# Replay config options (report, replay, recommend).
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Replay config TOML (tiers, policies, index, model, GPU)")]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", help="Shipped config preset, e.g. h100-llama3-8b, h100-llama3-70b (default when no --config: h100-llama3-8b)")]


@trace_command()
def report(trace: TraceArg, out: OutDirOpt = None,
           replay: Annotated[bool, typer.Option("--replay", help="Add the replay section: every policy at 1/16x-4x the config's tier capacities, and every index model")] = False,
           config: ConfigOpt = None, preset: PresetOpt = None,
           recommend: Annotated[bool, typer.Option("--recommend", help="Also sweep configs and add the recommendation with its reasons (implies --replay, around the recommended config)")] = False,
           trace_opts: dict = None):
    """Write the self-contained HTML report (report.html) for a trace; given a kvctrace .duckdb
    it re-renders from the stored tables without re-ingesting. --config or --preset imply --replay."""
    from .commands import report as write_trace_report

    path = write_trace_report(trace, trace_opts, out, replay=replay, config=config, preset=preset,
                              recommend=recommend)
    print(f"wrote {path}")


# ---- replay / recommend (policy replayer) ----------------------------------------------------

@trace_command()
def replay(trace: TraceArg, config: ConfigOpt = None, preset: PresetOpt = None,
           policy: Annotated[Optional[str], typer.Option("--policy", help="One-tier run: eviction policy (lru, fifo, lfu, s3fifo, prefix-lru, belady)")] = None,
           capacity_blocks: Annotated[Optional[int], typer.Option("--capacity-blocks", help="One-tier run: capacity in blocks")] = None,
           index: Annotated[Optional[str], typer.Option("--index", help="Override the metadata index model (redis-get, redis-mget, sherman, chime, rdma-hash)")] = None,
           out: Annotated[Optional[Path], typer.Option("--out", help="Write the per-request results to this Parquet file")] = None,
           json: JsonOpt = False, trace_opts: dict = None):
    """Replay a trace through cache tiers and a metadata index: prefix/block hits per tier,
    metadata, load and prefill time, TTFT percentiles."""
    import json as _json

    from .commands import replay as run_replay
    summary = run_replay(trace, trace_opts, config=config, preset=preset, policy=policy,
                         capacity_blocks=capacity_blocks, index=index, out=out).summary()
    if json:
        print(_json.dumps(summary, indent=2))
        return
    _print_replay(summary, out)


@trace_command()
def recommend(trace: TraceArg, config: ConfigOpt = None, preset: PresetOpt = None,
              budget: Annotated[Optional[list[str]], typer.Option("--budget", help="Memory budget of a tier, TIER=SIZE (e.g. hbm=48GB); repeat per tier; default: the preset's capacities")] = None,
              objective: Annotated[str, typer.Option("--objective", help="p99-ttft, p90-ttft, p50-ttft, mean-ttft or hit-ratio")] = "p99-ttft",
              policies: Annotated[Optional[str], typer.Option("--policies", help="Comma-separated policies to sweep (default: lru,fifo,lfu,s3fifo,prefix-lru)")] = None,
              indexes: Annotated[Optional[str], typer.Option("--indexes", help="Comma-separated index models (default: all: redis-get,redis-mget,sherman,chime,rdma-hash)")] = None,
              admission: Annotated[Optional[str], typer.Option("--admission", help="Comma-separated admission thresholds for the top tier (default: 1,2)")] = None,
              fractions: Annotated[Optional[str], typer.Option("--fractions", help="Comma-separated fractions of each tier's budget (default: 0.5,1)")] = None,
              tolerance: Annotated[float, typer.Option("--tolerance", help="Recommend the smallest-memory config within this relative distance of the best objective")] = 0.01,
              max_memory: Annotated[Optional[str], typer.Option("--max-memory", help="Total memory budget across all tiers (e.g. 2TB); configs above it are dropped")] = None,
              workers: Annotated[str, typer.Option("--workers", help="threads (Numba prange) or processes")] = "threads",
              top: Annotated[int, typer.Option("--top", help="Rows of the ranked table to print")] = 15,
              out: Annotated[Path, typer.Option("--out", help="Where to write the recommended config TOML")] = Path("kvctrace-recommended.toml"),
              json: JsonOpt = False, trace_opts: dict = None):
    """Sweep index model x tier capacities x policy x admission threshold, rank by the
    objective, explain the winner and write its config TOML (for `kvctrace replay --config`)."""
    import json as _json

    from .commands import recommend as run_recommend

    rec, path = run_recommend(trace, trace_opts, config=config, preset=preset, budgets=budget,
                              objective=objective, policies=policies, indexes=indexes, admission=admission,
                              fractions=fractions, tolerance=tolerance, max_memory=max_memory,
                              workers=workers, out=out)
    if json:
        print(_json.dumps({**rec.summary(top), "config_path": str(path)}, indent=2, default=str))
        return
    _print_recommendation(rec, top, path)


# ---- synth -----------------------------------------------------------------------------------
# The structure options are generated from kvctrace.synth.SynthConfig, so the CLI, the Python
# API and their help texts cannot drift apart.

def _synth(out: Path, fmt: str, requests: int, seed: int, block_size: Optional[int], **structure):
    """Write a synthetic trace (mooncake, bailian, tokens or prompts format) with controllable structure:
    shared system prompts, multi-turn sessions, Zipf-popular documents, Poisson or bursty arrivals;
    prompts writes chat text (see kvctrace/synth_prompts.py)."""
    from .synth import write

    s = write(out, fmt, requests, seed, block_size, **structure)
    detail = f"{s.blocks:,} block ids (block size {s.block_size})" if s.block_size else f"{s.tokens:,} tokens"
    detail += " (about; text)" if fmt == "prompts" else ""
    print(f"wrote {s.path}: {s.format}, {s.requests:,} requests, {s.sessions:,} sessions, {detail}, "
          f"{s.duration_s:,.1f} s")


def _register_synth() -> None:
    import dataclasses

    from .synth import FORMATS, SynthConfig

    kw = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("out", kw, annotation=Annotated[Path, typer.Argument(help="Output file (.jsonl, .jsonl.gz, .jsonl.zst)")]),
        inspect.Parameter("fmt", kw, default="mooncake", annotation=Annotated[str, typer.Option("--format", help=" | ".join(FORMATS))]),
        inspect.Parameter("requests", kw, default=1000, annotation=Annotated[int, typer.Option("--requests", help="Number of requests")]),
        inspect.Parameter("seed", kw, default=0, annotation=Annotated[int, typer.Option("--seed", help="Random seed (same seed, same trace)")]),
        inspect.Parameter("block_size", kw, default=None, annotation=Annotated[Optional[int], typer.Option("--block-size", help="Tokens per hashed block of the mooncake and bailian formats (default: mooncake 512, bailian 16)")]),
    ]
    types = {"int": int, "float": float, "str": str}
    for f in dataclasses.fields(SynthConfig):
        py_type = types[f.type] if isinstance(f.type, str) else f.type
        params.append(inspect.Parameter(f.name, kw, default=f.default, annotation=Annotated[
            py_type, typer.Option("--" + f.name.replace("_", "-"), rich_help_panel="Workload structure",
                                  help=f.metadata["help"])]))
    _register("synth", _synth, params)


_register_synth()


# ---- rendering -------------------------------------------------------------------------------

# Rows shown on the console per section (everything is in summary.json); sections not listed
# show all their scalar values.
_HEADLINE = {
    "reuse": {"ideal_hit_ratio_blocks", "ideal_hit_ratio_tokens", "ideal_prefix_hit_ratio_blocks",
              "request_hit_rate_mean", "request_hit_rate_share_ge_0_5", "request_hit_rate_share_ge_0_8",
              "request_hit_rate_share_gt_0_8", "prefix_and_block_hits_agree", "one_hit_block_share",
              "reuse_time_s_p50", "reuse_time_requests_p50", "shards.fixed_rate.mae_linear",
              "shards.fixed_size.mae_linear"},
    "access": {"sequential_share_mean_per_request", "sequential_share_blocks", "runs_test_share_p_gt_0_05",
               "runs_test_requests_tested", "point_lookups", "range_scans", "mean_runs_per_request"},
    "hotness": {"gini", "zipf_alpha", "top_1pct_access_share", "top_10pct_access_share",
                "one_hit_block_share", "hot_set_block_share_80pct", "hot_set_block_share_99pct",
                "drift_jaccard_mean"},
    "prefix": {"tree.nodes", "tree.max_depth", "tree.mean_depth", "tree.max_fanout",
               "groups.shared_prefix_groups", "groups.largest_group_requests",
               "groups.largest_group_prefix_tokens", "groups.reusable_prefix_tokens_share_of_input"},
    "workload": {"mean_rate_rps", "peak_window_requests", "interarrival_cv", "index_of_dispersion",
                 "input_len_mean", "input_len_p50", "input_len_p99", "output_len_mean", "output_len_p50"},
}


def _flatten(section: dict, prefix: str = "") -> list:
    """(dotted key, scalar) pairs of a summary section; lists are left to summary.json."""
    rows = []
    for key, value in section.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            rows.append((f"{prefix}{key}", value))
    return rows


def _print_analysis(summary: dict, written: list) -> None:
    """Readable rich rendering of an analysis summary: one table per section, scalars only."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = summary["trace"]
    console.print(f"[bold]{t['path']}[/bold]  format {t['format']}, block size {t['block_size']}, "
                  f"{t['requests']:,} requests, {t['accesses']:,} block accesses, "
                  f"{t['unique_blocks']:,} distinct blocks, {t['duration_s']:.1f} s"
                  + (f", {t['rejected_lines']:,} rejected lines" if t["rejected_lines"] else ""))
    if t.get("tokenizer"):  # text traces (bytes: labelled an approximation)
        console.print(f"tokenizer {t['tokenizer']}, chat template {t['chat_template']}", markup=False, highlight=False)
    if not t.get("sorted_input", True):
        console.print("[yellow]note: requests were not in timestamp order; they were sorted[/yellow]")

    def fmt_value(v):
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            if v.is_integer() and abs(v) >= 1:
                return f"{v:,.0f}"
            return f"{v:.4f}" if abs(v) < 100 else f"{v:,.1f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    for name in ("reuse", "access", "hotness", "prefix", "workload"):
        section = summary.get(name) or {}
        if not section.get("available", False):
            console.print(f"[bold]{name}[/bold]: [yellow]{section.get('reason', 'not available')}[/yellow]")
            continue
        rows = _flatten(section)
        wanted = _HEADLINE.get(name)
        if wanted:
            rows = [r for r in rows if r[0] in wanted]
        table = Table(title=name, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column("metric", style="cyan")
        table.add_column("value", justify="right")
        for key, value in rows:
            if key == "available" or value is None or (isinstance(value, str) and len(value) > 60):
                continue  # definitions and the rest live in summary.json
            table.add_row(key, fmt_value(value))
        console.print(table)
    mrc = summary.get("mrc")
    if mrc:
        table = Table(title="exact block-LRU hit ratio by capacity", title_justify="left", box=None)
        table.add_column("capacity (blocks)", justify="right")
        table.add_column("hit ratio", justify="right")
        step = max(1, len(mrc) // 10)
        for point in mrc[::step] + ([mrc[-1]] if (len(mrc) - 1) % step else []):
            table.add_row(f"{point['capacity_blocks']:,}", f"{point['hit_ratio']:.4f}")
        console.print(table)
    for path in written:
        console.print(f"wrote {path}")


def _print_replay(s: dict, out) -> None:
    from rich.console import Console
    from rich.table import Table

    from .replay.config import format_bytes
    con = Console()
    con.print(f"[bold]{s['config']}[/]: {s['n_requests']:,} requests, {s['n_accesses']:,} block accesses "
              f"({s['block_size']} tokens/block), index {s['index']}, overlap {s['overlap']}")
    con.print(f"prefix hit ratio {s['prefix_hit_ratio']:.4f}   block hit ratio {s['block_hit_ratio']:.4f}   "
              f"token hit ratio {s['token_hit_ratio']:.4f}")
    t = Table("tier", "policy", "capacity", "prefix hits", "block hits", "read", "written", "evictions")
    for tier in s["tiers"]:
        t.add_row(tier["name"], tier["policy"], f"{tier['capacity_blocks']:,} blocks ({format_bytes(tier['capacity_bytes'])})",
                  f"{tier['prefix_hits']:,} ({tier['prefix_hit_ratio']:.3f})", f"{tier['block_hits']:,}",
                  format_bytes(tier["bytes_read"]), format_bytes(tier["bytes_written"]), f"{tier['evictions']:,}")
    con.print(t)
    p = Table("per request", "p50", "p90", "p99", "mean")
    for key, label in (("ttft_ms", "TTFT (ms)"), ("metadata_us", "metadata (µs)"), ("load_us", "load (µs)"),
                       ("prefill_ms", "prefill (ms)")):
        v = s[key]
        p.add_row(label, *(f"{v[q]:,.3f}" for q in ("p50", "p90", "p99", "mean")))
    con.print(p)
    if out is not None:
        con.print(f"per-request results: {out}")


def _print_info(info: dict, db) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{info['path']}[/bold]", soft_wrap=True, markup=True, highlight=False)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("key", style="cyan")
    table.add_column("value", justify="right")
    blocks = info["has_block_ids"]
    rows = [
        ("format", info["format"]),
        ("block size (tokens)", f"{info['block_size']:,}" + (f" ({info['source_block_size']:,} x {info['coarsen']})" if info["coarsen"] > 1 else "")),
        ("requests", f"{info['requests']:,}"),
        ("block accesses", f"{info['accesses']:,}" if blocks else "n/a (no block ids)"),
        ("unique blocks", f"{info['unique_blocks']:,}" if blocks else "n/a (no block ids)"),
        ("duration", f"{info['duration_s']:,.1f} s"),
        ("input tokens", f"{info['input_tokens']:,}"),
        ("output tokens", f"{info['output_tokens']:,}"),
        ("rejected lines", f"{info['rejected_lines']:,}"),
        ("sorted input", "yes" if info["sorted_input"] else "no (requests were sorted by timestamp)"),
    ]
    if info.get("tokenizer"):  # text traces: which tokenizer, which template, what was skipped
        rows += [("tokenizer", info["tokenizer"]), ("chat template", info["chat_template"]),
                 ("non-text parts skipped", f"{info['non_text_parts_skipped']:,}")]
        if info["message_start_fallbacks"]:
            rows.append(("message starts fell back", f"{info['message_start_fallbacks']:,} requests"))
    if db is not None:
        rows.append(("database", str(db)))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if info["rejected_lines"]:
        print(f"note: {info['rejected_lines']:,} lines were rejected; see the rejects table", file=sys.stderr)


def _print_recommendation(rec, top, path) -> None:
    import polars as pl
    from rich.console import Console
    from rich.table import Table

    from .replay.config import format_bytes
    sw = rec.sweep
    con = Console()
    bb = sw.base.block_bytes(sw.block_size)
    con.print(f"[bold]{sw.table.height}[/] configs ({sw.table['replay'].n_unique()} replays x "
              f"{sw.table['index'].n_unique()} index models), ranked by {sw.objective}")
    def short(n):
        return format_bytes(n).replace(" ", "").replace("B", "")
    t = Table("#", "index", "policy", "adm", " / ".join(sw.tier_names), "prefix hit", "TTFT p50 ms",
              "TTFT p99 ms", "meta p99 µs", title=f"top {top} by {sw.objective}")
    rows = sw.table.head(top)
    if rec.row["rank"] > top:
        rows = pl.concat([rows, sw.table.filter(pl.col("rank") == rec.row["rank"])])
    for row in rows.iter_rows(named=True):
        style = "bold green" if row["rank"] == rec.row["rank"] else None
        t.add_row(str(row["rank"]), row["index"], row["policy"], f">={row['admission']}",
                  "/".join(short(row[f"cap_{n}"] * bb) for n in sw.tier_names), f"{row['prefix_hit_ratio']:.4f}",
                  f"{row['ttft_p50_ms']:,.1f}", f"{row['ttft_p99_ms']:,.1f}", f"{row['metadata_p99_us']:,.1f}",
                  style=style)
    con.print(t)
    r = rec.row
    con.print(f"[bold]recommended[/] (rank {r['rank']}): index {r['index']}, policy {r['policy']}, admit >= "
              f"{r['admission']} to {sw.tier_names[0]}, "
              + ", ".join(f"{n} {format_bytes(r[f'cap_{n}'] * bb)}" for n in sw.tier_names))
    for line in rec.reasons:
        con.print(f"  - {line}")
    con.print(f"config written to {path}")
