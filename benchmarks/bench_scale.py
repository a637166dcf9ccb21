"""A trace bigger than the usual: `kvctrace synth` writes it (zstd-compressed JSON lines), then
`kvctrace ingest --db` (streamed: docs/data-model.md, "Streamed ingest") and `kvctrace analyze
DB` run on it, each in its own process; wall time and peak RSS (getrusage of a wrapper that
runs only that command) are printed per step, with bytes per block access (start-up included:
compare two sizes for the rate per access; docs/architecture.md "Memory" says what the
largest trace is). `analyze DB` runs twice: as a user runs it (above
`commands.ANALYZE_IN_CHUNKS_ABOVE` accesses the analyses stream the accesses table a chunk at
a time) and, as the baseline, with every block id read into memory first (the threshold
raised). The trace and the database are deleted at the end (--keep keeps them).

    .venv/bin/python benchmarks/bench_scale.py --requests 10500000   # ~300M block accesses
    .venv/bin/python benchmarks/bench_scale.py --requests 200000     # a quick check (~5.6M)

Disk: about 1.3 GB per 100M accesses for the compressed trace, 0.8 GB for the database and 0.8
GB for the ingest's spool of block ids (removed when it ends); the script checks the free
space first."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

sys.path.insert(0, str(REPO))

from bench_analyze_vs_peers import measure  # noqa: E402  (wall time and peak RSS of one command)

from kvctrace.commands import ANALYZE_IN_CHUNKS_ABOVE  # noqa: E402

ACCESSES_PER_REQUEST = 28.8       # kvctrace synth's default structure at 512-token blocks
DISK_BYTES_PER_ACCESS = 30        # trace (.zst) + database + spool, with room to spare


# `kvctrace analyze` with the store's ids read whole whatever its size (the baseline)
WHOLE_IDS = ("import sys, kvctrace.commands as c; c.ANALYZE_IN_CHUNKS_ABOVE = 1 << 62; sys.argv[0] = 'kvctrace'; "
             "from kvctrace.__main__ import main; main()")


def kvctrace(*args) -> list[str]:
    return [sys.executable, "-m", "kvctrace", *map(str, args)]


def step(name: str, cmd: list[str], accesses: int | None, env) -> dict:
    print(f"{name} ...", flush=True)
    got = measure(cmd, env=env)
    if got["rc"] != 0:
        raise SystemExit(f"{name} failed (exit {got['rc']}): {got['stderr']}")
    per = f", {got['peak_rss_mib'] * 2**20 / accesses:6.1f} B/access" if accesses else ""
    print(f"  {name:8s} {got['wall_s']:8.1f} s  peak RSS {got['peak_rss_mib']:9.1f} MiB{per}", flush=True)
    return got


def stored_facts(db: Path) -> dict:
    """The meta table of a kvctrace database (without loading the trace)."""
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.sql("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_500_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the trace and database go")
    ap.add_argument("--keep", action="store_true", help="keep the trace and the database")
    args = ap.parse_args()

    need = int(args.requests * ACCESSES_PER_REQUEST * DISK_BYTES_PER_ACCESS)
    free = shutil.disk_usage(args.dir).free
    if free < need:
        raise SystemExit(f"{args.dir}: {free / 2**30:.1f} GiB free, about {need / 2**30:.1f} GiB needed")
    work = Path(tempfile.mkdtemp(prefix="kvctrace-scale-", dir=args.dir))
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    trace, db = work / f"synth_{args.requests}.jsonl.zst", work / "scale.duckdb"
    try:
        step("synth", kvctrace("synth", trace, "--requests", args.requests, "--seed", args.seed), None, env)
        ingest = step("ingest", kvctrace("ingest", trace, "--db", db), None, env)
        info = stored_facts(db)
        accesses = int(info["accesses"])
        print(f"trace: {trace.stat().st_size / 2**20:.1f} MiB compressed, {int(info['requests']):,} requests, "
              f"{accesses:,} block accesses, {int(info['unique_blocks']):,} unique blocks; database "
              f"{db.stat().st_size / 2**20:.1f} MiB; ingest {ingest['peak_rss_mib'] * 2**20 / accesses:.1f} B/access",
              flush=True)
        chunked = step("analyze", kvctrace("analyze", db, "--out", work / "report"), accesses, env)
        whole = step("analyze, ids read whole", [sys.executable, "-c", WHOLE_IDS, "analyze", db, "--out",
                                                  work / "report-whole"], accesses, env)
        below = "" if accesses > ANALYZE_IN_CHUNKS_ABOVE else \
            f" (both read the ids whole: {accesses:,} accesses are below {ANALYZE_IN_CHUNKS_ABOVE:,})"
        print(f"analyze in chunks vs ids whole: {chunked['wall_s'] / whole['wall_s']:.2f}x the time, "
              f"{chunked['peak_rss_mib'] / whole['peak_rss_mib']:.2f}x the peak memory{below}", flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
