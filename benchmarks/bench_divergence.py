"""Prefix-divergence analysis cost against the reuse analysis on the same trace, in one run.

Two traces, generated into ``benchmarks/_data/`` (git-ignored):
* ``text``: chat logs as UTF-8 byte tokens (what ``--tokenizer bytes`` stores): sessions of
  several turns carrying their history, four system prompts (one embeds a per-request clock),
  RAG documents with Zipf popularity. It is written as a ``tokens`` trace and the text formats'
  columns (``tokens``, ``msg_offsets``, ``msg_roles``) are added to the store, so the
  divergence analysis runs at token level.
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
if kind == "text":
    trace = open_trace(path, block_size=16, partial_block="drop")
    side = json.loads(open(path + ".messages.json").read())
    con = trace.con
    for ddl in ("tokens INTEGER[]", "msg_offsets INTEGER[]", "msg_roles VARCHAR[]"):
        con.execute(f"ALTER TABLE requests ADD COLUMN {{ddl}}")
    # the file's lines are in timestamp order, so line i is request i
    con.execute("UPDATE requests SET tokens = t.token_ids FROM (SELECT row_number() OVER () - 1 AS rid, token_ids "
                "FROM read_json($p, columns={{'token_ids': 'INTEGER[]'}})) t WHERE requests.req_id = t.rid", {{"p": path}})
    con.register("m", pa.table({{"req_id": np.arange(len(side["offsets"])), "o": side["offsets"], "r": side["roles"]}}))
    con.execute("UPDATE requests SET msg_offsets = m.o, msg_roles = m.r FROM m WHERE requests.req_id = m.req_id")
    con.unregister("m")
    trace.meta["tokenizer"] = "bytes"
    if which == "divergence-stored":  # what a text trace's ingest stores (store._prefix_columns)
        from kvctrace.formats.common import list_column
        from kvctrace.kernels.divergence import token_prefix
        values, toff = list_column(trace.sql("SELECT tokens FROM requests ORDER BY req_id")["tokens"])
        shared, match = token_prefix(trace.offsets, trace.blocks, trace.n_unique_blocks, 16, values, toff)
        con.execute("ALTER TABLE requests ADD COLUMN prefix_shared_tokens BIGINT")
        con.execute("ALTER TABLE requests ADD COLUMN prefix_match_req BIGINT")
        con.register("p", pa.table({{"req_id": np.arange(shared.shape[0]), "s": shared, "m": match}}))
        con.execute("UPDATE requests SET prefix_shared_tokens = p.s, prefix_match_req = p.m FROM p WHERE requests.req_id = p.req_id")
        con.unregister("p")
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
print(json.dumps({{"wall_s": wall, "peak_mib": (max(peak[0], rss()) - base) / 2**20, "requests": trace.n_requests,
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


def write_chat_tokens(path: Path, sessions: int, seed: int) -> None:
    """Chat sessions as byte tokens (``tokens`` trace) plus a side file of message offsets/roles."""
    import numpy as np
    rng = np.random.default_rng(seed)
    systems = [f"You are assistant {k}. Follow the style guide. " * 12 for k in range(3)]
    docs = [f"Document {d}: " + "facts about topic %d. " % d * int(rng.integers(20, 120)) for d in range(500)]
    zipf = 1.0 / np.arange(1, len(docs) + 1) ** 1.1
    zipf /= zipf.sum()
    rows, t = [], 0.0
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
            history = history + [["assistant", f"Answer {s}.{turn}: " + "detail " * int(rng.integers(5, 60))],
                                 ["user", f"Follow-up {turn}?"]]
    with open(path, "w") as fh:
        for t, tokens, _, _ in rows:
            fh.write(json.dumps({"timestamp": round(t, 6), "token_ids": tokens}) + "\n")
    Path(str(path) + ".messages.json").write_text(json.dumps({"offsets": [r[2] for r in rows],
                                                              "roles": [r[3] for r in rows]}))


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
    if not text.exists():
        print(f"generating {text} ...", flush=True)
        write_chat_tokens(text, args.sessions, args.seed)
    hashed = DATA / f"divergence_mooncake_{args.requests}_s{args.seed}.jsonl"
    if not hashed.exists():
        print(f"generating {hashed} ...", flush=True)
        from kvctrace.synth import write_trace
        write_trace(hashed, "mooncake", n_requests=args.requests, seed=args.seed)
    runs = (("text", text, "divergence-stored", "token level, prefix columns stored at ingest (text traces)"),
            ("text", text, "divergence", "token level, tokens read back from the store"),
            ("hashed", hashed, "divergence", "block level"))
    reuse = {}
    for kind, path, which, label in runs:
        if kind not in reuse:
            reuse[kind] = best_of(args.repeat, str(path), kind, "reuse")
            print(f"{kind} trace {path.name}: analyze_reuse {reuse[kind]['wall_s']:.3f} s  "
                  f"peak +{reuse[kind]['peak_mib']:.0f} MiB")
        div = best_of(args.repeat, str(path), kind, which)
        ratio = div["wall_s"] / reuse[kind]["wall_s"]
        print(f"  analyze_divergence ({label}): {div['requests']:,} requests, {div['accesses']:,} block accesses: "
              f"{div['wall_s']:.3f} s  peak +{div['peak_mib']:.0f} MiB  ratio {ratio:.2f}x "
              f"[target <= 2x: {'met' if ratio <= 2 else 'NOT met'}]")
        print(f"    headline: {div['headline']}")


if __name__ == "__main__":
    main()
