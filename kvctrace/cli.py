"""Command line: thin. Each command parses options, calls one library function (kvctrace.commands)
and renders the result; KvctraceError becomes a one-line message and exit code 1, never a traceback."""
from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from ._version import __version__
from .errors import KvctraceError, KvctraceWarning
from .kernels.policies import names as policy_names, online_names as online_policy_names


def _flags_show_no_type(params: list) -> list:
    """A flag takes no value, so its help shows none (typer would print '<bool>')."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose usage line names its arguments in capitals (``TRACE``, ``[OUT]`` when
    optional) and whose help shows flags without a value type."""

    def get_params(self, ctx):
        return _flags_show_no_type(super().get_params(ctx))

    def collect_usage_pieces(self, ctx) -> list:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = (param.metavar or param.name).upper()
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Group(TyperGroup):
    def get_params(self, ctx):
        return _flags_show_no_type(super().get_params(ctx))


app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Measure how an LLM serving trace reuses its KV cache, and what to build for it.")


def _print_version(value: bool) -> None:
    if value:
        print(f"kvctrace {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                               help="Print the version and exit.")] = False):
    """Measure how an LLM serving trace reuses its KV cache, and what to build for it."""


def _show_warning(previous, message, category, filename, lineno, file=None, line=None):
    """kvctrace's warnings as one 'warning: ...' line on stderr; others as ``previous`` shows them."""
    if issubclass(category, KvctraceWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        previous(message, category, filename, lineno, file, line)


def print_json(value, indent: int | None = None) -> None:
    """``value`` as strict JSON on stdout: NaN and inf as null, numpy scalars as numbers."""
    import json

    from .results import jsonable
    print(json.dumps(jsonable(value), indent=indent, allow_nan=False))


def _stdout_to_devnull() -> None:
    """The reader of stdout left (``kvctrace ... --json | head``): not an error to report. Later
    writes, including the interpreter's flush at exit, go nowhere instead of failing again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


INTERRUPTED = 130  # the shell's exit status of a command stopped by Ctrl-C (128 + SIGINT)


def say_interrupted(detail: str = "") -> None:
    """The one line a Ctrl-C ends with (``__main__`` prints it when Typer stopped on its own)."""
    print(f"interrupted{': ' + detail if detail else ''}", file=sys.stderr)
    said_interrupted.append(True)


said_interrupted: list = []


def _interrupted(err: BaseException) -> bool:
    """Ctrl-C: Python's KeyboardInterrupt, or DuckDB's interrupt of the query it was running."""
    return isinstance(err, KeyboardInterrupt) or type(err).__name__ == "InterruptException"


def handle_errors(fn):
    """Turn KvctraceError into 'error: <file, line, field: message (hint)>' and exit code 1;
    an OSError (an output path that cannot be written) into 'error: <path>: <reason>';
    Ctrl-C into one line 'interrupted' and exit code 130 (the commands leave no half-written
    database, report or output folder behind); KvctraceWarning into 'warning: <message>'."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            from .progress import interruptible
            with warnings.catch_warnings(), interruptible():
                warnings.simplefilter("always", KvctraceWarning)
                warnings.showwarning = functools.partial(_show_warning, warnings.showwarning)
                return fn(*args, **kwargs)
        except KvctraceError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(1)
        except BrokenPipeError:
            _stdout_to_devnull()
            raise typer.Exit(141)  # 128 + SIGPIPE: what `cat` reports when `| head` stops reading
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            print(f"error: {where}{err.strerror or err}", file=sys.stderr)
            raise typer.Exit(1)
        except BaseException as err:
            from .progress import interrupt_requested
            if isinstance(err, (typer.Exit, SystemExit)) or not (_interrupted(err) or interrupt_requested()):
                raise
            say_interrupted()
            raise typer.Exit(INTERRUPTED) from None
    return wrapper


# Options shared by every command that reads a trace (same names as open_trace's keywords); the
# help lists them in their own panel, after the command's own options.
_READING = "Reading the trace"
TraceArg = Annotated[Path, typer.Argument(metavar="TRACE", help="Trace file (.jsonl[.gz|.zst], .json, .csv, .parquet), a folder of kv-cache-tester conversations, or a kvctrace .duckdb")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", rich_help_panel=_READING, help="mooncake | bailian | tokens | prompts | lengths | kv-cache-tester | lmcache | servegen | burstgpt (default: detect from the first record)")]
BlockSizeOpt = Annotated[Optional[int], typer.Option("--block-size", rich_help_panel=_READING, help="Tokens per block (default: the format's own: mooncake 512, bailian 16, tokens 16, prompts 16, kv-cache-tester 64, lmcache 256)")]
PartialOpt = Annotated[Optional[str], typer.Option("--partial-block", rich_help_panel=_READING, help="Last partial token block: include (Mooncake) or drop (vLLM) (default: drop for prompts, else include)")]
CoarsenOpt = Annotated[int, typer.Option("--coarsen", rich_help_panel=_READING, help="Re-block at K times the block size (chained ids of K-block groups)")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad-lines", rich_help_panel=_READING, help="Ingest the good lines; keep rejected ones in the rejects table and report the count")]
DbOpt = Annotated[Optional[Path], typer.Option("--db", rich_help_panel=_READING, help="DuckDB file to ingest into (re-used if it already holds this trace)")]
TokenizerOpt = Annotated[Optional[str], typer.Option("--tokenizer", rich_help_panel=_READING, help="Text traces (prompts): a tokenizer.json, a model folder holding one, or 'bytes' (UTF-8 bytes as tokens, an approximation); local files only")]
ChatTemplateOpt = Annotated[Optional[Path], typer.Option("--chat-template", rich_help_panel=_READING, help="Text traces: Jinja chat template file (default: the tokenizer folder's, else a plain 'role: content' template)")]
SessionStartOpt = Annotated[Optional[str], typer.Option("--session-start", rich_help_panel=_READING, help="Where separate conversations (kv-cache-tester) start on one time line: zero | stagger:SECONDS | poisson:RATE_PER_S (default: Poisson, last start expected when the longest conversation ends)")]
SeedOpt = Annotated[int, typer.Option("--seed", rich_help_panel=_READING, help="Random seed of --session-start poisson (same seed, same time line)")]
_TRACE_OPTIONS = (("fmt", FormatOpt, None), ("block_size", BlockSizeOpt, None), ("partial_block", PartialOpt, None),
                  ("coarsen", CoarsenOpt, 1), ("skip_bad_lines", SkipBadOpt, False), ("db", DbOpt, None),
                  ("tokenizer", TokenizerOpt, None), ("chat_template", ChatTemplateOpt, None),
                  ("session_start", SessionStartOpt, None), ("seed", SeedOpt, 0))


def trace_options(fmt, block_size, partial_block, coarsen, skip_bad_lines, db, tokenizer=None, chat_template=None,
                  session_start=None, seed=0) -> dict:
    """The keyword arguments of kvctrace.open_trace built from the shared CLI options."""
    return dict(format=fmt, block_size=block_size, partial_block=partial_block,
                coarsen=coarsen, skip_bad_lines=skip_bad_lines, db=db, tokenizer=tokenizer,
                chat_template=chat_template, session_start=session_start, seed=seed)


def _print_analysis(summary: dict, written: list) -> None:
    """The console summary of ``analyze`` (kvctrace.console.print_analysis; kept under this name)."""
    from .console import print_analysis
    print_analysis(summary, written)


def help_texts(doc: str) -> tuple[str, str]:
    """(help, short help) of a docstring: paragraphs re-flowed (the terminal wraps them, not
    the source's line breaks), and its first sentence for the list of commands."""
    text = "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc or "").split("\n\n"))
    first = re.match(r"(.+?[.!?])(\s|$)", text, flags=re.DOTALL)
    return text, (first.group(1) if first else text)


def _register(name: str, fn, params: list) -> None:
    """Register ``fn(**options)`` as command ``name`` with a generated parameter list: typer
    reads a function's signature, so the command gets one built from ``params``."""
    def command(**kwargs):
        return fn(**kwargs)
    command.__name__ = command.__qualname__ = name
    command.__doc__ = fn.__doc__
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    long_help, short_help = help_texts(fn.__doc__)
    app.command(name=name, cls=Command, help=long_help, short_help=short_help)(handle_errors(command))


def trace_command(db_option=DbOpt):
    """Register the decorated function as a command that reads a trace: after its own
    parameters it gets the shared trace options (declared once, in _TRACE_OPTIONS) and receives
    them as ``trace_opts``, the keyword arguments of ``open_trace``. ``db_option`` replaces the
    declaration of --db (ingest writes a database rather than re-using one)."""
    def register(fn):
        kw = inspect.Parameter.KEYWORD_ONLY
        own = [p.replace(kind=kw) for p in inspect.signature(fn, eval_str=True).parameters.values()
               if p.name != "trace_opts"]
        # a command's own option of a shared name (--seed of analyze and export) is the one
        # option: its value also goes to the trace options (None there means the default)
        mine = {p.name for p in own}
        shared = [inspect.Parameter(name, kw, default=default, annotation=db_option if name == "db" else option)
                  for name, option, default in _TRACE_OPTIONS if name not in mine]

        @functools.wraps(fn)
        def call(**kwargs):
            opts = trace_options(*(default if name in mine and kwargs[name] is None else
                                   kwargs[name] if name in mine else kwargs.pop(name)
                                   for name, _, default in _TRACE_OPTIONS))
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
PartitionSeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Seed of the block-to-partition hash and of --session-start poisson (default 0; an export folder keeps its own)")]


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
    from .commands import ingest as run_ingest
    from .console import print_ingest

    info = _with_status(trace, run_ingest, trace_opts)
    if json:
        print_json(info)
        return
    print_ingest(info)


@trace_command()
def info(trace: TraceArg, json: JsonOpt = False, trace_opts: dict = None):
    """Facts about a trace or a kvctrace database: format, block size, requests, accesses,
    unique blocks, duration, rejected lines, whether the input was sorted."""
    from .commands import info as trace_info
    from .console import print_info

    facts = _with_status(trace, trace_info, trace_opts)
    if json:
        print_json(facts)
        return
    print_info(facts)


# ---- analyze / report ------------------------------------------------------------------------

OutDirOpt = Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: reports/<name of the original trace file>/, for a .duckdb too)")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Write into the output folder even if it holds another trace's report")]


@trace_command()
def analyze(trace: TraceArg, out: OutDirOpt = None, force: ForceOpt = False, json: JsonOpt = False,
            partitions: PartitionsOpt = None, seed: PartitionSeedOpt = None, engine: EngineOpt = "local",
            ray_address: RayAddressOpt = None, trace_opts: dict = None):
    """Run every analysis (reuse, MRC, access pattern, hotness, prefix structure, workload);
    print a summary and write summary.json (and the HTML report). With --partitions, --engine
    ray or an export folder: the partitioned reuse analysis only (partitioned.json)."""
    from .commands import analyze as run_analyze

    from .commands import is_export
    if partitions is not None or engine != "local" or is_export(trace):
        from .commands import analyze_partitioned
        from .console import print_partitioned
        result, path = analyze_partitioned(trace, trace_opts, out, partitions=partitions, seed=seed,
                                           engine=engine, ray_address=ray_address, force=force)
        if json:
            print(result.to_json())
            print(f"wrote {path}", file=sys.stderr)
            return
        print_partitioned(result, path)
        return
    from .progress import status
    with status(f"analyzing {trace.name}") as update:
        done = run_analyze(trace, trace_opts, out, force=force, progress=update)
    if json:
        print(done.result.to_json())
        print(f"wrote {done.summary_path}\nwrote {done.report_path}", file=sys.stderr)
        return
    from .console import print_analysis
    print_analysis(done.result.summary(), [done.summary_path, done.report_path])


# Replay config options (report, replay, recommend).
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Replay config TOML (tiers, policies, index, model, GPU)")]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", help="Shipped config preset, e.g. h100-llama3-8b, h100-llama3-70b (default when no --config: h100-llama3-8b)")]
CalibrationOpt = Annotated[Optional[Path], typer.Option("--calibration", help="Redis index cost model fitted by `kvctrace bench-index --calibrate` (TOML); replaces the Redis round trip and per-key cost")]


