"""Progress display for long work: a rich status line on stderr when stderr is a terminal,
nothing at all otherwise (pipes, CI, tests).

A command shows one status line (``status``); work inside it reports through the ``update``
callable it is given, e.g. ``update(f"reading {bar_text(0.4)}")`` for a progress bar. A
``status`` opened while another is shown (a library call that shows its own when called
alone) updates the one shown instead of starting a second live display.

``interruptible()`` makes Ctrl-C safe while Numba and DuckDB run (the CLI runs every command
inside it)."""
from __future__ import annotations

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
        yield lambda text: None
        return
    from rich.console import Console
    with Console(stderr=True).status(message) as live:
        def update(text: str) -> None:
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


_requested: list = []  # the Ctrl-C flag of each interruptible() block entered in this process


def interrupt_requested() -> bool:
    """Whether Ctrl-C came during an ``interruptible()`` block: the error a command ends with is
    then the interrupt's doing, whatever its type (DuckDB wraps a KeyboardInterrupt raised in a
    Python callback it runs, e.g. reading an Arrow stream, into its own InvalidInputException)."""
    return any(flag.is_set() for flag in _requested)


def _set_async_exc(exc) -> None:
    """Have the main thread raise ``exc`` at its next Python statement (an asynchronous exception,
    which only the interpreter loop delivers: never inside a native call); None clears one that
    is still pending."""
    import ctypes
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(threading.main_thread().ident),
                                               None if exc is None else ctypes.py_object(exc))


def _interrupt_main_thread(requested: threading.Event, done: threading.Event, lock: threading.Lock) -> None:
    """Watcher thread: once Ctrl-C is requested, raise KeyboardInterrupt in the main thread,
    under ``lock`` so that it never happens once the block has ended."""
    while not done.is_set():
        if requested.wait(0.1):
            with lock:
                if not done.is_set():
                    _set_async_exc(KeyboardInterrupt)
            return


@contextmanager
def interruptible():
    """While the block runs, Ctrl-C raises KeyboardInterrupt in the main thread at its next
    Python statement, once the Numba kernel or DuckDB query that runs has returned (each works
    on one chunk). Python's own handler raises right where the signal is handled, and Numba's
    parallel kernels and DuckDB's queries handle signals from inside native code
    (``PyErr_CheckSignals``): an exception raised there crashes the process (a parallel
    kernel: segmentation fault) or surfaces as a foreign error ('Query interrupted'). Here the
    handler only sets a flag, and a watcher thread raises the exception in the main thread.
    Exactly one KeyboardInterrupt leaves the block when Ctrl-C came: one still pending when the
    block ends is cleared and raised here instead (it would otherwise arrive later, outside the
    command's own handling)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    requested, done, lock = threading.Event(), threading.Event(), threading.Lock()
    watcher = threading.Thread(target=_interrupt_main_thread, args=(requested, done, lock), daemon=True)
    watcher.start()
    _requested.append(requested)
    previous = signal.signal(signal.SIGINT, lambda signum, frame: requested.set())

    def end() -> None:
        with lock:
            done.set()
            _set_async_exc(None)
        signal.signal(signal.SIGINT, previous)
    try:
        yield
    except BaseException:
        end()
        raise  # the block's own ending (an interrupt it reported itself, an error) stays the one
    end()
    if requested.is_set():
        raise KeyboardInterrupt
