"""Local engine vs Ray on this machine, and a projection to N machines.

1. `recommend` sweep on the Mooncake conversation trace (h100-llama3-8b preset, default grid:
   80 replays -> 400 configs): the local engine (Numba prange threads) vs one Ray task per
   replay config. The tables must be identical (checked).
2. Partitioned reuse analysis of a synthetic trace (`kvctrace synth`, mooncake format,
   --requests, default 175,000 = 5.0M accesses) exported with `kvctrace export --partitions P`:
   local (partitions one after another in this process) vs Ray (one task per partition, each
   reading its own Parquet files), beside the exact single-pass stack distances, with the
   merged curve's MAE against the exact one.
Each engine runs once untimed first (worker start-up, Numba cache loads); Ray start-up is
printed apart.

Projection to N machines of c cores each (c = the CPUs per node of the session), from the
Ray run's measured per-partition compute times t_p (each task times itself), the driver's
merge cost t_merge and its fixed cost t_fixed = max(0, partitions wall - sum(t_p)/c) (what
the wall time holds beyond c cores' worth of partition work: reading requests.parquet,
scheduling, moving results):

    T(N) = t_fixed + sum_p(t_p) / (N*c) + t_merge * (N*c) / P

i.e. with P' = N*c partitions (one wave of tasks), a partition's time scales with its share
of the accesses (the stack-distance pass is O(n log n), close to linear) and the merge with
the number of partitions merged (it adds P' per-request arrays). Not modelled: reading the
partition files over the network (each worker reads 1/P' of the export, ~24 bytes per
access), stragglers, and Ray's per-task overhead (about a millisecond).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_ray.py [--requests 175000] [--partitions 8]
        [--ray-address HOST:PORT]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from kvctrace import open_trace  # noqa: E402
from kvctrace.analysis.partitioned import analyze_partitioned, export_partitions  # noqa: E402
from kvctrace.engines import ray_engine  # noqa: E402
from kvctrace.kernels.reuse import distance_counts, stack_distances  # noqa: E402
from kvctrace.replay import load_preset  # noqa: E402
from kvctrace.replay.sweep import Grid, recommend  # noqa: E402
from kvctrace.synth import write_trace  # noqa: E402

CONVERSATION = HERE.parent.parent / "shared" / "datasets" / "mooncake" / "conversation_trace.jsonl"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_sweep() -> None:
    if not CONVERSATION.exists():
        print(f"(sweep skipped: missing {CONVERSATION})")
        return
    trace = open_trace(CONVERSATION)
    base = load_preset("h100-llama3-8b")
    tiny = Grid(policies=("lru",), admission=(1,), fractions=(1.0,), indexes=("chime",))
    print(f"\nrecommend sweep, {CONVERSATION.name}: {trace.n_requests:,} requests, {trace.n_accesses:,} accesses")
    print(f"{'engine':8} {'configs':>8} {'replays':>8} {'seconds':>8} {'configs/s':>10}")
    tables = {}
    for engine in ("local", "ray"):
        recommend(trace, base, grid=tiny, engine=engine)  # warm-up
        rec, dt = timed(lambda: recommend(trace, base, engine=engine))
        t = rec.sweep.table
        tables[engine] = t
        print(f"{engine:8} {t.height:>8} {t['replay'].n_unique():>8} {dt:>8.2f} {t.height / dt:>10.1f}")
    print("tables identical:", tables["local"].equals(tables["ray"]))


def bench_partitioned(requests: int, partitions: int, cores: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kvctrace-bench-ray-") as tmp:
        path, dt_synth = timed(lambda: write_trace(Path(tmp) / "chat.jsonl", "mooncake", requests, seed=1))
        trace, dt_open = timed(lambda: open_trace(path))
        print(f"\npartitioned analysis, synthetic {requests:,} requests: {trace.n_accesses:,} accesses, "
              f"{trace.n_unique_blocks:,} blocks (synth {dt_synth:.1f} s, ingest {dt_open:.1f} s)")
        _, dt_exact = timed(lambda: distance_counts(stack_distances(trace.blocks, trace.n_unique_blocks)))
        folder = Path(tmp) / "export"
        _, dt_export = timed(lambda: export_partitions(trace, folder, partitions))
        print(f"exact stack distances, one pass: {dt_exact:.2f} s;  export --partitions {partitions}: {dt_export:.2f} s")
        print(f"{'engine':8} {'P':>3} {'wall s':>8} {'sum t_p':>8} {'max t_p':>8} {'merge s':>8}")
        runs = {}
        for engine in ("local", "ray"):
            analyze_partitioned(folder, engine=engine, exact=False)  # warm-up
            res, dt = timed(lambda: analyze_partitioned(folder, engine=engine, exact=False))
            tm = res.timings_s
            runs[engine] = res
            print(f"{engine:8} {partitions:>3} {dt:>8.2f} {tm['partition_sum']:>8.2f} {tm['partition_max']:>8.2f} "
                  f"{tm['merge']:>8.3f}")
        err = analyze_partitioned(folder, exact=True).error
        print(f"merged curve vs exact: MAE {err['mae_linear']:.5f} (linear grid), {err['mae_log']:.5f} (log grid), "
              f"max {err['max_abs']:.4f}")
        project(runs["ray"].timings_s, partitions, cores)


def project(tm: dict, partitions: int, cores: int) -> None:
    fixed = max(tm["partitions_wall"] - tm["partition_sum"] / cores, 0.0)
    print(f"\nprojection T(N) = t_fixed + sum(t_p)/(N*c) + t_merge*(N*c)/P with c={cores}, "
          f"t_fixed={fixed:.2f} s, sum(t_p)={tm['partition_sum']:.2f} s, t_merge={tm['merge']:.3f} s at P={partitions}")
    print(f"{'machines':>8} {'partitions':>10} {'projected s':>12}")
    for n in (1, 2, 4, 8, 16, 64):
        p = n * cores
        t = fixed + tm["partition_sum"] / p + tm["merge"] * p / partitions
        print(f"{n:>8} {p:>10} {t:>12.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=175_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--ray-address", default=None)
    ap.add_argument("--skip-sweep", action="store_true")
    args = ap.parse_args()
    info, dt = timed(lambda: ray_engine.connect(args.ray_address))
    cores = max(info["cpus"] // max(info["nodes"], 1), 1)
    print(f"Ray {'joined' if args.ray_address else 'started'} in {dt:.1f} s: {info['nodes']} node(s), "
          f"{info['cpus']} CPUs; this machine {os.cpu_count()} CPUs; Numba cache {ray_engine.numba_cache_dir()}")
    if not args.skip_sweep:
        bench_sweep()
    bench_partitioned(args.requests, args.partitions, cores)
    ray_engine.shutdown()


if __name__ == "__main__":
    main()
