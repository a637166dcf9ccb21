"""kvctrace: what an LLM serving trace does to a KV-cache store, and what to build for it."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import KvctraceError  # noqa: E402
from .trace import Trace  # noqa: E402


def open_trace(path, **options) -> Trace:
    """Ingest a trace file (or open a ``.duckdb`` made by kvctrace) and return a ``Trace``."""
    from .store import open_trace as _open
    return _open(path, **options)


__all__ = ["Trace", "open_trace", "KvctraceError", "__version__"]
