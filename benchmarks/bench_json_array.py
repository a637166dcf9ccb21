"""Ingest of a JSON-array trace (``.json``: one array of request objects) bigger than one chunk:
the whole-file read (the whole text decoded and parsed into Python objects at once) against the
streamed read (the array cut between its elements, a chunk at a time: formats/stream.py), in
one run.

The trace is ``kvctrace synth`` output (Mooncake format) rewritten as one array, one element
per line, in a temporary folder (never in the repository). Each measurement is
``/usr/bin/time -v python -m kvctrace ingest FILE --db DB`` in a fresh process (the whole
command: imports, reading, the tables written), after an untimed small ingest that warms
Numba's on-disk cache of that source tree. The whole-file read is the code of the commit
before the streamed read, in its own checkout (``--before``):

    git worktree add --detach /tmp/kvctrace-before <commit before the change>
    python benchmarks/bench_json_array.py --before /tmp/kvctrace-before [--requests 300000]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def python(tree: Path, *args: str, timed: bool = False) -> subprocess.CompletedProcess:
    """``python ARGS`` importing ``tree``'s kvctrace (run in ``tree``: ``-m`` and ``-c`` put the
    working directory first on the path), under ``/usr/bin/time -v`` if ``timed``."""
    cmd = [sys.executable, *args]
    if timed:
        cmd = ["/usr/bin/time", "-v", *cmd]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=True)


def kvctrace(tree: Path, *args: str, timed: bool = False) -> subprocess.CompletedProcess:
    return python(tree, "-m", "kvctrace", *args, timed=timed)


def as_array(jsonl: Path, out: Path) -> None:
    """The JSON-lines trace rewritten as one JSON array, a line at a time."""
    with open(jsonl, "rb") as src, open(out, "wb") as dst:
        dst.write(b"[\n")
        first = True
        for line in src:
            if line.strip():
                dst.write((b"" if first else b",\n") + line.rstrip(b"\n"))
                first = False
        dst.write(b"\n]\n")


def measured(tree: Path, trace: Path, db: Path) -> dict:
    """Wall time (s) and peak RSS (MiB) of one ``kvctrace ingest`` of ``trace`` into ``db``."""
    db.unlink(missing_ok=True)
    report = kvctrace(tree, "ingest", str(trace), "--db", str(db), timed=True).stderr
    h, m, s = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", report).groups()
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1))
    return {"wall_s": int(h or 0) * 3600 + int(m) * 60 + float(s), "peak_rss_mib": rss_kib / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True,
                        help="a checkout of the commit before the streamed JSON-array read")
    parser.add_argument("--requests", type=int, default=300_000)
    args = parser.parse_args()
    trees = {"whole (before)": args.before.resolve(), "streamed (after)": REPO}
    with tempfile.TemporaryDirectory(prefix="kvctrace-bench-") as tmp:
        tmp = Path(tmp)
        kvctrace(REPO, "synth", str(tmp / "t.jsonl"), "--requests", str(args.requests), "--seed", "1")
        as_array(tmp / "t.jsonl", tmp / "t.json")
        (tmp / "t.jsonl").unlink()
        kvctrace(REPO, "synth", str(tmp / "warm.jsonl"), "--requests", "2000")
        as_array(tmp / "warm.jsonl", tmp / "warm.json")
        size = (tmp / "t.json").stat().st_size
        print(f"JSON array of {args.requests:,} mooncake requests: {size / 2**20:,.0f} MiB")
        results = {}
        for name, tree in trees.items():
            package = python(tree, "-c", "import kvctrace; print(kvctrace.__file__)").stdout.strip()
            assert package.startswith(str(tree)), (name, package)
            kvctrace(tree, "ingest", str(tmp / "warm.json"), "--db", str(tmp / "warm.duckdb"))  # Numba's cache
            results[name] = measured(tree, tmp / "t.json", tmp / "t.duckdb")
            print(f"{name:18} wall {results[name]['wall_s']:7.2f} s   peak RSS {results[name]['peak_rss_mib']:8.0f} MiB",
                  flush=True)
    before, after = results["whole (before)"], results["streamed (after)"]
    print(f"after / before: wall {after['wall_s'] / before['wall_s']:.2f}x, "
          f"peak RSS {after['peak_rss_mib'] / before['peak_rss_mib']:.2f}x")


if __name__ == "__main__":
    main()
