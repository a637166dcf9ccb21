"""Command line: thin. Each command parses options, calls one library function and renders
the result; KvctraceError becomes a one-line message and exit code 1, never a traceback."""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import KvctraceError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure how an LLM serving trace reuses its KV cache, and what to build for it.")


def handle_errors(fn):
    """Turn KvctraceError into 'error: <file, line, field: message (hint)>' and exit code 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KvctraceError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(1)
    return wrapper


# Options shared by every command that reads a trace (same names as open_trace's keywords).
TraceArg = Annotated[Path, typer.Argument(help="Trace file (.jsonl[.gz|.zst], .json, .csv, .parquet) or a kvctrace .duckdb")]
FormatOpt = Annotated[Optional[str], typer.Option("--format", help="mooncake | bailian | tokens | lengths (default: detect from the first record)")]
BlockSizeOpt = Annotated[Optional[int], typer.Option("--block-size", help="Tokens per block (default: the format's own: mooncake 512, bailian 16, tokens 16)")]
PartialOpt = Annotated[str, typer.Option("--partial-block", help="Last partial token block: include (Mooncake) or drop (vLLM)")]
CoarsenOpt = Annotated[int, typer.Option("--coarsen", help="Re-block at K times the block size (chained ids of K-block groups)")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad-lines", help="Ingest the good lines; keep rejected ones in the rejects table and report the count")]
DbOpt = Annotated[Optional[Path], typer.Option("--db", help="DuckDB file to ingest into (re-used if it already holds this trace)")]


def trace_options(fmt, block_size, partial_block, coarsen, skip_bad_lines, db) -> dict:
    """The keyword arguments of kvctrace.open_trace built from the shared CLI options."""
    return dict(format=fmt, block_size=block_size, partial_block=partial_block,
                coarsen=coarsen, skip_bad_lines=skip_bad_lines, db=db)

# Each part of kvctrace registers its commands below, in its own section. Pattern:
#
# @app.command()
# @handle_errors
# def info(trace: TraceArg, fmt: FormatOpt = None, block_size: BlockSizeOpt = None,
#          partial_block: PartialOpt = "include", coarsen: CoarsenOpt = 1,
#          skip_bad_lines: SkipBadOpt = False, db: DbOpt = None, json: bool = False): ...
