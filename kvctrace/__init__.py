"""kvctrace: what an LLM serving trace does to a KV-cache store, and what to build for it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .errors import KvctraceError

if TYPE_CHECKING:
    from .trace import Trace


def open_trace(path, **options) -> Trace:
    """Ingest a trace file (or open a ``.duckdb`` made by kvctrace) and return a ``Trace``.

    Options (the CLI's shared trace options): ``format`` (mooncake | bailian | tokens | lengths;
    default: detected from the first record), ``block_size`` (default: the format's own),
    ``partial_block`` ('include' or 'drop' the last partial block), ``coarsen`` (re-block at k
    times the block size), ``skip_bad_lines`` (ingest the rest, keep rejects), ``db`` (a DuckDB
    file to write, re-used when it already holds this trace with these options). Bad input
    raises ``KvctraceError`` naming the file, line and field."""
    from .store import open_trace as _open
    return _open(path, **options)


def __getattr__(name: str):
    # Trace imports numpy, polars and the readers (~0.5 s): only when asked for, so that the
    # command line starts (and answers Ctrl-C, --help, --version) without them
    if name == "Trace":
        from .trace import Trace
        return Trace
    raise AttributeError(f"module 'kvctrace' has no attribute {name!r}")


__all__ = ["Trace", "open_trace", "KvctraceError", "__version__"]
