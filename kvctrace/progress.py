"""Progress display for long work: a rich status line on stderr when stderr is a terminal,
nothing at all otherwise (pipes, CI, tests).

A command shows one status line (``status``); work inside it reports through the ``update``
callable it is given, e.g. ``update(f"reading {bar_text(0.4)}")`` for a progress bar. A
``status`` opened while another is shown (a library call that shows its own when called
alone) updates the one shown instead of starting a second live display.

``interruptible()`` makes Ctrl-C safe while Numba and DuckDB run (the CLI runs every command
inside it): the work stops at the next ``check_interrupt()``, which every progress update is."""
from __future__ import annotations

import operator
import os
import select
import signal
import sys
import threading
from contextlib import contextmanager

_shown: list = []  # the update callable of the status line on screen, if any


@contextmanager
def status(message: str):
    """Show ``message`` with a spinner while the block runs; yields ``update(text)``."""
    if _shown:
        outer = _shown[-1]
        yield lambda text: outer(f"{message}: {text}")
        return
    if not sys.stderr.isatty():
        yield lambda text: check_interrupt()
        return
    from rich.console import Console
    with Console(stderr=True).status(message) as live:
        def update(text: str) -> None:
            check_interrupt()
            live.update(f"{message}: {text}")
        _shown.append(update)
        try:
            yield update
        finally:
            _shown.pop()


def bar_text(fraction: float, width: int = 24) -> str:
    """A text progress bar for a status line, e.g. ``━━━━━━━━━━━━────────────  50%``."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return f"{'━' * filled}{'─' * (width - filled)} {fraction:4.0%}"


_ctrl_c = threading.Event()  # set once Ctrl-C came during an interruptible() block of this process
_blocks: list = []            # the Ctrl-C flag of each interruptible() block running (main thread)


def interrupt_requested() -> bool:
    """Whether Ctrl-C came during an ``interruptible()`` block: the error a command ends with is
    then the interrupt's doing, whatever its type (DuckDB wraps a KeyboardInterrupt raised in a
    Python callback it runs, e.g. reading an Arrow stream, into its own InvalidInputException)."""
    return _ctrl_c.is_set()


def check_interrupt() -> None:
    """A point where the work may stop: raise KeyboardInterrupt here if Ctrl-C came during the
    running ``interruptible()`` block (once; the block then ends with it). Every progress
    update is such a point (``status``), and so is each analysis's start."""
    if _blocks and _blocks[-1].is_set() and threading.current_thread() is threading.main_thread():
        _blocks[-1].clear()
        raise KeyboardInterrupt


def _note_ctrl_c(rfd: int, requested: threading.Event) -> None:
    """Read the signal numbers the interpreter wrote to the wakeup pipe; note a SIGINT."""
    try:
        data = os.read(rfd, 512)
    except BlockingIOError:
        return
    if signal.SIGINT in data:
        _ctrl_c.set()
        requested.set()


def _watch(rfd: int, requested: threading.Event, done: threading.Event) -> None:
    """Watcher thread: notes a SIGINT in the wakeup pipe as it arrives."""
    while not done.is_set():
        if select.select([rfd], [], [], 0.1)[0]:
            _note_ctrl_c(rfd, requested)


@contextmanager
def interruptible():
    """While the block runs, Ctrl-C stops the work at its next ``check_interrupt()`` (every
    progress update: at most a chunk, a replay group or an analysis later), or when the block
    ends: KeyboardInterrupt is raised there, in the main thread, as a plain exception.

    No Python code runs where the signal lands. Python's own handler raises right where the
    signal is handled, and Numba's parallel kernels and DuckDB's queries handle signals from
    inside native code (``PyErr_CheckSignals``): an exception raised there crashes the process
    or surfaces as a foreign error ('Query interrupted'). An exception sent from another thread
    (``PyThreadState_SetAsyncExc``, this module's former way) lands at any Python statement,
    finalizers included, where it is swallowed halfway through: in about one interrupted
    ingest in 50 under load, Numba's code-loading state was left half-updated and the process
    died of a segmentation fault. So the handler is a C function that does nothing
    (``operator.is_``); the interpreter's C-level handler writes the signal number to a wakeup
    pipe, and a watcher thread reads it and sets the block's flag."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    requested, done = threading.Event(), threading.Event()
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    previous_fd = signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
    previous = signal.signal(signal.SIGINT, operator.is_)
    watcher = threading.Thread(target=_watch, args=(rfd, requested, done), daemon=True)
    watcher.start()
    _blocks.append(requested)
    try:
        yield  # the block's own ending (an interrupt it raised at a check, an error) stays the one
    finally:
        _blocks.pop()
        done.set()
        try:
            os.write(wfd, b"\0")  # wake the watcher now, not at its next 0.1-s poll
        except BlockingIOError:
            pass
        watcher.join()
        signal.signal(signal.SIGINT, previous)
        signal.set_wakeup_fd(previous_fd)
        _note_ctrl_c(rfd, requested)  # a Ctrl-C the watcher had not read yet
        os.close(wfd)
        os.close(rfd)
    if requested.is_set():
        raise KeyboardInterrupt
