"""Text to block ids: a synthetic chat log (``kvctrace synth --format prompts``, a few million
tokens) read, rendered with its chat template, tokenized with the shipped byte-level BPE
(datasets/tokenizer-bpe-4k) and hashed into chained block ids (``kvctrace.formats.read_columns``),
in tokens per second, next to two baselines in the same run on the same rendered texts:
``tokenizers``' ``encode_batch`` alone (Rust threads), and a one-at-a-time ``encode`` loop.

Each measurement runs in a fresh child process (imports and Numba's first kernel load excluded;
an untimed child first warms Numba's on-disk cache); peak memory is the child's max RSS. The log is generated into
``benchmarks/_data/`` (git-ignored). ``--profile`` adds where kvctrace's time goes: CPU seconds
of each stage, run one after the other.

    python benchmarks/bench_tokenize.py [--requests 2400] [--profile]
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
TOKENIZER = REPO / "datasets" / "tokenizer-bpe-4k"
# The structure of datasets/synth_chat_prompts.jsonl.zst (datasets/README.md), more requests.
STRUCTURE = dict(system_prompts=6, system_prompt_tokens=600, documents=40, document_tokens=1200, document_alpha=1.0,
                 search_tokens=300, turns_mean=3, user_tokens=120, output_tokens=180, think_time_s=30, rate=1)

_SETUP = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
path, tokenizer, mode = sys.argv[1], sys.argv[2], sys.argv[3]
from kvctrace.formats import read_columns
import numpy as np
from kvctrace.kernels.hashing import hash_token_blocks
hash_token_blocks(np.zeros(4, np.int64), np.array([0, 4]), 2, "drop")  # Numba loads its kernel: not timed
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def cpu():  # user + system seconds of every thread (the tokenizers' Rust threads too)
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime
"""

_KVCTRACE = _SETUP + r"""
if mode == "profile":  # the stages one after the other (no overlap), CPU seconds of each
    import kvctrace.tokenize.pipeline as pipeline_module
    from kvctrace.formats import prompts
    from kvctrace.formats.source import open_source
    pipeline_module.BATCH_CHARS = 1 << 62  # tokenize only when asked
    stages, c = [], cpu()
    def stage(name):
        global c
        stages.append((name, cpu() - c))
        c = cpu()
    src = open_source(path)
    records = [json.loads(line) for line in src.lines() if line.strip()]
    stage("read, decompress, JSON")
    opts = prompts.bind({"tokenizer": tokenizer}).options(records[0], None, "drop")
    stage("load tokenizer, compile template")
    rows = [prompts.parse_record(rec, opts) for rec in records]
    stage("check fields, render, message starts")
    tok = opts["pipeline"].tokenized()
    stage(f"tokenize ({tok.path})")
    hash_token_blocks(tok.tokens.astype(np.int64), tok.offsets, 16, "drop")
    stage("chained block hashes")
    for name, seconds in stages:
        print(f"  {name:45s} {seconds:6.2f} CPU s", file=sys.stderr)
    sys.exit(0)
t, c = time.perf_counter(), cpu()
cols, _ = read_columns(path, tokenizer=tokenizer)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "cpu_s": cpu() - c, "tokens": int(cols.input_len.sum()), "blocks": int(cols.ids.shape[0]),
                  "path": cols.meta["tokenize_path"], "peak_rss_mib": peak()}))
"""

_BASELINE = _SETUP + r"""
# the same texts kvctrace tokenizes: rendered with the same template (untimed)
from kvctrace.formats import prompts
from kvctrace.formats.source import open_source
from kvctrace.tokenize import load_tokenizer
src = open_source(path)
opts = prompts.bind({"tokenizer": tokenizer}).options({"timestamp": 0}, None, "drop")
for line in src.lines():
    if line.strip():
        prompts.parse_record(json.loads(line), opts)  # renders and queues the record's text
texts = opts["pipeline"].texts
opts["pipeline"].close()
del src
tok = load_tokenizer(tokenizer).tokenizer
t, c = time.perf_counter(), cpu()
if mode == "batch":
    n = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
else:
    n = sum(len(tok.encode(text, add_special_tokens=False).ids) for text in texts)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "cpu_s": cpu() - c, "tokens": n, "peak_rss_mib": peak()}))
"""


def run(code: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", code.replace("{repo!r}", repr(str(REPO))), *args], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr)
    if res.stderr.strip():
        print(res.stderr, file=sys.stderr)
    return json.loads(res.stdout) if res.stdout.strip() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also print the CPU seconds of each kvctrace stage")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from kvctrace.synth_prompts import write

    DATA.mkdir(exist_ok=True)
    log = DATA / f"chat_prompts_{args.requests}_{args.seed}.jsonl"
    if not log.exists():
        write(log, args.requests, args.seed, **STRUCTURE)
    print(f"{log.name}: {log.stat().st_size / 2**20:,.1f} MiB of JSON lines; tokenizer {TOKENIZER.name}")
    run(_KVCTRACE, str(log), str(TOKENIZER), "warm")  # Numba's cache, the page cache
    rows = [("kvctrace read_columns (read, template, tokenize, hash)", run(_KVCTRACE, str(log), str(TOKENIZER), "time")),
            ("tokenizers encode_batch alone (rendered texts)", run(_BASELINE, str(log), str(TOKENIZER), "batch")),
            ("tokenizers encode, one text at a time", run(_BASELINE, str(log), str(TOKENIZER), "loop"))]
    ours = rows[0][1]
    print(f"{ours['tokens']:,} tokens, {ours['blocks']:,} block ids; kvctrace encoded by {ours['path']}")
    print(f"{'':58s} {'wall s':>8s} {'M tokens/s':>11s} {'vs kvctrace':>12s} {'CPU s':>7s} "
          f"{'M tok/CPU s':>12s} {'peak MiB':>9s}")
    for name, r in rows:
        rate = r["tokens"] / r["wall_s"] / 1e6
        print(f"{name:58s} {r['wall_s']:8.2f} {rate:11.2f} {r['wall_s'] / ours['wall_s']:11.2f}x {r['cpu_s']:7.2f} "
              f"{r['tokens'] / r['cpu_s'] / 1e6:12.2f} {r['peak_rss_mib']:9.0f}")
    print("(CPU s: user + system time of all the child's threads; on a busy machine wall time stretches, CPU time "
          "much less)")
    if args.profile:
        print("where kvctrace's time goes (stages run one after the other):")
        run(_KVCTRACE, str(log), str(TOKENIZER), "profile")


if __name__ == "__main__":
    main()
