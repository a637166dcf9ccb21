"""`kvctrace info` on the Mooncake conversation trace: first run with an empty Numba cache
(every kernel compiled) vs later runs with the cache warm (``cache=True`` kernels loaded from
disk), each as its own process, in one run.

NUMBA_CACHE_DIR points at a fresh temporary folder, so the first run really compiles and the
repository's own ``__pycache__`` is neither used nor touched. Wall time is the whole command
(interpreter start, imports, ingest, output), as a user sees it.

    /work/venv/bin/python benchmarks/bench_info_cold_warm.py [--trace PATH] [--warm-runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONVERSATION = REPO.parent / "shared" / "datasets" / "mooncake" / "conversation_trace.jsonl"


def run_info(trace: Path, cache_dir: str, cwd: str) -> tuple[float, dict]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=str(REPO))
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", "from kvctrace.cli import app; app()", "info", str(trace), "--json"],
                         env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode:
        raise SystemExit(f"kvctrace info failed:\n{res.stderr[-3000:]}")
    return wall, json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", type=Path, default=CONVERSATION)
    ap.add_argument("--warm-runs", type=int, default=3)
    args = ap.parse_args()
    if not args.trace.exists():
        raise SystemExit(f"trace not found: {args.trace} (the shared datasets folder is missing)")
    with tempfile.TemporaryDirectory(prefix="kvctrace-numba-") as cache, \
            tempfile.TemporaryDirectory(prefix="kvctrace-cwd-") as cwd:
        cold, facts = run_info(args.trace, cache, cwd)
        n_cached = sum(1 for p in Path(cache).rglob("*.nbc"))
        warm = [run_info(args.trace, cache, cwd)[0] for _ in range(args.warm_runs)]
    print(f"trace: {args.trace} ({facts['requests']:,} requests, {facts['accesses']:,} block accesses, "
          f"{facts['unique_blocks']:,} unique blocks)")
    print(f"kvctrace info, first run (empty Numba cache, {n_cached} compiled kernel signatures written to the cache): {cold:.2f} s")
    print(f"kvctrace info, warm cache (best of {len(warm)}): {min(warm):.2f} s  "
          f"(runs: {', '.join(f'{w:.2f}' for w in warm)})")
    print(f"compile time saved by the cache: {cold - min(warm):.2f} s  ({cold / min(warm):.1f}x faster warm)")


if __name__ == "__main__":
    main()
