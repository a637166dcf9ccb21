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
FormatOpt = Annotated[Optional[str], typer.Option("--format", rich_help_panel=_READING, help="mooncake | bailian | tokens | lengths (default: detect from the first record)")]
BlockSizeOpt = Annotated[Optional[int], typer.Option("--block-size", rich_help_panel=_READING, help="Tokens per block (default: the format's own: mooncake 512, bailian 16, tokens 16)")]
PartialOpt = Annotated[str, typer.Option("--partial-block", rich_help_panel=_READING, help="Last partial token block: include (Mooncake) or drop (vLLM)")]
CoarsenOpt = Annotated[int, typer.Option("--coarsen", rich_help_panel=_READING, help="Re-block at K times the block size (chained ids of K-block groups)")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad-lines", rich_help_panel=_READING, help="Ingest the good lines; keep rejected ones in the rejects table and report the count")]
DbOpt = Annotated[Optional[Path], typer.Option("--db", rich_help_panel=_READING, help="DuckDB file to ingest into (re-used if it already holds this trace)")]
_TRACE_OPTIONS = (("fmt", FormatOpt, None), ("block_size", BlockSizeOpt, None), ("partial_block", PartialOpt, "include"),
                  ("coarsen", CoarsenOpt, 1), ("skip_bad_lines", SkipBadOpt, False), ("db", DbOpt, None))


def trace_options(fmt, block_size, partial_block, coarsen, skip_bad_lines, db) -> dict:
    """The keyword arguments of kvctrace.open_trace built from the shared CLI options."""
    return dict(format=fmt, block_size=block_size, partial_block=partial_block,
                coarsen=coarsen, skip_bad_lines=skip_bad_lines, db=db)


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
        _register(fn.__name__.replace("_", "-"), call, own + shared)  # bench_index -> bench-index
        return fn
    return register


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object instead of the readable output")]
# Where independent pieces of work run (kvctrace/engines): shared by analyze, report, recommend.
_ENGINE = "Engine"
EngineOpt = Annotated[str, typer.Option("--engine", rich_help_panel=_ENGINE, help="local (this process) or ray (one Ray task per replay config or partition; needs the 'ray' extra)")]
RayAddressOpt = Annotated[Optional[str], typer.Option("--ray-address", rich_help_panel=_ENGINE, help="Ray cluster to connect to (host:port, ray://host:10001, or auto); default: start a local Ray with this machine's CPUs")]
PartitionsOpt = Annotated[Optional[int], typer.Option("--partitions", help="Partitioned reuse analysis: exact stack distances per 1/P block partition, merged into the MRC (docs/ray.md)")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Seed of the block-to-partition hash (default 0; an export folder keeps its own)")]


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
    from .formatting import format_value as fv

    info = _with_status(trace, run_ingest, trace_opts)
    if json:
        print(json_mod.dumps(info))
        return
    print(f"{info['path']}: {info['format']}, {fv(info['requests'])} requests, "
          + (f"{fv(info['accesses'])} block accesses, {fv(info['unique_blocks'])} unique blocks, "
             if info["has_block_ids"] else "no block ids, ")
          + f"{fv(info['rejected_lines'])} rejected lines -> {info['db']}")
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
            partitions: PartitionsOpt = None, seed: SeedOpt = None, engine: EngineOpt = "local",
            ray_address: RayAddressOpt = None, trace_opts: dict = None):
    """Run every analysis (reuse, MRC, access pattern, hotness, prefix structure, workload);
    print a summary and write summary.json (and the HTML report). With --partitions, --engine
    ray or an export folder: the partitioned reuse analysis only (partitioned.json)."""
    from .commands import analyze as run_analyze

    if partitions is not None or engine != "local" or trace.is_dir():
        from .commands import analyze_partitioned
        result, path = analyze_partitioned(trace, trace_opts, out, partitions=partitions, seed=seed,
                                           engine=engine, ray_address=ray_address)
        if json:
            print(result.to_json())
            print(f"wrote {path}", file=sys.stderr)
            return
        _print_partitioned(result, path)
        return
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
           engine: EngineOpt = "local", ray_address: RayAddressOpt = None, trace_opts: dict = None):
    """Write the self-contained HTML report (report.html) for a trace; given a kvctrace .duckdb
    it re-renders from the stored tables without re-ingesting. --config or --preset imply --replay."""
    from .commands import report as write_trace_report

    path = write_trace_report(trace, trace_opts, out, replay=replay, config=config, preset=preset,
                              recommend=recommend, engine=engine, ray_address=ray_address)
    print(f"wrote {path}")


