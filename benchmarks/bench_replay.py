"""One-tier LRU replay vs libCacheSim, and the general engine's throughput, in one run.

Sequences (>= 10M accesses each):
  * a kvctrace.synth Mooncake-format workload (chained 512-token block ids, ~360k requests);
  * Zipf(1.1) over 1M blocks (requests of 20 accesses).
For each, at capacity = 10% of the distinct blocks:
  * kvctrace one-tier LRU (``replay.engine.run_hits`` -> the linked-list Numba kernel), which
    also counts prefix hits per request;
  * libCacheSim's C ``LRU.process_trace`` on the same accesses (binary oracleGeneral file,
    unit sizes); its hit count must equal kvctrace's block hits (printed).
Timings exclude JIT compilation (a warm-up call first) and writing libCacheSim's input file.
Then the multi-tier engine (3 tiers, exclusive, each registered policy) on the synth sequence.

    /work/venv/bin/python benchmarks/bench_replay.py [--synth-requests N] [--zipf-accesses N]

(smaller sizes for a quick check; the defaults are the sizes above).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from kvctrace.kernels import policies  # noqa: E402
from kvctrace.kernels.replay import next_use  # noqa: E402
from kvctrace.replay.engine import run_hits  # noqa: E402
from sequences import synth_blocks, write_oracle_general, zipf_blocks  # noqa: E402


def zipf_sequence(n=10_000_000, n_blocks=1_000_000, seed=0, per_request=20):
    """Zipf(1.1) accesses cut into requests of ``per_request`` blocks."""
    blocks, n_unique = zipf_blocks(n, n_blocks, seed)
    offsets = np.arange(0, n + 1, per_request, dtype=np.int64)
    if offsets[-1] != n:
        offsets = np.append(offsets, n)
    return offsets, blocks, n_unique


def kvctrace_lru(offsets, blocks, n_unique, cap):
    run_hits(offsets[:2], blocks[:offsets[1]], n_unique, [cap], [policies.code("lru")], [1])  # JIT warm-up
    t = time.perf_counter()
    h = run_hits(offsets, blocks, n_unique, [cap], [policies.code("lru")], [1])
    return h, time.perf_counter() - t


def libcachesim_lru(blocks, cap):
    import libcachesim as lcs
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "seq.oracleGeneral"
        write_oracle_general(blocks, path)
        reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
        cache = lcs.LRU(cap)
        t = time.perf_counter()
        miss_ratio = cache.process_trace(reader)[0]
        dt = time.perf_counter() - t
    return int(round((1 - miss_ratio) * blocks.shape[0])), dt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth-requests", type=int, default=360_000, help="requests of the synth workload")
    ap.add_argument("--zipf-accesses", type=int, default=10_000_000, help="accesses of the Zipf sequence")
    args = ap.parse_args(argv)
    try:
        import libcachesim  # noqa: F401
        have_lcs = True
    except ImportError:
        have_lcs = False
        print("libcachesim not installed: `pip install libcachesim` for the baseline")
    t = time.perf_counter()
    seqs = {"synth-mooncake": synth_blocks(args.synth_requests, 0), "zipf-1.1": zipf_sequence(args.zipf_accesses)}
    print(f"generated sequences in {time.perf_counter() - t:.1f} s")
    print(f"\n{'sequence':16} {'accesses':>11} {'capacity':>9} {'kvctrace M/s':>13} {'libCacheSim M/s':>16} "
          f"{'ratio':>6}  hits equal")
    for name, (offsets, blocks, n_unique) in seqs.items():
        n = blocks.shape[0]
        cap = max(n_unique // 10, 1)
        h, dt = kvctrace_lru(offsets, blocks, n_unique, cap)
        ours = n / dt / 1e6
        if have_lcs:
            lhits, ldt = libcachesim_lru(blocks, cap)
            theirs = n / ldt / 1e6
            print(f"{name:16} {n:>11,} {cap:>9,} {ours:>13.1f} {theirs:>16.1f} {ours / theirs:>5.1f}x  "
                  f"{int(h.block_hits.sum()) == lhits}")
        else:
            print(f"{name:16} {n:>11,} {cap:>9,} {ours:>13.1f} {'-':>16} {'-':>6}")
        print(f"{'':16} prefix hit ratio {h.prefix_hits.sum() / n:.4f}, block hit ratio {h.block_hits.sum() / n:.4f}")

    offsets, blocks, n_unique = seqs["synth-mooncake"]
    n = blocks.shape[0]
    caps = [n_unique // 100, n_unique // 20, n_unique // 5]
    nu = next_use(blocks, np.int64(n_unique))
    print(f"\nmulti-tier engine, 3 exclusive tiers {caps} on synth-mooncake ({n:,} accesses):")
    for pol in policies.names():
        code = policies.get(pol).code
        run_hits(offsets[:50], blocks[:offsets[50]], n_unique, caps, [code] * 3, [1, 1, 1], next_use=nu[:offsets[50]])
        t = time.perf_counter()
        h = run_hits(offsets, blocks, n_unique, caps, [code] * 3, [2, 1, 1], next_use=nu)
        dt = time.perf_counter() - t
        print(f"  {pol:11} {n / dt / 1e6:6.1f} M accesses/s   prefix hit ratio {h.prefix_hits.sum() / n:.4f}")


if __name__ == "__main__":
    main()
