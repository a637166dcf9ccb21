"""Ingest speed of a folder of kv-cache-tester conversations (``kvctrace info DIR``): 700
conversations, a stand-in for the published 739, made by resampling the 12 real ones in
``../shared/datasets/kv-cache-tester`` into ``benchmarks/_data/`` (git-ignored).

Each stand-in conversation is a real one cut after a random number of its requests (at least
half of them), with its block ids shifted by a random offset (ids are local to a file, so the
prefix structure is the real one's). The ingest runs in a fresh child process (after an untimed
warm-up child that fills Numba's cache and the file cache): wall time from ``open_trace`` until
the dense arrays are in hand, and that child's peak RSS. Target: under a minute.

    .venv/bin/python benchmarks/bench_kv_cache_tester.py [--conversations 700] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "_data"
REAL = REPO.parent / "shared" / "datasets" / "kv-cache-tester"

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from kvctrace import open_trace
import kvctrace.store
t = time.perf_counter()
tr = open_trace(sys.argv[1], format="kv-cache-tester")
blocks, offsets = tr.blocks, tr.offsets
wall = time.perf_counter() - t
print(json.dumps({{"wall_s": wall, "requests": tr.n_requests, "accesses": tr.n_accesses,
                  "unique": tr.n_unique_blocks, "duration_s": tr.duration_s,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _shift_ids(requests: list, offset: int, keep: int | None = None) -> list:
    out = []
    for req in requests[:keep]:
        req = dict(req)
        if "hash_ids" in req:
            req["hash_ids"] = [h + offset for h in req["hash_ids"]]
        if isinstance(req.get("requests"), list):
            req["requests"] = _shift_ids(req["requests"], offset)
        out.append(req)
    return out


def generate(folder: Path, conversations: int, seed: int) -> None:
    import numpy as np
    real = [json.loads(p.read_text()) for p in sorted(REAL.glob("*.json"))]
    if not real:
        raise SystemExit(f"no real conversations in {REAL}")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(conversations):
        src = real[int(rng.integers(len(real)))]
        n = len(src["requests"])
        keep = int(rng.integers(max(1, n // 2), n + 1))
        doc = {**src, "id": f"standin_{k:04d}", "requests": _shift_ids(src["requests"], int(rng.integers(0, 10**6)), keep)}
        (folder / f"trace_{k:04d}.json").write_text(json.dumps(doc, separators=(",", ":")))


def run(folder: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD.format(repo=str(REPO)), str(folder)], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"child failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=700)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    folder = DATA / f"kv_cache_tester_{args.conversations}_s{args.seed}"
    if not folder.exists():
        print(f"generating {folder} ...", flush=True)
        generate(folder, args.conversations, args.seed)
    size_mib = sum(p.stat().st_size for p in folder.glob("*.json")) / 2**20
    run(folder)  # warm-up: Numba's cache and the file cache
    r = run(folder)
    print(f"folder: {folder.name} ({args.conversations:,} files, {size_mib:,.0f} MiB, {r['requests']:,} requests, "
          f"{r['accesses']:,} block accesses, {r['unique']:,} unique blocks, {r['duration_s']:,.0f} s of trace)")
    print(f"kvctrace open_trace (in-memory DuckDB): {r['wall_s']:.1f} s  "
          f"{r['accesses'] / r['wall_s'] / 1e6:.2f} M accesses/s  peak RSS {r['peak_rss_mib']:,.0f} MiB  "
          f"[target < 60 s: {'met' if r['wall_s'] < 60 else 'NOT met'}]")


if __name__ == "__main__":
    main()
