"""`python -m kvctrace` and the `kvctrace` script: the command line.

Ctrl-C ends every command the same way: one line 'interrupted' and exit code 130, with nothing
half-written (cli.handle_errors). Here the cases around a command: a Ctrl-C while Python still
imports, or one Typer catches itself (while it parses), also print the line; one during the
interpreter's shutdown, after the command has written everything, is ignored."""
import os
import signal
import sys


def main() -> None:
    said = []
    try:
        from .cli import app, said_interrupted
        said = said_interrupted
        app(prog_name="kvctrace")
    except KeyboardInterrupt:
        _end_interrupted(said)
    except SystemExit as stop:
        if stop.code == 130:
            _end_interrupted(said)
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _end_interrupted(said: list) -> None:
    """Exit 130 at once: the command has already removed what it had half-written, and the
    interpreter's shutdown would stop threads still inside native code (a DuckDB or Numba
    call that Ctrl-C cut short) by unwinding them, which aborts the process."""
    if not said:
        print("interrupted", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


if __name__ == "__main__":
    main()