# ---- replay / recommend (policy replayer) ----------------------------------------------------

CalibrationOpt = Annotated[Optional[Path], typer.Option("--calibration", help="Redis index cost model fitted by `kvctrace bench-index --calibrate` (TOML); replaces the Redis round trip and per-key cost")]

@trace_command()
def replay(trace: TraceArg, config: ConfigOpt = None, preset: PresetOpt = None,
           policy: Annotated[Optional[str], typer.Option("--policy", help="One-tier run: eviction policy (lru, fifo, lfu, s3fifo, prefix-lru, belady)")] = None,
           capacity_blocks: Annotated[Optional[int], typer.Option("--capacity-blocks", help="One-tier run: capacity in blocks")] = None,
           index: Annotated[Optional[str], typer.Option("--index", help="Override the metadata index model (redis-get, redis-mget, sherman, chime, rdma-hash)")] = None,
           out: Annotated[Optional[Path], typer.Option("--out", help="Write the per-request results to this Parquet file")] = None,
           calibration: CalibrationOpt = None, json: JsonOpt = False, trace_opts: dict = None):
    """Replay a trace through cache tiers and a metadata index: prefix/block hits per tier,
    metadata, load and prefill time, TTFT percentiles."""
    import json as _json

    from .commands import replay as run_replay
    summary = run_replay(trace, trace_opts, config=config, preset=preset, policy=policy,
                         capacity_blocks=capacity_blocks, index=index, out=out, calibration=calibration).summary()
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
              calibration: CalibrationOpt = None, json: JsonOpt = False, engine: EngineOpt = "local",
              ray_address: RayAddressOpt = None, trace_opts: dict = None):
    """Sweep index model x tier capacities x policy x admission threshold, rank by the
    objective, explain the winner and write its config TOML (for `kvctrace replay --config`)."""
    import json as _json

    from .commands import recommend as run_recommend

    rec, path = run_recommend(trace, trace_opts, config=config, preset=preset, budgets=budget,
                              objective=objective, policies=policies, indexes=indexes, admission=admission,
                              fractions=fractions, tolerance=tolerance, max_memory=max_memory,
                              workers=workers, out=out, calibration=calibration, engine=engine,
                              ray_address=ray_address)
    if json:
        print(_json.dumps({**rec.summary(top), "config_path": str(path)}, indent=2, default=str))
        return
    _print_recommendation(rec, top, path)


# ---- bench-index (live Redis) ------------------------------------------------------------------

@trace_command()
def bench_index(trace: TraceArg,
                redis: Annotated[str, typer.Option("--redis", help="Redis server URL, e.g. redis://127.0.0.1:6379/0 (password: redis://:PASS@HOST:PORT)")],
                design: Annotated[Optional[list[str]], typer.Option("--design", help="Key design: get, mget or zset; repeat for several (default: all three)")] = None,
                max_requests: Annotated[Optional[int], typer.Option("--max-requests", help="Replay only the first N requests in time order (default: all)")] = None,
                clients: Annotated[int, typer.Option("--clients", help="Closed-loop clients (threads, one connection each; requests dealt round-robin)")] = 1,
                key_prefix: Annotated[Optional[str], typer.Option("--key-prefix", help="Prefix of every key written (default: a fresh kvctrace:<random hex>:); must hold no keys yet")] = None,
                calibrate: Annotated[Optional[Path], typer.Option("--calibrate", help="Fit the Redis index cost model to the measurements and write it to this TOML (for replay/recommend --calibration)")] = None,
                json: JsonOpt = False, trace_opts: dict = None):
    """Replay the trace's metadata operations (lookups, then inserts of new blocks) against a live
    Redis server, per key design; latency percentiles per op and per 10 minutes of trace time.
    Keys live under a prefix and are deleted at the end and on Ctrl-C; nothing is flushed."""
    from .commands import bench_index as run_bench_index
    from .progress import status
    from .replay.index_bench import BenchInterrupted

    try:
        with status(f"bench-index {trace.name}") as update:
            result, comparison, fitted = run_bench_index(
                trace, trace_opts, redis_url=redis, designs=design, max_requests=max_requests, clients=clients,
                key_prefix=key_prefix, calibrate=calibrate, progress=update)
    except BenchInterrupted as err:
        print(f"interrupted: {err}", file=sys.stderr)
        raise typer.Exit(130)
    if fitted is not None:
        print(f"wrote {fitted[1]} (rtt {fitted[0].rtt_us:.2f} µs, {fitted[0].per_key_us:.4f} µs per key)", file=sys.stderr)
    if json:
        print(result.to_json())
        return
    _print_bench_index(result, comparison)


