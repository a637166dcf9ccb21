"""`recommend` sweep on the Mooncake conversation trace: configs per second, Numba prange
threads vs a fork process pool, in one run.

Grids (index models are priced from one replay, so configs = replays x 5 index models):
  * h100-llama3-8b preset (3 tiers), default grid: 5 policies x 2 admission x 2^3 capacity
    fractions = 80 replays -> 400 configs;
  * h100-llama3-70b preset (4 tiers), default grid: 160 replays -> 800 configs.
The first call of each worker mode is a warm-up (JIT cache load) and is not timed.
Target: >= 100 configs in under 10 s on 2 cores.

    /work/venv/bin/python benchmarks/bench_recommend.py
"""
from __future__ import annotations

import os
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


def main():
    if not TRACE.exists():
        sys.exit(f"missing {TRACE}")
    trace = open_trace(TRACE)
    print(f"{TRACE.name}: {trace.n_requests:,} requests, {trace.n_accesses:,} accesses; "
          f"{os.cpu_count()} cores, numba threads {numba.get_num_threads()}")
    tiny = Grid(policies=("lru",), admission=(1,), fractions=(1.0,), indexes=("chime",))
    print(f"\n{'preset':16} {'workers':10} {'configs':>8} {'replays':>8} {'seconds':>8} {'configs/s':>10}  recommended")
    for preset in ("h100-llama3-8b", "h100-llama3-70b"):
        base = load_preset(preset)
        for workers in ("threads", "processes"):
            recommend(trace, base, grid=tiny, workers=workers)  # warm-up
            t = time.perf_counter()
            rec = recommend(trace, base, workers=workers)
            dt = time.perf_counter() - t
            sw = rec.sweep.table
            print(f"{preset:16} {workers:10} {sw.height:>8} {sw['replay'].n_unique():>8} {dt:>8.2f} "
                  f"{sw.height / dt:>10.1f}  {rec.row['index']}/{rec.row['policy']}/>={rec.row['admission']}")


if __name__ == "__main__":
    main()
