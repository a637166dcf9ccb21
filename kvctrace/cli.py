"""Command line: thin. Each command parses options, calls one library function and renders
the result; KvctraceError becomes a one-line message and exit code 1."""
from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Measure how an LLM serving trace reuses its KV cache, and what to build for it.")

# Each part of kvctrace registers its commands below in its own section.
