"""kill -9 during an ingest, at seeded random points: the database is afterwards either the
one that was there before (tables intact, the same numbers) or, for a new path, absent; a
finished ingest's database is complete. Never a half-written store."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kvctrace import open_trace
from kvctrace.synth import write_trace

# Ingest in a child process; it says "start" just before open_trace, then each stage.
CHILD = textwrap.dedent("""
    import sys
    from kvctrace import open_trace
    print("start", flush=True)
    open_trace(sys.argv[1], db=sys.argv[2], coarsen=int(sys.argv[3]),
               progress=lambda stage: print(stage, flush=True))
    print("done", flush=True)
""")
SEEDS = range(5)


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return write_trace(tmp_path_factory.mktemp("kill") / "t.jsonl", "mooncake", 20_000, seed=3)


@pytest.fixture(scope="module")
def finished(trace):
    """(seconds one whole ingest takes here, its database, that database's facts)."""
    db = trace.with_name("finished.duckdb")
    full = ingest_seconds(trace, db)
    return full, db, facts(db)


def start(trace, db, coarsen: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(trace), str(db), str(coarsen)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start", proc.stderr.read()
    return proc


def ingest_seconds(trace, db) -> float:
    """How long one whole ingest takes here, from 'start' (to spread the kills over it)."""
    proc = start(trace, db, 1)
    began = time.monotonic()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0 and out.splitlines()[-1] == "done", err
    return time.monotonic() - began


def kill_after(proc: subprocess.Popen, delay: float) -> None:
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)


def facts(db) -> tuple:
    tr = open_trace(db)
    counts = tr.sql("SELECT (SELECT count(*) FROM requests) AS r, (SELECT count(*) FROM accesses) AS a, "
                    "(SELECT count(*) FROM blocks) AS b")
    out = (tr.meta["coarsen"], tr.n_requests, tr.n_accesses, tr.n_unique_blocks, tuple(counts.row(0)),
           tr.blocks.tobytes())
    tr.con.close()
    assert out[4] == out[1:4]  # the tables hold what the meta says
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_during_ingest_into_a_new_path(trace, finished, tmp_path, seed):
    full, _, complete = finished
    db = tmp_path / "new.duckdb"
    proc = start(trace, db, 1)
    kill_after(proc, np.random.default_rng(seed).uniform(0.0, 1.1) * full)
    if db.exists():  # the ingest had finished: then the database is complete
        assert facts(db) == complete
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".new.duckdb"))
    # a later ingest into the same path clears what the killed one left, and succeeds
    db.unlink(missing_ok=True)
    open_trace(trace, db=db).con.close()
    assert facts(db) == complete
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".new.duckdb")], leftovers


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_during_a_replacing_ingest(trace, finished, tmp_path, seed):
    full, done, before = finished
    db = tmp_path / "t.duckdb"
    shutil.copyfile(done, db)
    proc = start(trace, db, 2)  # other options: the stored trace is replaced in one transaction
    kill_after(proc, np.random.default_rng(100 + seed).uniform(0.0, 1.1) * full)
    after = facts(db)
    assert after == before or after[0] == "2", "neither the old store nor a complete new one"
    if after[0] == "2":
        assert after[1] == before[1] and after[2] < before[2]


def test_kill_leaves_the_process_gone():
    """The helper really kills (the tests above rely on it)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; print('start', flush=True); time.sleep(600)"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    kill_after(proc, 0.0)
    assert proc.returncode == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
