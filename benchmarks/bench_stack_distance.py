"""Exact LRU stack distances and SHARDS, against baselines, in one run.

Part 1, exact stack distances on a kvctrace.synth Mooncake-format trace (200k requests,
~5.6M accesses) and a Zipf(1.1) trace, accesses/s of:
  * kvctrace (``kernels.reuse.stack_distances``: bitmap + Fenwick tree over its words, Numba);
  * the textbook Fenwick tree over access times, same Numba compiler (isolates the data layout);
  * the same textbook Fenwick tree in pure Python, on a prefix of the trace;
  * libCacheSim's C LRU simulator (``libcachesim`` PyPI package). Its Python package exposes no
    stack-distance/reuse-distance routine (``distUtil`` is not bound), so it is timed on what
    it does expose: one LRU simulation gives ONE point of the miss-ratio curve, while one
    stack-distance pass gives every point. Its miss ratios are printed beside kvctrace's MRC
    as a cross-check (they must be equal).
Part 2, SHARDS on generated traces of >= 10M accesses: fixed-rate at 1% and fixed-size,
mean absolute error of the hit ratio against the exact curve (200 evenly spaced capacities,
the FAST'15 evaluation; also on 64 log-spaced ones) and time.

    /work/venv/bin/python benchmarks/bench_stack_distance.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numba as nb
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from kvctrace.analysis.reuse import log_capacities  # noqa: E402
from kvctrace.kernels.reuse import distance_counts, hit_ratio_at, stack_distances  # noqa: E402
from kvctrace.kernels.sampling import curve_at, shards_fixed_rate, shards_fixed_size  # noqa: E402
from sequences import synth_blocks, write_oracle_general, zipf_blocks  # noqa: E402


def fenwick_distances(blocks, tree, last, dist):
    """The textbook stack-distance algorithm: a Fenwick tree with one slot per access time
    (``tree``: N+1 zeros), query + move per access; ``last``: -1 per block. The same code runs
    compiled by Numba (arrays) and as pure Python (lists), the two textbook baselines."""
    n = len(blocks)
    seen = 0
    for t in range(n):
        b = blocks[t]
        p = last[b]
        if p < 0:
            dist[t] = -1
            seen += 1
        else:
            i = p + 1
            s = 0
            while i > 0:
                s += tree[i]
                i &= i - 1
            dist[t] = seen - s
            i = p + 1
            while i <= n:
                tree[i] -= 1
                i += i & (-i)
        i = t + 1
        while i <= n:
            tree[i] += 1
            i += i & (-i)
        last[b] = t
    return dist


_fenwick_numba = nb.njit(cache=True)(fenwick_distances)


def textbook_fenwick(blocks, n_unique):
    n = blocks.shape[0]
    return _fenwick_numba(blocks, np.zeros(n + 1, np.int32), np.full(n_unique, -1, np.int64), np.empty(n, np.int64))


def python_fenwick(blocks, n_unique):
    n = len(blocks)
    return fenwick_distances(blocks, [0] * (n + 1), [-1] * n_unique, [0] * n)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def libcachesim_lru(blocks, capacities):
    """Miss ratio and time of libCacheSim's LRU at each capacity (objects of size 1)."""
    import libcachesim as lcs
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "trace.oracleGeneral")
        write_oracle_general(blocks, path)
        out = []
        for cap in capacities:
            reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
            cache = lcs.LRU(cache_size=int(cap))
            (miss, _), el = timed(cache.process_trace, reader)
            out.append((int(cap), float(miss), el))
    return out


