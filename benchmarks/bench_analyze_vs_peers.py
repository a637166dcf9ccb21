"""`kvctrace analyze` vs `llmtrafficlens profile` and `kvcache-simulator run`, one run per size.

All three read the same Mooncake-format trace made by ``kvctrace.synth.write_trace`` (200,000
requests: ~5.7M block accesses; 1,000,000: ~28.8M; 512-token blocks). Each tool runs as its
own process, once to warm caches (file cache, Numba's on-disk cache), then once timed; wall
time and peak RSS (the process's max resident set, from getrusage of a wrapper that runs only
that command) are printed with the ratios and kvctrace's bytes per block access. kvctrace is
timed right before each peer and each ratio compares those two runs (this machine's speed
drifts by up to 1.5x over minutes). The goals
(issue 12): kvctrace at least 10x faster than each peer on the 1M-request trace, and a lower
peak than each on both sizes (on 200k requests the speed-up is printed without a goal: the
~0.9 s kvctrace spends starting up, importing and loading its compiled kernels, is a third of
its run there). The peer tools are
installed from PyPI into benchmarks/_venv (created here), never as kvctrace dependencies.

    .venv/bin/python benchmarks/bench_analyze_vs_peers.py [--requests 200000 1000000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "_data"
PEER_VENV = HERE / "_venv"
PEERS = ("llmtrafficlens", "kvcache-simulator")


def write_mooncake_jsonl(path: Path, n_requests: int, seed: int = 0) -> Path:
    """The product's own generator (kvctrace.synth, default structure: sessions behind shared
    system prompts and documents, Poisson arrivals) in Mooncake's JSONL schema."""
    from kvctrace.synth import write_trace
    return Path(write_trace(path, "mooncake", n_requests=n_requests, seed=seed))


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


SPEED_GOAL = 10.0   # kvctrace at least this many times faster than each peer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, nargs="+", default=[200_000],
                    help="trace sizes in requests, one comparison each (e.g. 200000 1000000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    for n in args.requests:
        compare(n, args.seed)


def compare(n_requests: int, seed: int) -> None:
    """Generate (once) the trace of ``n_requests`` and time the three tools on it."""
    trace = DATA / f"synth_mooncake_{n_requests}_s{seed}.jsonl"
    if not trace.exists():
        print(f"generating {trace} ...", flush=True)
        write_mooncake_jsonl(trace, n_requests, seed)
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
    from kvctrace.cli import app
    group = len(app.registered_commands) > 1 or app.registered_callback is not None
    tools = {
        "kvctrace analyze": kvctrace_cmd + (["analyze"] if group else []) +
                            [str(trace), "--out", str(out_dir / "kvctrace"), "--json"],
        "llmtrafficlens profile": [str(bin_dir / "llmtrafficlens"), "profile", "--format", "mooncake",
                                   str(trace), "-o", str(out_dir / "ltl")],
        "kvcache-simulator run": [str(bin_dir / "kvcache-simulator"), "run", "--trace", str(trace),
                                  "--model", "glm-5.2", "--block-size", "512", "--no-progress",
                                  "--format", "json", "--output", str(out_dir / "kvsim.json")],
    }
    def report(name: str, r: dict) -> None:
        status = "ok" if r["rc"] == 0 else f"FAILED (exit {r['rc']}): {r['stderr'].strip().splitlines()[-1:] }"
        print(f"{name:26s} wall {r['wall_s']:7.2f} s   peak RSS {r['peak_rss_mib']:8.1f} MiB   {status}", flush=True)

    for cmd in tools.values():
        measure(cmd, env)                      # warm-up runs (file cache, Numba's on-disk cache)
    # kvctrace is timed right before each peer, and each speed-up compares those two runs: on
    # a machine whose speed drifts over minutes, runs made back to back see the same machine
    kv_runs = []
    for peer in ("llmtrafficlens profile", "kvcache-simulator run"):
        kv = measure(tools["kvctrace analyze"], env)
        report("kvctrace analyze", kv)
        if kv["rc"] != 0:
            print("kvctrace analyze failed:\n" + kv["stderr"])
            return
        kv_runs.append(kv)
        r = measure(tools[peer], env)
        report(peer, r)
        if r["rc"] != 0:
            print(f"{peer}: could not run on this input, see its error above")
            continue
        speed = r["wall_s"] / kv["wall_s"]
        mem = kv["peak_rss_mib"] / r["peak_rss_mib"]
        speed_goal = (f"goal >= {SPEED_GOAL:g}x: {'met' if speed >= SPEED_GOAL else 'NOT met'}"
                      if n_requests >= 1_000_000 else "the goal is at 1M requests")
        print(f"vs {peer:24s} speed-up {speed:5.2f}x ({speed_goal})   "
              f"kvctrace peak memory / theirs {mem:4.2f} (goal < 1: {'met' if mem < 1 else 'NOT met'})", flush=True)
    kv = max(kv_runs, key=lambda r: r["peak_rss_mib"])
    summary = json.loads((out_dir / "kvctrace" / "summary.json").read_text())
    accesses = summary["trace"]["accesses"]
    above = (kv["peak_rss_mib"] - 300) * 2**20 / max(accesses, 1)
    # issue 12's memory goal is stated at 28.5M accesses: on smaller traces the fixed ~250 MiB
    # of the program (imports, Numba, DuckDB) is most of the 300 MiB allowance
    goal = f"; goal at 28.5M accesses <= 20: {'met' if above <= 20 else 'NOT met'}" if accesses >= 28_000_000 else ""
    print(f"kvctrace: ideal hit ratio {summary['reuse']['ideal_hit_ratio_blocks']:.4f}, {accesses:,} accesses, "
          f"peak {kv['peak_rss_mib']:.0f} MiB = 300 MiB + {above:.1f} bytes per access{goal}")


if __name__ == "__main__":
    main()
