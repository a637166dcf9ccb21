"""Several processes on one kvctrace database: any number of read-only commands run side by
side; a writer that meets a reader (or a reader that meets a writer) stops with one line
naming the other process. Real processes, as users run them."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from kvctrace import open_trace

RECORDS = [{"timestamp": i * 100, "input_length": 600 + i, "output_length": 5, "hash_ids": [i % 3, 10 + i]}
           for i in range(20)]

# A process that keeps the database open (read-only through open_trace, or for writing through
# duckdb) until its stdin closes: 'ready' on stdout once it holds it.
HOLD = textwrap.dedent("""
    import sys
    {open}
    print("ready", flush=True)
    sys.stdin.read()
""")
READ_HOLD = HOLD.format(open="from kvctrace import open_trace; tr = open_trace(sys.argv[1]); tr.info()")
WRITE_HOLD = HOLD.format(open="import duckdb; con = duckdb.connect(sys.argv[1])")


@pytest.fixture
def db(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    path = tmp_path / "t.duckdb"
    open_trace(trace, db=path).con.close()
    return path


def hold(script: str, db) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", script, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0, proc.stderr.read()


def cli(*args, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kvctrace", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_readers_run_side_by_side(db, tmp_path):
    holders = [hold(READ_HOLD, db) for _ in range(2)]
    try:
        running = [cli("info", db, "--json"), cli("analyze", db, "--json", "--out", tmp_path / "out"),
                   cli("info", db, "--json"), cli("replay", db, "--policy", "lru", "--capacity-blocks", "4", "--json")]
        results = [finish(p) for p in running]
    finally:
        for proc in holders:
            release(proc)
    for code, out, err in results:
        assert code == 0, err
    assert [json.loads(results[i][1])["requests"] for i in (0, 2)] == [len(RECORDS)] * 2
    assert json.loads(results[1][1])["trace"]["requests"] == len(RECORDS)
    assert json.loads(results[3][1])["n_requests"] == len(RECORDS)


def test_writer_meeting_a_reader_names_it(db, tmp_path):
    reader = hold(READ_HOLD, db)
    try:
        code, _, err = finish(cli("ingest", tmp_path / "t.jsonl", "--db", db, "--coarsen", "2"))
    finally:
        release(reader)
    assert code == 1
    line = one_error_line(err)
    assert f"PID {reader.pid}" in line and "in use by another process" in line
    assert open_trace(db).meta["coarsen"] == "1"  # the reader's database is unchanged
    code, _, err = finish(cli("ingest", tmp_path / "t.jsonl", "--db", db, "--coarsen", "2"))
    assert code == 0, err  # once the reader is gone, the re-ingest goes through


def test_reader_meeting_a_writer_names_it(db):
    writer = hold(WRITE_HOLD, db)
    try:
        code, _, err = finish(cli("info", db))
    finally:
        release(writer)
    assert code == 1
    line = one_error_line(err)
    assert f"PID {writer.pid}" in line and "being written by another process" in line


def test_reader_in_the_same_process_as_a_writer(db):
    """A notebook that still holds the database open for writing can open it again."""
    import duckdb
    con = duckdb.connect(str(db))
    try:
        assert open_trace(db).n_requests == len(RECORDS)
    finally:
        con.close()