@trace_command()
def report(trace: TraceArg, out: OutDirOpt = None, force: ForceOpt = False,
           replay: Annotated[bool, typer.Option("--replay", help="Add the replay section: every policy at 1/16x-4x the config's tier capacities, and every index model")] = False,
           config: ConfigOpt = None, preset: PresetOpt = None,
           recommend: Annotated[bool, typer.Option("--recommend", help="Also sweep configs and add the recommendation with its reasons (implies --replay, around the recommended config)")] = False,
           calibration: CalibrationOpt = None,
           engine: EngineOpt = "local", ray_address: RayAddressOpt = None, trace_opts: dict = None):
    """Write the self-contained HTML report (report.html) for a trace; given a kvctrace .duckdb
    it re-renders from the stored tables without re-ingesting. --config, --preset or --calibration
    imply --replay; --calibration also shows the Redis measurements next to the index cost model."""
    from .commands import report as write_trace_report
    from .progress import status

    with status(f"report {trace.name}") as update:
        path = write_trace_report(trace, trace_opts, out, replay=replay, config=config, preset=preset,
                                  recommend=recommend, engine=engine, ray_address=ray_address, force=force,
                                  calibration=calibration, progress=update)
    print(f"wrote {path}")


# ---- replay / recommend (policy replayer) ----------------------------------------------------