def part1(name, blocks, n_unique):
    n = blocks.shape[0]
    print(f"\n== exact stack distances: {name}: {n:,} accesses, {n_unique:,} distinct blocks")
    stack_distances(blocks[:1000], n_unique)          # load the Numba cache (warm)
    textbook_fenwick(blocks[:1000], n_unique)
    dist, t_kv = timed(stack_distances, blocks, n_unique)
    ref, t_tb = timed(textbook_fenwick, blocks, n_unique)
    assert np.array_equal(dist, ref), "kvctrace and the textbook Fenwick disagree"
    del ref
    m = min(n, 300_000)
    py, t_py = timed(python_fenwick, blocks[:m].tolist(), n_unique)
    assert py == dist[:m].tolist()
    kv_rate = n / t_kv / 1e6
    print(f"kvctrace stack_distances       {t_kv:7.3f} s  {kv_rate:7.1f} M accesses/s"
          f"   (goal >= 15 M/s: {'met' if kv_rate >= 15 else 'NOT met'})")
    print(f"textbook Fenwick, Numba        {t_tb:7.3f} s  {n / t_tb / 1e6:7.1f} M accesses/s   -> kvctrace {t_tb / t_kv:5.1f}x")
    print(f"textbook Fenwick, pure Python  {t_py:7.3f} s  {m / t_py / 1e6:7.2f} M accesses/s "
          f"(first {m:,} accesses) -> kvctrace {(m / t_py) and (n / t_kv) / (m / t_py):6.0f}x")
    counts, _ = distance_counts(dist)
    caps = [16, 4096, max(1, n_unique // 4)]
    try:
        lcs = libcachesim_lru(blocks, caps)
    except ImportError:
        print("libcachesim not installed (pip install libcachesim): C LRU baseline skipped")
        return
    one = float(np.mean([el for _, _, el in lcs]))
    print(f"libCacheSim C LRU, 1 capacity  {one:7.3f} s  {n / one / 1e6:7.1f} M accesses/s per MRC point; "
          f"kvctrace's pass gives all {counts.shape[0]:,} points; a 64-point curve would take "
          f"libCacheSim ~{64 * one:.1f} s -> kvctrace {64 * one / t_kv:5.0f}x")
    mine = 1.0 - hit_ratio_at(counts, n, [c for c, _, _ in lcs])
    for (cap, miss, _), ours in zip(lcs, mine):
        flag = "equal" if abs(miss - ours) < 1e-6 else "DIFFERENT"
        print(f"   LRU miss ratio at {cap:>9,} blocks: libCacheSim {miss:.6f}  kvctrace MRC {ours:.6f}  {flag}")


def part2(name, blocks, n_unique):
    n = blocks.shape[0]
    print(f"\n== SHARDS: {name}: {n:,} accesses, {n_unique:,} distinct blocks")
    shards_fixed_rate(blocks[:1000], n_unique, 0.01)
    shards_fixed_size(blocks[:1000], n_unique, 8192)
    dist, t_exact = timed(stack_distances, blocks, n_unique)
    counts, _ = distance_counts(dist)
    del dist
    lin = np.unique(np.linspace(1, counts.shape[0], 200).round().astype(np.int64))
    logc = log_capacities(n_unique, 64)
    print(f"exact MRC                       {t_exact:6.2f} s")
    for label, run in (("fixed-rate R=1%", lambda: shards_fixed_rate(blocks, n_unique, 0.01)),
                       ("fixed-rate R=0.1%", lambda: shards_fixed_rate(blocks, n_unique, 0.001)),
                       ("fixed-size s_max=8192", lambda: shards_fixed_size(blocks, n_unique, 8192)),
                       ("fixed-size s_max=32768", lambda: shards_fixed_size(blocks, n_unique, 32768))):
        res, el = timed(run)
        c, total = res[0], res[1]
        extra = f", final rate {res[2]:.4%}" if len(res) == 4 else ""
        e_lin = np.abs(curve_at(c, total, lin) - hit_ratio_at(counts, n, lin)).mean()
        e_log = np.abs(curve_at(c, total, logc) - hit_ratio_at(counts, n, logc)).mean()
        goal = f"  (goal <= 0.01: {'met' if e_lin <= 0.01 else 'NOT met'})" if label == "fixed-rate R=1%" else ""
        print(f"SHARDS {label:24s} {el:6.2f} s  MAE linear grid {e_lin:.4f}, log grid {e_log:.4f}{extra}{goal}")


def main():
    part1("kvctrace.synth Mooncake-format trace (200k requests)", *synth_blocks(200_000, 0)[1:])
    part1("Zipf(1.1) over 1M blocks", *zipf_blocks(5_700_000, 1_000_000, seed=1))
    part2("kvctrace.synth Mooncake-format trace (370k requests)", *synth_blocks(370_000, 2)[1:])
    part2("Zipf(1.1) over 2M blocks", *zipf_blocks(10_000_000, 2_000_000, seed=3))


if __name__ == "__main__":
    main()
