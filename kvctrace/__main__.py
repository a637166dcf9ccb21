"""`python -m kvctrace` and the `kvctrace` script: the command line.

Ctrl-C ends every command the same way: one line 'interrupted' and exit code 130, with nothing
half-written (cli.handle_errors). Here the cases around a command: a Ctrl-C while Python still
imports, or one Typer catches itself (while it parses), also print the line; one during the
interpreter's shutdown, after the command has written everything, is ignored."""
import signal
import sys


def main() -> None:
    said = []
    try:
        from .cli import app, said_interrupted
        said = said_interrupted
        app(prog_name="kvctrace")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit as stop:
        if stop.code == 130 and not said:
            print("interrupted", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    main()