@trace_command()
def replay(trace: TraceArg, config: ConfigOpt = None, preset: PresetOpt = None,
           policy: Annotated[Optional[str], typer.Option("--policy", help=f"One-tier run: eviction policy ({', '.join(policy_names())})")] = None,
           capacity_blocks: Annotated[Optional[int], typer.Option("--capacity-blocks", help="One-tier run: capacity in blocks (at least 1; default: the preset's top tier)")] = None,
           index: Annotated[Optional[str], typer.Option("--index", help="Override the metadata index model (redis-get, redis-mget, sherman, chime, rdma-hash)")] = None,
           out: Annotated[Optional[Path], typer.Option("--out", help="Write the per-request results to this Parquet file")] = None,
           marginal: Annotated[bool, typer.Option("--marginal", help="Also replay each tier one step larger (the others as configured) and say what the step adds: prefix hits, mean TTFT, $ per hour")] = False,
           calibration: CalibrationOpt = None, json: JsonOpt = False, trace_opts: dict = None):
    """Replay a trace through cache tiers and a metadata index: prefix/block hits and misses by
    cause per tier, metadata, load and prefill time, TTFT percentiles."""
    from .commands import replay as run_replay
    from .console import print_replay
    from .progress import status
    with status(f"replaying {trace.name}") as update:
        summary = run_replay(trace, trace_opts, config=config, preset=preset, policy=policy,
                             capacity_blocks=capacity_blocks, index=index, out=out, calibration=calibration,
                             marginal=marginal, progress=update).summary()
    if json:
        print_json(summary, indent=2)
        return
    print_replay(summary, out)


