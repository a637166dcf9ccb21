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
import time
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


_ctrl_c = threading.Event()  # set once Ctrl-C came during an interruptible() block of this process


def interrupt_requested() -> bool:
    """Whether Ctrl-C came during an ``interruptible()`` block: the error a command ends with is
    then the interrupt's doing, whatever its type (DuckDB wraps a KeyboardInterrupt raised in a
    Python callback it runs, e.g. reading an Arrow stream, into its own InvalidInputException)."""
    return _ctrl_c.is_set()


def _raise_in_main_thread(exc) -> None:
    """Have the main thread raise ``exc`` at its next Python statement (an asynchronous exception,
    which only the interpreter loop delivers: never inside a native call). Never called with
    None to withdraw one: on CPython 3.11 that leaves the eval breaker set with nothing to
    deliver, and the next function called under a tracer (a debugger, coverage, Hypothesis)
    loops forever on its first instruction."""
    import ctypes
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(threading.main_thread().ident),
                                               ctypes.py_object(exc))


def _interrupt_main_thread() -> None:
    """Raise KeyboardInterrupt in the main thread once no thread is being started. A thread the
    main thread is starting has a thread state that carries the main thread's id until the new
    thread runs (CPython), and the exception goes to the first state with that id: it would
    kill the new thread before it reports its start, and the main thread would wait for that
    report forever. ``threading`` keeps such threads in ``_limbo``, under the lock that also
    keeps another from being started while the exception is sent."""
    while True:
        with threading._active_limbo_lock:
            if not threading._limbo:
                _raise_in_main_thread(KeyboardInterrupt)
                return
        time.sleep(0.001)


def _watch(requested: threading.Event, sent: threading.Event, done: threading.Event,
           lock: threading.Lock) -> None:
    """Watcher thread: once Ctrl-C is requested, raise KeyboardInterrupt in the main thread,
    under ``lock`` so that it never happens once the block has ended."""
    while not done.is_set():
        if requested.wait(0.1):
            with lock:
                if not done.is_set():
                    sent.set()
                    _interrupt_main_thread()
            return


def _take_pending_interrupt() -> None:
    """Let a KeyboardInterrupt the watcher sent, if it is still pending, arrive here (at the
    loop's first back edge; the caller catches it) rather than at some later statement
    outside the block."""
    for _ in range(4):
        pass


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
    block ends is taken and raised here instead (it would otherwise arrive later, outside the
    command's own handling)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    requested, sent, done, lock = threading.Event(), threading.Event(), threading.Event(), threading.Lock()
    threading.Thread(target=_watch, args=(requested, sent, done, lock), daemon=True).start()

    def on_sigint(signum, frame) -> None:
        _ctrl_c.set()
        requested.set()
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield  # the block's own ending (an interrupt it reported itself, an error) stays the one
    finally:
        try:
            with lock:
                done.set()
            if sent.is_set():
                _take_pending_interrupt()
        except KeyboardInterrupt:
            pass
        signal.signal(signal.SIGINT, previous)
    if requested.is_set():
        raise KeyboardInterrupt
