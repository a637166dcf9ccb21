"""Access-pattern, hotness, prefix and workload analyses against baselines, in one run.

On a kvctrace.synth workload at Mooncake's 512-token blocks (200,000 requests, millions of
block accesses, with sessions and request types), warm (Numba's cache compiled by a first call):
  * sequential flags + lookup plan: kvctrace's Numba run kernel vs a vectorised numpy
    version (neighbour comparisons over the whole access array) and vs pure Python (on a
    prefix of the trace, rate extrapolated);
  * analyze_access / analyze_hotness / analyze_prefix / analyze_workload: wall time and
    accesses/s (hotness against a numpy+Python baseline: np.unique counts, sort, Gini,
    top-k shares, per-window Counter top-k).

    /work/venv/bin/python benchmarks/bench_access_hotness.py [--requests 200000]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from kvctrace.analysis.access import analyze_access  # noqa: E402
from kvctrace.analysis.hotness import analyze_hotness  # noqa: E402
from kvctrace.analysis.prefix import analyze_prefix  # noqa: E402
from kvctrace.analysis.workload import analyze_workload  # noqa: E402
from kvctrace.kernels.hashing import rechain  # noqa: E402
from kvctrace.kernels.runs import find_runs, request_lookup_plan  # noqa: E402
from kvctrace.synth import TYPES, synthesize  # noqa: E402
from kvctrace.trace import Trace  # noqa: E402


def best_of(fn, repeat=3):
    best = math.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def numpy_runs(offsets, blocks):
    """Sequential flags and per-request point/range counts with numpy only."""
    n = blocks.shape[0]
    req = np.repeat(np.arange(offsets.shape[0] - 1), np.diff(offsets))
    link = (blocks[1:] == blocks[:-1] + 1) & (req[1:] == req[:-1])
    seq = np.zeros(n, bool)
    seq[1:] |= link
    seq[:-1] |= link
    run_start = np.ones(n, bool)
    run_start[1:] = ~link
    starts = np.flatnonzero(run_start)
    lengths = np.diff(np.append(starts, n))
    n_range = np.bincount(req[starts[lengths >= 2]], minlength=offsets.shape[0] - 1)
    n_point = np.bincount(req[starts[lengths == 1]], minlength=offsets.shape[0] - 1)
    return seq, n_point, n_range


def python_runs(offsets, blocks):
    flags, plans = [], []
    for r in range(len(offsets) - 1):
        ids = blocks[offsets[r]:offsets[r + 1]]
        lengths = []
        for i, b in enumerate(ids):
            if i and ids[i - 1] + 1 == b:
                lengths[-1] += 1
            else:
                lengths.append(1)
        for x in lengths:
            flags.extend([x >= 2] * x)
        plans.append((sum(x == 1 for x in lengths), sum(x >= 2 for x in lengths)))
    return flags, plans


def baseline_hotness(trace, n_windows=20, k=100):
    _, counts = np.unique(trace.blocks, return_counts=True)
    desc = np.sort(counts)[::-1]
    asc = desc[::-1].astype(float)
    u = asc.shape[0]
    gini = 2 * (np.arange(1, u + 1) * asc).sum() / (u * asc.sum()) - (u + 1) / u
    tops = [desc[:max(1, math.ceil(p / 100 * u))].sum() / desc.sum() for p in (1, 10)]
    edges = np.linspace(0, trace.ts[-1], n_windows + 1)
    bounds = trace.offsets[np.searchsorted(trace.ts, edges)]
    bounds[-1] = trace.n_accesses
    sets = [set(b for b, _ in sorted(Counter(trace.blocks[bounds[w]:bounds[w + 1]].tolist())
                                    .items(), key=lambda kv: (-kv[1], kv[0]))[:k])
            for w in range(n_windows)]
    return gini, tops, sets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--python-prefix", type=int, default=300_000,
                    help="accesses given to the pure-Python baseline")
    args = ap.parse_args()
    work = synthesize(args.requests, 0)
    content, offsets = work.block_hashes(512)
    trace = Trace.from_arrays(offsets, rechain(content, offsets), ts=work.ts,
                              input_len=work.input_len, output_len=work.output_len,
                              block_size=512, format="mooncake",
                              session_id=work.session.astype(str).tolist(),
                              type=[TYPES[t] for t in work.type])
    n = trace.n_accesses
    print(f"trace: {trace.n_requests:,} requests, {n:,} accesses, "
          f"{trace.n_unique_blocks:,} unique blocks")

    find_runs(trace.offsets[:2], trace.blocks[:trace.offsets[1]])   # compile / load cache
    t_k, runs = best_of(lambda: find_runs(trace.offsets, trace.blocks))
    t_plan, plan = best_of(lambda: request_lookup_plan(trace.offsets, trace.blocks))
    t_np, (seq, n_point, n_range) = best_of(lambda: numpy_runs(trace.offsets, trace.blocks))
    assert (seq == runs.sequential).all() and (n_point == plan.n_point).all()
    assert (n_range == plan.n_range).all()
    cut = int(np.searchsorted(trace.offsets, args.python_prefix))
    sub_off = trace.offsets[:cut + 1]
    sub_blocks = trace.blocks[:sub_off[-1]].tolist()
    t_py, _ = best_of(lambda: python_runs(sub_off.tolist(), sub_blocks), repeat=1)
    py_rate = sub_off[-1] / t_py
    print("\nsequential flags + per-request point/range counts (find_runs also lists every run)")
    print(f"  kvctrace Numba : {t_k:8.3f} s  {n / t_k / 1e6:8.1f} M accesses/s "
          f"(request_lookup_plan alone: {t_plan:.3f} s)")
    print(f"  numpy          : {t_np:8.3f} s  {n / t_np / 1e6:8.1f} M accesses/s   "
          f"kvctrace is {t_np / t_k:.1f}x faster")
    print(f"  pure Python    : {sub_off[-1]:,} accesses in {t_py:.3f} s  {py_rate / 1e6:8.2f} M "
          f"accesses/s   kvctrace is {n / t_k / py_rate:.0f}x faster")

    print("\nanalyses (warm, best of 3)")
    for fn in (analyze_access, analyze_hotness, analyze_prefix, analyze_workload):
        fn(trace)
        t, _ = best_of(lambda: fn(trace))
        print(f"  {fn.__name__:17s}: {t:8.3f} s  {n / t / 1e6:8.1f} M accesses/s")
    t_base, _ = best_of(lambda: baseline_hotness(trace), repeat=1)
    t_hot, _ = best_of(lambda: analyze_hotness(trace, window_s=trace.duration_s / 20))
    print(f"  hotness baseline (numpy + Counter, fewer metrics): {t_base:.3f} s; "
          f"analyze_hotness is {t_base / t_hot:.1f}x faster")


if __name__ == "__main__":
    main()