@trace_command()
def recommend(trace: TraceArg, config: ConfigOpt = None, preset: PresetOpt = None,
              budget: Annotated[Optional[list[str]], typer.Option("--budget", help="Memory budget of a tier, TIER=SIZE (e.g. hbm=48GB); repeat per tier; default: the preset's capacities")] = None,
              objective: Annotated[str, typer.Option("--objective", help="cost (the knee of the frontier of memory $/h vs prefill GPU time saved; prices from the config's [prices]), mean-ttft, p99-ttft, prefill-saved (GPU-seconds of prefill saved per hour of trace); also p90-ttft, p50-ttft, hit-ratio")] = "cost",
              policies: Annotated[Optional[str], typer.Option("--policies", help=f"Comma-separated policies to sweep (default: {','.join(online_policy_names())})")] = None,
              indexes: Annotated[Optional[str], typer.Option("--indexes", help="Comma-separated index models (default: all: redis-get,redis-mget,sherman,chime,rdma-hash)")] = None,
              admission: Annotated[Optional[str], typer.Option("--admission", help="Comma-separated admission thresholds for the top tier (default: 1,2; thresholds above 1 only when most blocks are accessed once, unless --fractions is given)")] = None,
              fractions: Annotated[Optional[str], typer.Option("--fractions", help="Comma-separated fractions of each tier's budget, every combination tried (default: capacities from the analyses: hot sets, knees of the LRU curve, working set)")] = None,
              tie_tolerance: Annotated[float, typer.Option("--tie-tolerance", help="Configurations within this relative distance of each other on the objective tie; ties are broken by memory cost, then the next objective")] = 0.005,
              max_memory: Annotated[Optional[str], typer.Option("--max-memory", help="Total memory budget across all tiers (e.g. 2TB); configs above it are dropped")] = None,
              workers: Annotated[str, typer.Option("--workers", help="threads (Numba prange) or processes")] = "threads",
              top: Annotated[int, typer.Option("--top", help="Rows of the ranked table to print")] = 15,
              out: Annotated[Path, typer.Option("--out", help="Where to write the recommended config TOML")] = Path("kvctrace-recommended.toml"),
              calibration: CalibrationOpt = None, json: JsonOpt = False, engine: EngineOpt = "local",
              ray_address: RayAddressOpt = None, trace_opts: dict = None):
    """Replay the configurations the analyses point to (or a grid of fractions) across policies,
    admission thresholds and index models, rank them by the objective with ties said as ties,
    explain the winner and write its config TOML (for `kvctrace replay --config`)."""
    from .commands import recommend as run_recommend
    from .console import print_recommendation
    from .progress import status

    with status("recommend") as update:
        rec, path = run_recommend(trace, trace_opts, config=config, preset=preset, budgets=budget,
                                  objective=objective, policies=policies, indexes=indexes, admission=admission,
                                  fractions=fractions, tie_tolerance=tie_tolerance, max_memory=max_memory,
                                  workers=workers, out=out, calibration=calibration, engine=engine,
                                  ray_address=ray_address, progress=update)
    if json:
        print_json({**rec.summary(top), "config_path": str(path)}, indent=2)
        return
    print_recommendation(rec, top, path)


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
    from .console import print_bench_index
    from .progress import status
    from .replay.index_bench import BenchInterrupted

    try:
        with status(f"bench-index {trace.name}") as update:
            result, comparison, fitted = run_bench_index(
                trace, trace_opts, redis_url=redis, designs=design, max_requests=max_requests, clients=clients,
                key_prefix=key_prefix, calibrate=calibrate, progress=update)
    except BenchInterrupted as err:
        say_interrupted(str(err))
        raise typer.Exit(INTERRUPTED)
    if fitted is not None:
        print(f"wrote {fitted[1]} (rtt {fitted[0].rtt_us:.2f} µs, {fitted[0].per_key_us:.4f} µs per key)", file=sys.stderr)
    if json:
        print(result.to_json())
        return
    print_bench_index(result, comparison)


