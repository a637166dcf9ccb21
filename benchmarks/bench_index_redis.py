"""kvctrace bench-index's single-client GET latency next to redis-benchmark's, same server, same
value size (8 bytes), same sitting.

Starts a redis-server on a free loopback port (persistence off), then alternates, ``--rounds``
times:
  * ``redis-benchmark -t get -n 100000 -d 8 -c 1 -p PORT --csv`` (ships with Debian's
    redis-server) after SETting its key ``key:__rand_int__`` to 8 bytes, so its GETs return an
    8-byte value like kvctrace's hits; its p50 column;
  * ``kvctrace bench-index --design get`` on a trace (the Mooncake conversation trace from
    ../shared/datasets when present, else a kvctrace synth trace), first ``--requests``
    requests, one client: the p50 of its point lookups (GETs of 8-byte addresses; the trace's
    lookups of blocks not inserted yet return nil).
Prints each round and the medians; kvctrace's p50 should be within 1.5x of redis-benchmark's.

    .venv/bin/python benchmarks/bench_index_redis.py [--requests 3000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import csv
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import kvctrace  # noqa: E402
from kvctrace.replay.index_bench import bench_index  # noqa: E402
from tests.redis_server import redis_server  # noqa: E402  (the tests' server starter)

CONVERSATION = ROOT.parent / "shared" / "datasets" / "mooncake" / "conversation_trace.jsonl"


def redis_benchmark_p50_us(url: str, n: int) -> float:
    import redis
    port = url.rsplit(":", 1)[1]
    redis.Redis.from_url(url).set("key:__rand_int__", b"\0" * 8)
    out = subprocess.run(["redis-benchmark", "-t", "get", "-n", str(n), "-d", "8", "-c", "1", "-p", port, "--csv"],
                         capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return float(rows[0]["p50_latency_ms"]) * 1e3


def kvctrace_get_p50_us(trace, url: str, requests: int) -> tuple[float, int]:
    result = bench_index(trace, url, ["get"], max_requests=requests)
    design = result.summary()["designs"][0]
    return design["latency_us"]["point_lookups"]["p50"], design["ops"]["point_lookups"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="trace requests replayed per kvctrace round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-n", type=int, default=100_000, help="redis-benchmark requests per round")
    args = parser.parse_args()
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        sys.exit("needs redis-server and redis-benchmark (Debian package redis-server)")
    with tempfile.TemporaryDirectory() as tmp:
        if CONVERSATION.exists():
            trace = kvctrace.open_trace(CONVERSATION)
        else:
            from kvctrace.synth import write_trace
            trace = kvctrace.open_trace(write_trace(Path(tmp) / "synth.jsonl", "mooncake", args.requests, seed=0))
        with redis_server(Path(tmp) / "redis") as url:
            theirs, ours = [], []
            for r in range(args.rounds):
                theirs.append(redis_benchmark_p50_us(url, args.n))
                p50, n_gets = kvctrace_get_p50_us(trace, url, args.requests)
                ours.append(p50)
                print(f"round {r + 1}: redis-benchmark GET p50 {theirs[-1]:.1f} µs ({args.n:,} GETs), "
                      f"kvctrace bench-index GET p50 {p50:.1f} µs ({n_gets:,} GETs)")
    a, b = statistics.median(theirs), statistics.median(ours)
    print(f"trace {trace.path}, first {args.requests:,} requests, server {url}")
    print(f"median p50: redis-benchmark {a:.1f} µs, kvctrace {b:.1f} µs, ratio {b / a:.2f}x "
          f"({'within' if b <= 1.5 * a else 'NOT within'} 1.5x)")


if __name__ == "__main__":
    main()
