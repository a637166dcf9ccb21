"""`recommend` speed and memory, the two figures of issue 11 item 7:

1. configs per second on the Mooncake conversation trace: the grid of 5 policies (lru, fifo,
   lfu, s3fifo, prefix-lru) x 2 admission thresholds x 2^3 capacity fractions of the
   h100-llama3-8b tiers x 5 index models = 400 configs (80 replays: the 16 all-LRU ones from one
   stack-distance pass, the rest by the engine), threads vs a fork process pool; and the default
   guided search (capacities from the analyses) on both presets. Target: 400 configs <= 3 s.
2. with ``--big``: the default ``kvctrace recommend`` on a ~31M-access synthetic trace
   (``kvctrace synth --requests 1090000``, written once into /tmp and ingested into a .duckdb
   beside it), run as a child process under ``/usr/bin/time -v`` for its wall time and peak
   RSS. Target: <= 60 s and <= 3 GiB. It takes minutes of a shared machine: run it once.

The first call of each mode is a warm-up (JIT cache load) and is not timed.

    python benchmarks/bench_recommend.py [--big] [--requests N]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numba  # noqa: E402

from kvctrace import open_trace  # noqa: E402
from kvctrace.replay import load_preset  # noqa: E402
from kvctrace.replay.sweep import Grid, recommend  # noqa: E402

TRACE = HERE.parent.parent / "shared" / "datasets" / "mooncake" / "conversation_trace.jsonl"
GRID_400 = Grid(policies=("lru", "fifo", "lfu", "s3fifo", "prefix-lru"), admission=(1, 2), fractions=(0.5, 1.0))
TINY = Grid(policies=("lru", "fifo"), admission=(1,), fractions=(1.0,), indexes=("chime",))


def configs_per_second() -> None:
    if not TRACE.exists():
        sys.exit(f"missing {TRACE}")
    trace = open_trace(TRACE)
    print(f"{TRACE.name}: {trace.n_requests:,} requests, {trace.n_accesses:,} accesses; "
          f"{os.cpu_count()} cores, numba threads {numba.get_num_threads()}")
    print(f"\n{'preset':16} {'search':8} {'workers':10} {'configs':>8} {'replays':>8} {'seconds':>8} "
          f"{'configs/s':>10}  recommended")
    runs = [("h100-llama3-8b", GRID_400, "threads"), ("h100-llama3-8b", GRID_400, "processes"),
            ("h100-llama3-8b", Grid(), "threads"), ("h100-llama3-70b", Grid(), "threads")]
    for preset, grid, workers in runs:
        base = load_preset(preset)
        recommend(trace, base, grid=TINY, workers=workers)  # warm-up
        t = time.perf_counter()
        rec = recommend(trace, base, grid=grid, workers=workers)
        dt = time.perf_counter() - t
        sw = rec.sweep
        print(f"{preset:16} {sw.search:8} {workers:10} {sw.table.height:>8} {sw.table['replay'].n_unique():>8} "
              f"{dt:>8.2f} {sw.table.height / dt:>10.1f}  {rec.row['index']}/{rec.row['policy']}/"
              f">={rec.row['admission']}")


def big(requests: int) -> None:
    """The default `kvctrace recommend` on a synthetic trace of ``requests`` requests."""
    src = Path(f"/tmp/kvctrace-bench-recommend-{requests}.jsonl")
    db = src.with_suffix(".duckdb")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    cli = [sys.executable, "-m", "kvctrace"]
    if not db.exists():
        if not src.exists():
            subprocess.run(cli + ["synth", str(src), "--requests", str(requests)], check=True, env=env)
        subprocess.run(cli + ["ingest", str(src), "--db", str(db)], check=True, env=env, stdout=subprocess.DEVNULL)
    cmd = ["/usr/bin/time", "-v"] + cli + ["recommend", str(db), "--out", str(db.with_suffix(".toml")), "--top", "5"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr).group(1)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    cpu = sum(float(re.search(rf"{k} time \(seconds\): (\S+)", done.stderr).group(1)) for k in ("User", "System"))
    parts = [float(x) for x in wall.split(":")]
    seconds = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) > 2 else 0)
    print(f"\n`kvctrace recommend {db.name}` ({requests:,} requests): {seconds:.1f} s wall, {cpu:.1f} s CPU, "
          f"peak RSS {peak_kb / 2**20:.2f} GiB (targets: 60 s, 3 GiB)")
    print("\n".join(done.stdout.splitlines()[:3]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="also time the ~31M-access synthetic trace")
    ap.add_argument("--requests", type=int, default=1_090_000, help="requests of the big synthetic trace")
    args = ap.parse_args()
    configs_per_second()
    if args.big:
        big(args.requests)


if __name__ == "__main__":
    main()
