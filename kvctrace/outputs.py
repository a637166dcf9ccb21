"""Where the commands write a trace's files, by one rule, and what keeps one trace's report from
silently replacing another's.

* the default folder (``kvctrace.commands.default_out_dir``) is ``reports/<trace name>/``, the
  name taken from the original trace file (``Trace.info()["path"]``; a kvctrace .duckdb
  remembers it in its meta table), so ``analyze conv.duckdb``, ``report conv.duckdb`` and
  ``analyze conversation_trace.jsonl`` all write ``reports/conversation_trace/``;
* ``claim_out_dir(out_dir, info, force)``: before anything is written, the folder's
  ``kvctrace-source.json`` (the trace's path and sha256, written by the first command that used
  it) must name the same trace; another trace's folder is an error naming ``--force``, a folder
  with reports of unknown origin gets a warning;
* nothing half-written: ``replaced_atomically(path)`` writes a file under a temporary name and
  renames it into place when complete; ``removed_if_interrupted(folder)`` removes a folder the
  command created when it fails or is interrupted (Ctrl-C).
"""
from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

from .errors import KvctraceError, KvctraceWarning

MARKER = "kvctrace-source.json"
REPORT_FILES = ("summary.json", "report.html", "partitioned.json")


class OutputFolderError(KvctraceError):
    """An output folder that holds another trace's report."""


def _identity(info: dict) -> dict:
    return {"path": str(info["path"]), "sha256": info.get("sha256")}


def _same_trace(mine: dict, theirs: dict) -> bool:
    if mine.get("sha256") and theirs.get("sha256"):
        return mine["sha256"] == theirs["sha256"]
    return mine["path"] == theirs.get("path")


def claim_out_dir(out_dir, info: dict, force: bool = False) -> Path:
    """Create ``out_dir`` for the trace of ``info`` and record the trace in it. Raises
    OutputFolderError when the folder records another trace (unless ``force``); warns when it
    holds reports but no record (written by an older kvctrace or by hand)."""
    out = Path(out_dir)
    marker = out / MARKER
    mine = _identity(info)
    if marker.is_file():
        try:
            theirs = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            theirs = {"path": "an unreadable record"}
        if not _same_trace(mine, theirs) and not force:
            raise OutputFolderError(
                f"holds the report of another trace, {theirs.get('path')}", path=f"{out}{os.sep}",
                hint=f"pass --force to replace it with {mine['path']}'s, or --out DIR for a new folder")
    elif out.is_dir() and any((out / name).exists() for name in REPORT_FILES) and not force:
        warnings.warn(f"{out}{os.sep} holds reports with no record of their trace; replacing them with "
                      f"{mine['path']}'s", KvctraceWarning, stacklevel=2)
    out.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(f".{MARKER}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(mine, indent=2) + "\n", encoding="utf-8")
    tmp.replace(marker)
    return out


# ---- nothing half-written (Ctrl-C, a full disk) --------------------------------------------------

def temporary_sibling(path) -> Path:
    """A temporary name beside ``path`` (same folder, so the final rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


@contextmanager
def replaced_atomically(path):
    """Yield a temporary path to write instead of ``path``; when the block ends normally it
    replaces ``path`` in one rename, otherwise (an error, Ctrl-C) it is removed and ``path``
    stays as it was."""
    tmp = temporary_sibling(path)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def removed_if_interrupted(folder):
    """An output folder this command creates is removed again when the block fails or is
    interrupted (a folder that existed before is left: every file in it is written whole)."""
    folder = Path(folder)
    created = not folder.exists()
    try:
        yield
    except BaseException:
        if created:
            import shutil
            shutil.rmtree(folder, ignore_errors=True)
        raise
