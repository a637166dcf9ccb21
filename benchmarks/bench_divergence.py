"""Prefix-divergence analysis cost against the reuse analysis on the same trace, in one run.

Traces generated into ``benchmarks/_data/`` (git-ignored):
* ``prompts``: chat logs (sessions of several turns carrying their history, four system prompts
  of which one embeds a per-request clock, RAG documents with Zipf popularity) as an OpenAI
  ``messages`` log, read with ``--tokenizer bytes``: the path a user runs. The divergence
  figure adds the ingest-time part of its work (``store._prefix_columns``: the token-exact
  prefix per request, computed while the tokens are in memory), timed separately.
* ``tokens``: the same chats as UTF-8 byte tokens (a ``tokens`` trace), with the ingest-time
  prefix columns dropped from the store: the fallback that reads the tokens back.
* ``hashed``: a synthetic Mooncake trace (``kvctrace.synth``): block level.

Each analysis runs in a fresh child process on the already ingested trace: wall time is the
fastest of ``--repeat`` runs (after an untimed warm-up that fills Numba's cache), peak memory
is the largest resident-set growth over the trace's own footprint, sampled every 2 ms while the
analysis runs. Target: divergence <= 2x the reuse analysis.

    .venv/bin/python benchmarks/bench_divergence.py [--sessions 3000] [--requests 200000] [--repeat 3]
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

_CHILD = r"""
import json, sys, threading, time
sys.path.insert(0, {repo!r})
import numpy as np, pyarrow as pa
from kvctrace import open_trace
from kvctrace.analysis.divergence import analyze_divergence
from kvctrace.analysis.reuse import analyze_reuse

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096

path, kind, which = sys.argv[1], sys.argv[2], sys.argv[3]
ingest_s = 0.0
if kind == "prompts":  # what a user runs: a chat log through --tokenizer bytes
    trace = open_trace(path, tokenizer="bytes")
    if which == "divergence":  # the ingest-time part of its cost (store._prefix_columns), timed here
        from kvctrace.formats.common import list_column
        from kvctrace.kernels.divergence import token_prefix
        values, toff = list_column(trace.sql("SELECT tokens FROM requests ORDER BY req_id")["tokens"])
        args = (trace.offsets, trace.blocks, trace.n_unique_blocks, trace.block_size, values, toff)
        token_prefix(*args)
        t = time.perf_counter()
        token_prefix(*args)
        ingest_s = time.perf_counter() - t
elif kind == "tokens":  # the same chats as byte tokens: the tokens format keeps them too
    trace = open_trace(path, block_size=16, partial_block="drop")
    if which == "divergence-readback":  # a store without the ingest-time prefix columns
        for column in ("prefix_shared_tokens", "prefix_match_req"):
            trace.con.execute(f"ALTER TABLE requests DROP COLUMN {{column}}")
        which = "divergence"
else:
    trace = open_trace(path)
fn = analyze_reuse if which == "reuse" else analyze_divergence
fn(trace)  # warm: Numba compiles or loads its cache
base = rss()
peak = [base]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)
watcher = threading.Thread(target=sample, daemon=True)
watcher.start()
t = time.perf_counter()
res = fn(trace)
wall = time.perf_counter() - t
stop.set(); watcher.join()
extra = {{"headline": res.headline, "level": res.level}} if which != "reuse" else {{}}
print(json.dumps({{"wall_s": wall, "ingest_s": ingest_s, "peak_mib": (max(peak[0], rss()) - base) / 2**20, "requests": trace.n_requests,
                  "accesses": trace.n_accesses, **extra}}))
