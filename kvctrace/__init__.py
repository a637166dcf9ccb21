"""kvctrace: what an LLM serving trace does to a KV-cache store, and what to build for it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .memory import tune_allocators

tune_allocators()  # before anything loads polars (its allocator reads the setting once)

from ._version import __version__  # noqa: E402
from .errors import KvctraceError  # noqa: E402

if TYPE_CHECKING:
    from .trace import Trace


def open_trace(path, **options) -> "Trace":
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
    # ``Trace`` is imported on first use: ``import kvctrace`` (and so every CLI start) does not
    # load numpy, polars, DuckDB and Numba until a command needs them
    if name == "Trace":
        from .trace import Trace
        return Trace
    raise AttributeError(f"module 'kvctrace' has no attribute {name!r}")


__all__ = ["Trace", "open_trace", "KvctraceError", "__version__"]