def _print_bench_index(result, comparison) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    s = result.summary()
    con.print(f"[bold]Redis {s['server']['version']}[/] at {result.url}: {result.n_requests:,} requests of "
              f"{result.trace}, {result.clients} client(s), keys under {result.key_prefix!r}")
    for d in s["designs"]:
        t = Table("op", "count", "p50 µs", "p90 µs", "p99 µs",
                  title=f"design {d['design']}: {d['throughput_ops_s']:,.0f} ops/s", title_justify="left")
        for op, n in d["ops"].items():
            q = d["latency_us"][op]
            t.add_row(op, f"{n:,}", *((f"{q[k]:,.1f}" for k in ("p50", "p90", "p99")) if q else ("-",) * 3))
        con.print(t)
    if comparison:
        t = Table("design", "op", "model", "measured p50", "modelled p50", "measured p99", "modelled p99",
                  title="measured vs modelled (µs)", title_justify="left")
        for row in comparison:
            t.add_row(row["design"], row["op"], row["model"], *(f"{row[k]:,.1f}" for k in (
                "measured_p50_us", "modelled_p50_us", "measured_p99_us", "modelled_p99_us")))
        con.print(t)
    con.print(f"keys written {s['keys_written']:,}, keys left {s['keys_left']:,}")


# ---- export ----------------------------------------------------------------------------------

@trace_command()
def export(trace: TraceArg,
           parquet: Annotated[Path, typer.Option("--parquet", help="Folder to write (must not exist or be empty): part=K/*.parquet, requests.parquet, kvctrace_export.json")],
           partitions: Annotated[int, typer.Option("--partitions", help="Number of block partitions P (a block's accesses all go to one partition)")],
           seed: Annotated[int, typer.Option("--seed", help="Seed of the block-to-partition hash")] = 0,
           json: JsonOpt = False, trace_opts: dict = None):
    """Export the accesses as Parquet, hash-partitioned by block, for `kvctrace analyze DIR`
    (each partition's task reads only its own files; docs/ray.md)."""
    import json as _json

    from .commands import export as run_export

    manifest = run_export(trace, trace_opts, parquet=parquet, partitions=partitions, seed=seed)
    if json:
        print(_json.dumps(manifest, indent=2))
        return
    sizes = manifest["partition_accesses"]
    print(f"wrote {manifest['path']}: {manifest['accesses']:,} accesses of {manifest['requests']:,} requests in "
          f"{manifest['partitions']} partitions (seed {manifest['seed']}; {min(sizes):,} to {max(sizes):,} accesses each)")


# ---- rejects ---------------------------------------------------------------------------------

# Control characters (a terminal escape in a hostile line) are shown as escapes, not sent.
_SHOWN = {c: f"\\x{c:02x}" for c in [*range(32), 127]} | {ord("\t"): "\\t"}


def _shown_raw(row: dict, width: int = 200) -> str:
    text = bytes.fromhex(row["raw_hex"]).decode("utf-8", "backslashreplace") if "raw_hex" in row else row["raw"]
    text = (text or "").translate(_SHOWN)
    return text if len(text) <= width else text[:width - 1] + "…"


@trace_command()
def rejects(trace: TraceArg,
            limit: Annotated[int, typer.Option("--limit", help="Show at most N rejected lines (0: all)")] = 20,
            json: JsonOpt = False, trace_opts: dict = None):
    """The lines that were not ingested, with the reason and the line as it was (of a kvctrace
    database, or of a trace file read with --skip-bad-lines)."""
    import json as json_mod

    from .commands import rejects as read_rejects

    found = read_rejects(trace, trace_opts, limit)
    if json:
        print(json_mod.dumps(found, allow_nan=False, ensure_ascii=False))
        return
    shown = len(found["rejects"])
    print(f"{found['path']}: {found['rejected_lines']:,} rejected lines"
          + (f" (first {shown:,}; --limit 0 shows all)" if shown < found["rejected_lines"] else ""))
    for row in found["rejects"]:
        print(f"line {row['line']}: {row['reason'].translate(_SHOWN)}\n    {_shown_raw(row)}")


