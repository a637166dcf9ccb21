"""`kvctrace analyze` vs `llmtrafficlens profile` and `kvcache-simulator run`, one run.

All three read the same generated Mooncake-format trace (200,000 requests, ~5.7M block
accesses, 512-token blocks). Each tool runs as its own process, once to warm caches (file
cache, Numba's on-disk cache), then once timed; wall time and peak RSS (the process's max
resident set, from getrusage of a wrapper that runs only that command) are printed with the
ratios. The peer tools are installed from PyPI into benchmarks/_venv (created here), never as
kvctrace dependencies.

    /work/venv/bin/python benchmarks/bench_analyze_vs_peers.py [--requests 200000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "_data"
PEER_VENV = HERE / "_venv"
PEERS = ("llmtrafficlens", "kvcache-simulator")


def mooncake_like_trace(n_requests: int = 200_000, mean_new_blocks: float = 11.0, seed: int = 0):
    """A Mooncake-shaped trace as CSR arrays: multi-turn sessions that extend their own
    history behind one of 64 shared system prompts (Zipf popularity), Poisson arrivals over
    one hour. Ids are chained prefix ids numbered in first-appearance order, as Mooncake's.
    Returns (offsets, blocks, ts_ms, input_length, output_length)."""
    rng = np.random.default_rng(seed)
    n_sys = 64
    sys_len = rng.integers(1, 7, n_sys)
    sys_pop = 1.0 / np.arange(1, n_sys + 1) ** 1.1
    sys_pop /= sys_pop.sum()
    sys_ids: dict[int, list] = {}
    next_id = 0
    sessions: list[list] = []
    offsets = np.zeros(n_requests + 1, np.int64)
    out: list = []
    choices_new = rng.random(n_requests)
    picks = rng.random(n_requests)
    n_new = rng.geometric(1.0 / mean_new_blocks, n_requests)
    sys_pick = rng.choice(n_sys, n_requests, p=sys_pop)
    for r in range(n_requests):
        if choices_new[r] < 0.35 or not sessions:
            s = int(sys_pick[r])
            if s not in sys_ids:
                sys_ids[s] = list(range(next_id, next_id + int(sys_len[s])))
                next_id += int(sys_len[s])
            sessions.append(list(sys_ids[s]))
            hist = sessions[-1]
        else:
            # recently active sessions are more likely to continue
            k = len(sessions) - 1 - int(picks[r] ** 3 * min(len(sessions), 2000))
            hist = sessions[max(k, 0)]
        new = int(n_new[r])
        hist.extend(range(next_id, next_id + new))
        next_id += new
        out.extend(hist)
        offsets[r + 1] = len(out)
        if len(hist) > 160:        # conversation ends; start over next time
            sessions.remove(hist)
        if len(sessions) > 4000:
            sessions.pop(0)
    blocks = np.asarray(out, dtype=np.int64)
    n_blocks = np.diff(offsets)
    input_len = n_blocks * 512 - rng.integers(0, 512, n_requests)
    ts_ms = np.sort(rng.uniform(0, 3_600_000, n_requests)).astype(np.int64)
    output_len = rng.integers(10, 800, n_requests)
    return offsets, blocks, ts_ms, input_len, output_len


def write_mooncake_jsonl(path: Path, n_requests: int, seed: int = 0) -> Path:
    """Write the generated trace in Mooncake's JSONL schema (kvctrace.synth.write_trace is used
    instead when it exists)."""
    try:
        from kvctrace.synth import write_trace  # the product's own generator, when present
    except ImportError:
        write_trace = None
    if write_trace is not None:
        try:
            return Path(write_trace(path, requests=n_requests, seed=seed) or path)
        except TypeError:
            pass  # different signature: fall back to the local generator below
    offsets, blocks, ts_ms, input_len, output_len = mooncake_like_trace(n_requests, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for r in range(n_requests):
            ids = blocks[offsets[r]:offsets[r + 1]].tolist()
            f.write(json.dumps({"timestamp": int(ts_ms[r]), "input_length": int(input_len[r]),
                                "output_length": int(output_len[r]), "hash_ids": ids}) + "\n")
    return path


def ensure_peer_venv() -> Path:
    bin_dir = PEER_VENV / "bin"
    if not (bin_dir / "llmtrafficlens").exists() or not (bin_dir / "kvcache-simulator").exists():
        print(f"creating {PEER_VENV} with the peer tools from PyPI ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "-q", *PEERS], check=True)
    return bin_dir


_WRAPPER = (
    "import resource, subprocess, sys, time, json\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "wall = time.perf_counter() - t\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'wall_s': wall, 'peak_rss_mib': rss / 1024, 'rc': p.returncode,"
    " 'stderr': p.stderr.decode(errors='replace')[-2000:]}))\n"
)


def measure(cmd: list[str], env=None) -> dict:
    """Run ``cmd`` in a fresh wrapper process: wall time and the command's peak RSS."""
    res = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    trace = DATA / f"mooncake_like_{args.requests}_s{args.seed}.jsonl"
    if not trace.exists():
        print(f"generating {trace} ...", flush=True)
        write_mooncake_jsonl(trace, args.requests, args.seed)
    n_lines = n_acc = 0
    with trace.open() as f:
        for line in f:
            n_lines += 1
            n_acc += line.count(",", line.index('"hash_ids"')) + 1
    print(f"trace: {trace} ({trace.stat().st_size / 2**20:.1f} MiB, {n_lines:,} requests, "
          f"{n_acc:,} block accesses)")

    bin_dir = ensure_peer_venv()
    out_dir = Path(tempfile.mkdtemp(prefix="kvctrace-bench-"))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    kvctrace_cmd = [sys.executable, "-c", "import sys; from kvctrace.cli import app; sys.argv[0] = 'kvctrace'; app()"]
    group = True
    try:
        sys.path.insert(0, str(REPO))
        from kvctrace.cli import app
        group = len(app.registered_commands) > 1 or app.registered_callback is not None
    except ImportError:
        pass
    tools = {
        "kvctrace analyze": kvctrace_cmd + (["analyze"] if group else []) +
                            [str(trace), "--out", str(out_dir / "kvctrace"), "--json"],
        "llmtrafficlens profile": [str(bin_dir / "llmtrafficlens"), "profile", "--format", "mooncake",
                                   str(trace), "-o", str(out_dir / "ltl")],
        "kvcache-simulator run": [str(bin_dir / "kvcache-simulator"), "run", "--trace", str(trace),
                                  "--model", "glm-5.2", "--block-size", "512", "--no-progress",
                                  "--format", "json", "--output", str(out_dir / "kvsim.json")],
    }
    results = {}
    for name, cmd in tools.items():
        measure(cmd, env)                      # warm-up run
        r = measure(cmd, env)
        results[name] = r
        status = "ok" if r["rc"] == 0 else f"FAILED (exit {r['rc']}): {r['stderr'].strip().splitlines()[-1:] }"
        print(f"{name:26s} wall {r['wall_s']:7.2f} s   peak RSS {r['peak_rss_mib']:8.1f} MiB   {status}", flush=True)

    kv = results["kvctrace analyze"]
    if kv["rc"] != 0:
        print("kvctrace analyze failed:\n" + kv["stderr"])
        return
    for peer in ("llmtrafficlens profile", "kvcache-simulator run"):
        r = results[peer]
        if r["rc"] != 0:
            print(f"{peer}: could not run on this input, see its error above")
            continue
        speed = r["wall_s"] / kv["wall_s"]
        mem = kv["peak_rss_mib"] / r["peak_rss_mib"]
        print(f"vs {peer:24s} speed-up {speed:5.2f}x (goal >= 4x: {'met' if speed >= 4 else 'NOT met'})   "
              f"kvctrace peak memory / theirs {mem:4.2f} (goal <= 1: {'met' if mem <= 1 else 'NOT met'})")
    summary = json.loads((out_dir / "kvctrace" / "summary.json").read_text())
    print(f"kvctrace: ideal hit ratio {summary['reuse']['ideal_hit_ratio_blocks']:.4f}, "
          f"{summary['trace']['accesses']:,} accesses")


if __name__ == "__main__":
    main()