"""


def run(*args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD.format(repo=str(REPO)), *args], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"child failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def best_of(repeat: int, *args: str) -> dict:
    runs = [run(*args) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["wall_s"])
    return best | {"peak_mib": max(r["peak_mib"] for r in runs)}


def prompts_path(path: Path) -> Path:
    return path.with_name(path.stem + ".prompts.jsonl")


def write_chat_tokens(path: Path, sessions: int, seed: int) -> None:
    """Chat sessions as byte tokens (``tokens`` trace), and the same chats as a ``prompts`` trace
    (OpenAI messages) at ``prompts_path(path)``."""
    import numpy as np
    rng = np.random.default_rng(seed)
    systems = [f"You are assistant {k}. Follow the style guide. " * 12 for k in range(3)]
    docs = [f"Document {d}: " + "facts about topic %d. " % d * int(rng.integers(20, 120)) for d in range(500)]
    zipf = 1.0 / np.arange(1, len(docs) + 1) ** 1.1
    zipf /= zipf.sum()
    rows, chats, t = [], [], 0.0
    for s in range(sessions):
        clock = s % 4 == 3  # one system prompt in four embeds a per-request clock
        system = systems[s % 3]
        history = [["user", docs[int(rng.choice(len(docs), p=zipf))] + f" Question {s}?"]]
        for turn in range(int(rng.integers(1, 8))):
            t += float(rng.exponential(2.0)) + 1e-3  # strictly increasing: line i is request i
            sys_text = (f"Current time: {int(t) // 3600:02d}:{int(t) // 60 % 60:02d}:{int(t) % 60:02d}. " + system
                        if clock else system)
            messages = [["system", sys_text]] + history
            tokens, offsets, roles = [], [], []
            for role, content in messages:
                offsets.append(len(tokens))
                roles.append(role)
                tokens += list(f"<|{role}|>\n{content}\n".encode())
            rows.append((t, tokens + list(b"<|assistant|>\n"), offsets, roles))
            chats.append((t, None, None, messages))
            history = history + [["assistant", f"Answer {s}.{turn}: " + "detail " * int(rng.integers(5, 60))],
                                 ["user", f"Follow-up {turn}?"]]
    with open(prompts_path(path), "w") as fh:
        for t, _, _, messages in chats:
            fh.write(json.dumps({"timestamp": round(t, 6),
                                 "messages": [{"role": r, "content": c} for r, c in messages]}) + "\n")
    with open(path, "w") as fh:
        for t, tokens, _, _ in rows:
            fh.write(json.dumps({"timestamp": round(t, 6), "token_ids": tokens}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=3000, help="chat sessions of the text trace (~4 turns each)")
    ap.add_argument("--requests", type=int, default=200_000, help="requests of the hashed (Mooncake) trace")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    DATA.mkdir(exist_ok=True)
    text = DATA / f"divergence_chat_{args.sessions}_s{args.seed}.jsonl"
    if not text.exists() or not prompts_path(text).exists():
        print(f"generating {text} ...", flush=True)
        write_chat_tokens(text, args.sessions, args.seed)
    hashed = DATA / f"divergence_mooncake_{args.requests}_s{args.seed}.jsonl"
    if not hashed.exists():
        print(f"generating {hashed} ...", flush=True)
        from kvctrace.synth import write_trace
        write_trace(hashed, "mooncake", n_requests=args.requests, seed=args.seed)
    runs = (("prompts", prompts_path(text), "divergence", "token level, the chats as a prompts log read with "
             "--tokenizer bytes (the path users run); its time includes the ingest-time prefix columns"),
            ("tokens", text, "divergence-readback", "token level, the chats as a tokens trace in a store without "
             "the ingest-time prefix columns: tokens read back from the store"),
            ("hashed", hashed, "divergence", "block level"))
    reuse = {}
    for kind, path, which, label in runs:
        if kind not in reuse:
            reuse[kind] = best_of(args.repeat, str(path), kind, "reuse")
            print(f"{kind} trace {path.name}: analyze_reuse {reuse[kind]['wall_s']:.3f} s  "
                  f"peak +{reuse[kind]['peak_mib']:.0f} MiB")
        div = best_of(args.repeat, str(path), kind, which)
        ratio = (div["wall_s"] + div["ingest_s"]) / reuse[kind]["wall_s"]
        print(f"  analyze_divergence ({label}): {div['requests']:,} requests, {div['accesses']:,} block accesses: "
              f"{div['wall_s']:.3f} s" + (f" + {div['ingest_s']:.3f} s at ingest" if div["ingest_s"] else "") + f"  peak +{div['peak_mib']:.0f} MiB  ratio {ratio:.2f}x "
              f"[target <= 2x: {'met' if ratio <= 2 else 'NOT met'}]")
        print(f"    headline: {div['headline']}")


if __name__ == "__main__":
    main()
