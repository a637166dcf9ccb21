"""Ctrl-C (a real SIGINT to a real ``kvctrace`` process) while a command works: one line
'interrupted', exit code 130, and nothing half-written: no database, no report folder it
created, no export folder, no per-request Parquet; temporary files are gone. A run that
finished before the signal has written everything."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kvctrace import open_trace
from kvctrace.synth import write_trace

REPO = Path(__file__).resolve().parent.parent
SEEDS = range(2)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interrupt")
    trace = write_trace(folder / "t.jsonl", "mooncake", 40_000, seed=11)
    db = folder / "t.duckdb"
    open_trace(trace, db=db).con.close()
    return trace, db


def _db_complete(path: Path) -> bool:
    tr = open_trace(path)
    rows = tr.sql("SELECT (SELECT count(*) FROM accesses) AS a").row(0)[0]
    tr.con.close()
    return rows == tr.n_accesses > 0


def _report_complete(path: Path) -> bool:
    return (path / "summary.json").is_file() and (path / "report.html").is_file()


def _parquet_complete(path: Path) -> bool:
    import polars as pl
    return pl.read_parquet(path).height > 0


def commands(trace: Path, db: Path, out: Path) -> dict:
    """name -> (arguments, what it writes, whether that is complete, a sign that it has started
    work, or None)."""
    return {
        "ingest": (["ingest", str(trace), "--db", str(out / "new.duckdb")], out / "new.duckdb", _db_complete,
                   lambda: any(p.name.startswith(".new.duckdb.") for p in out.iterdir())),
        "analyze": (["analyze", str(db), "--out", str(out / "report")], out / "report", _report_complete,
                    lambda: (out / "report").exists()),
        "export": (["export", str(db), "--parquet", str(out / "parts"), "--partitions", "4"], out / "parts",
                   lambda path: (path / "kvctrace_export.json").is_file(),
                   lambda: any(p.name.startswith(".parts.partial") for p in out.iterdir())),
        "replay": (["replay", str(db), "--policy", "lru", "--capacity-blocks", "2000", "--out",
                    str(out / "per_request.parquet")], out / "per_request.parquet", _parquet_complete, None),
    }


def run(args: list, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "kvctrace", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(started, proc: subprocess.Popen, limit: float = 120.0) -> bool:
    """Wait (bounded) until ``started()`` holds or the process ends; True if it started."""
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        if started():
            return True
        time.sleep(0.005)
    return False


@pytest.fixture(scope="module")
def durations(traces, tmp_path_factory):
    """Seconds each command takes here when left alone (to place the signals)."""
    trace, db = traces
    out = {}
    for name in ("ingest", "analyze", "export", "replay"):
        folder = tmp_path_factory.mktemp(f"full-{name}")
        args, written, complete, _ = commands(trace, db, folder)[name]
        began = time.monotonic()
        proc = run(args, folder)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert complete(written)
        out[name] = time.monotonic() - began
    return out


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["ingest", "analyze", "export", "replay"])
def test_ctrl_c_stops_cleanly(traces, durations, tmp_path, name, seed):
    trace, db = traces
    args, written, complete, started = commands(trace, db, tmp_path)[name]
    before = set(tmp_path.iterdir())
    proc = run(args, tmp_path)
    rng = np.random.default_rng(seed)
    if started is not None:  # a signal while the command works (not while Python starts)
        assert wait_until(started, proc), proc.communicate(timeout=60)
        time.sleep(rng.uniform(0.0, 0.3) * durations[name])
    else:
        time.sleep(rng.uniform(0.6, 0.8) * durations[name])
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # it had finished: everything is there, complete
        assert complete(written), err
        return
    # 130, or killed by the SIGINT itself (-2), which a shell reports as the same $? = 130
    assert proc.returncode in (130, -signal.SIGINT), err
    assert err.strip().splitlines()[-1] == "interrupted", err
    assert "Traceback" not in err
    left = set(tmp_path.iterdir()) - before
    # stopped before the end: nothing at all; stopped after the last write: all of it, complete
    assert not left or (left == {written} and complete(written)), f"left behind: {sorted(p.name for p in left)}"


def test_replaced_atomically_keeps_the_old_file(tmp_path):
    from kvctrace.outputs import replaced_atomically
    path = tmp_path / "out.toml"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), replaced_atomically(path) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.toml"]
    with replaced_atomically(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.toml"]


TRACED_AFTER_BLOCKS = """
import sys
from kvctrace.progress import interruptible
for _ in range(3):
    with interruptible():
        pass
def traced():
    return 1
sys.settrace(lambda frame, event, arg: None)
traced()
sys.settrace(None)
print("ok")
"""


def test_blocks_leave_the_interpreter_usable_under_a_tracer():
    """After interruptible() blocks without Ctrl-C, a function called under a tracer (a debugger,
    coverage, Hypothesis after a failure) returns: withdrawing a never-sent asynchronous
    exception left CPython 3.11's eval breaker set and the call looped forever (the CI hang)."""
    out = subprocess.run([sys.executable, "-c", TRACED_AFTER_BLOCKS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