# ---- export ----------------------------------------------------------------------------------

@trace_command()
def export(trace: TraceArg,
           parquet: Annotated[Path, typer.Option("--parquet", help="Folder to write (must not exist or be empty): part=K/*.parquet, requests.parquet, kvctrace_export.json")],
           partitions: Annotated[int, typer.Option("--partitions", help="Number of block partitions P (a block's accesses all go to one partition)")],
           seed: Annotated[int, typer.Option("--seed", help="Seed of the block-to-partition hash and of --session-start poisson")] = 0,
           json: JsonOpt = False, trace_opts: dict = None):
    """Export the accesses as Parquet, hash-partitioned by block, for `kvctrace analyze DIR`
    (each partition's task reads only its own files; docs/ray.md)."""
    from .commands import export as run_export
    from .progress import status

    with status(f"exporting {trace.name}") as update:
        manifest = run_export(trace, trace_opts, parquet=parquet, partitions=partitions, seed=seed, progress=update)
    if json:
        print_json(manifest, indent=2)
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
    """Write a synthetic trace (mooncake, bailian, tokens or prompts format) with controllable structure:
    shared system prompts, multi-turn sessions, Zipf-popular documents, Poisson or bursty arrivals;
    prompts writes chat text (see kvctrace/synth_prompts.py)."""
    from .commands import synth
    from .formatting import format_value as fv

    s = synth(out, fmt, requests, seed, block_size, **structure)
    detail = f"{fv(s.blocks)} block ids (block size {s.block_size})" if s.block_size else f"{fv(s.tokens)} tokens"
    detail += " (about; text)" if fmt == "prompts" else ""
    print(f"wrote {s.path}: {s.format}, {fv(s.requests)} requests, {fv(s.sessions)} sessions, {detail}, "
          f"{fv(s.duration_s, digits=1)} s")


def _register_synth() -> None:
    import dataclasses

    from .synth import SynthConfig
    from .synth_prompts import FORMATS  # the hashed formats and prompts (chat text)

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