# ---- synth -----------------------------------------------------------------------------------
# The structure options are generated from kvctrace.synth.SynthConfig, so the CLI, the Python
# API and their help texts cannot drift apart.

def _synth(out: Path, fmt: str, requests: int, seed: int, block_size: Optional[int], **structure):
    """Write a synthetic trace (mooncake, bailian or tokens format) with controllable structure:
    shared system prompts, multi-turn sessions, Zipf-popular documents, Poisson or bursty arrivals."""
    from .commands import synth
    from .formatting import format_value as fv

    s = synth(out, fmt, requests, seed, block_size, **structure)
    detail = f"{fv(s.blocks)} block ids (block size {s.block_size})" if s.block_size else f"{fv(s.tokens)} tokens"
    print(f"wrote {s.path}: {s.format}, {fv(s.requests)} requests, {fv(s.sessions)} sessions, {detail}, "
          f"{fv(s.duration_s, digits=1)} s")


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
    """Readable rich rendering of an analysis summary: one table per registered analysis, its
    headline scalars only (everything is in summary.json)."""
    from rich.console import Console
    from rich.table import Table

    from .analysis.registry import ANALYSES
    from .formatting import format_value as fv

    console = Console()
    t = summary["trace"]
    console.print(f"[bold]{t['path']}[/bold]  format {t['format']}, block size {t['block_size']}, "
                  f"{fv(t['requests'])} requests, {fv(t['accesses'])} block accesses, "
                  f"{fv(t['unique_blocks'])} distinct blocks, {fv(t['duration_s'], digits=1)} s"
                  + (f", {fv(t['rejected_lines'])} rejected lines" if t["rejected_lines"] else ""))
    if not t.get("sorted_input", True):
        console.print("[yellow]note: requests were not in timestamp order; they were sorted[/yellow]")
    for analysis in ANALYSES:
        section = summary.get(analysis.name) or {}
        if not section.get("available", False):
            console.print(f"[bold]{analysis.name}[/bold]: [yellow]{section.get('reason', 'not available')}[/yellow]")
            continue
        rows = _flatten(section)
        if analysis.headline:
            rows = [r for r in rows if r[0] in analysis.headline]
        table = Table(title=analysis.name, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column("metric", style="cyan")
        table.add_column("value", justify="right")
        for key, value in rows:
            if key == "available" or value is None or (isinstance(value, str) and len(value) > 60):
                continue  # definitions and the rest live in summary.json
            table.add_row(key, fv(value))
        console.print(table)
    mrc = summary.get("mrc")
    if mrc:
        table = Table(title="exact block-LRU hit ratio by capacity", title_justify="left", box=None)
        table.add_column("capacity (blocks)", justify="right")
        table.add_column("hit ratio", justify="right")
        step = max(1, len(mrc) // 10)
        for point in mrc[::step] + ([mrc[-1]] if (len(mrc) - 1) % step else []):
            table.add_row(fv(point["capacity_blocks"]), fv(point["hit_ratio"], digits=4))
        console.print(table)
    for path in written:
        console.print(f"wrote {path}")


def _print_replay(s: dict, out) -> None:
    from rich.console import Console
    from rich.table import Table

    from .formatting import format_value as fv
    from .replay.config import format_bytes
    con = Console()
    con.print(f"[bold]{s['config']}[/]: {fv(s['n_requests'])} requests, {fv(s['n_accesses'])} block accesses "
              f"({s['block_size']} tokens/block), index {s['index']}, overlap {s['overlap']}")
    con.print(f"prefix hit ratio {fv(s['prefix_hit_ratio'], digits=4)}   "
              f"block hit ratio {fv(s['block_hit_ratio'], digits=4)}   token hit ratio {fv(s['token_hit_ratio'], digits=4)}")
    t = Table("tier", "policy", "capacity", "prefix hits", "block hits", "read", "written", "evictions")
    for tier in s["tiers"]:
        t.add_row(tier["name"], tier["policy"], f"{fv(tier['capacity_blocks'])} blocks ({format_bytes(tier['capacity_bytes'])})",
                  f"{fv(tier['prefix_hits'])} ({fv(tier['prefix_hit_ratio'], digits=3)})", fv(tier["block_hits"]),
                  format_bytes(tier["bytes_read"]), format_bytes(tier["bytes_written"]), fv(tier["evictions"]))
    con.print(t)
    p = Table("per request", "p50", "p90", "p99", "mean")
    for key, label in (("ttft_ms", "TTFT (ms)"), ("metadata_us", "metadata (µs)"), ("load_us", "load (µs)"),
                       ("prefill_ms", "prefill (ms)")):
        v = s[key]
        p.add_row(label, *(fv(v[q], digits=3) for q in ("p50", "p90", "p99", "mean")))
    con.print(p)
    if out is not None:
        con.print(f"per-request results: {out}")


def _print_info(info: dict, db) -> None:
    from rich.console import Console
    from rich.table import Table

    from .formatting import format_value as fv

    console = Console()
    console.print(f"[bold]{info['path']}[/bold]", soft_wrap=True, markup=True, highlight=False)
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
        ("duration", f"{fv(info['duration_s'], digits=1)} s"),
        ("input tokens", fv(info["input_tokens"])),
        ("output tokens", fv(info["output_tokens"])),
        ("rejected lines", fv(info["rejected_lines"])),
        ("sorted input", "yes" if info["sorted_input"] else "no (requests were sorted by timestamp)"),
    ]
    if db is not None:
        rows.append(("database", str(db)))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if info["rejected_lines"]:
        print(f"note: {fv(info['rejected_lines'])} lines were rejected; see the rejects table", file=sys.stderr)


def _print_recommendation(rec, top, path) -> None:
    import polars as pl
    from rich.console import Console
    from rich.table import Table

    from .formatting import format_value as fv
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
                  "/".join(short(row[f"cap_{n}"] * bb) for n in sw.tier_names), fv(row["prefix_hit_ratio"], digits=4),
                  fv(row["ttft_p50_ms"], digits=1), fv(row["ttft_p99_ms"], digits=1), fv(row["metadata_p99_us"], digits=1),
                  style=style)
    con.print(t)
    r = rec.row
    con.print(f"[bold]recommended[/] (rank {r['rank']}): index {r['index']}, policy {r['policy']}, admit >= "
              f"{r['admission']} to {sw.tier_names[0]}, "
              + ", ".join(f"{n} {format_bytes(r[f'cap_{n}'] * bb)}" for n in sw.tier_names))
    for line in rec.reasons:
        con.print(f"  - {line}")
    con.print(f"config written to {path}")


