"""Progress display for long work: a rich status line on stderr when stderr is a terminal,
nothing at all otherwise (pipes, CI, tests)."""
from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def status(message: str):
    """Show ``message`` with a spinner while the block runs; yields ``update(text)``."""
    if not sys.stderr.isatty():
        yield lambda text: None
        return
    from rich.console import Console
    with Console(stderr=True).status(message) as live:
        yield lambda text: live.update(f"{message}: {text}")


def bar_text(fraction: float, width: int = 24) -> str:
    """A text progress bar for a status line, e.g. ``━━━━━━━━━━━━────────────  50%``."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return f"{'━' * filled}{'─' * (width - filled)} {fraction:4.0%}"