def _print_partitioned(result, path) -> None:
    from rich.console import Console
    from rich.table import Table

    s = result.summary()
    con = Console()
    con.print(f"[bold]{s['path']}[/bold]  partitioned reuse: {s['partitions']} partitions (seed {s['seed']}, "
              f"engine {s['engine']}), {s['requests']:,} requests, {s['accesses']:,} accesses, "
              f"{s['unique_blocks']:,} distinct blocks")
    t = Table(title="exact (per-request figures merged across partitions)", title_justify="left",
              show_header=False, box=None, pad_edge=False)
    for key in ("ideal_hit_ratio_blocks", "ideal_prefix_hit_ratio_blocks", "ideal_hit_ratio_tokens",
                "ideal_prefix_hit_ratio_tokens", "request_hit_rate_mean", "request_prefix_hit_rate_mean",
                "one_hit_block_share"):
        t.add_row(key, f"{s[key]:.4f}")
    con.print(t)
    err = s["mrc_error"]
    m = Table("capacity (blocks)", "merged hit ratio", "exact hit ratio",
              title="block-LRU hit ratio by capacity (merged from partitions)", title_justify="left", box=None)
    step = max(1, len(s["mrc"]) // 10)
    for point in s["mrc"][::step] + ([s["mrc"][-1]] if (len(s["mrc"]) - 1) % step else []):
        exact = point["exact_hit_ratio"]
        m.add_row(f"{point['capacity_blocks']:,}", f"{point['hit_ratio']:.4f}", "-" if exact is None else f"{exact:.4f}")
    con.print(m)
    if err["exact_computed"]:
        con.print(f"error against the exact curve: MAE {err['mae_linear']:.5f} (linear grid), "
                  f"{err['mae_log']:.5f} (log grid), max {err['max_abs']:.4f}")
    else:
        con.print(f"error against the exact curve: not computed ({err['reason']})")
    tm = result.timings_s
    con.print(f"time: {tm['total']:.2f} s (partitions {tm['partitions_wall']:.2f} s wall, slowest "
              f"{tm['partition_max']:.2f} s; merge {tm['merge']:.3f} s; exact {tm['exact']:.2f} s)")
    con.print(f"wrote {path}")
