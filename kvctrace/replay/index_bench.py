"""``kvctrace bench-index``: replay a trace's metadata operations against a live Redis server and
measure them client-side (docs/index-bench.md).

Keys and values. The key of a block is ``<prefix><design>:`` followed by the 32-byte SHA-256
of the block's *chained id as the trace gave it*: the ``raw_hash`` column of the store's
``blocks`` table (Mooncake ``hash_ids``; for bailian/tokens traces the chained hash kvctrace
computed), taken as an unsigned 64-bit little-endian integer. A store without that column
(none written by this version) falls back to the dense id. The value is an 8-byte address: the
block's dense id (its slot number), unsigned little-endian. The ``zset`` design also keeps one
sorted set, ``<prefix>zset:zset``, whose members are the 32-byte digest followed by the 8-byte
address, scored by the dense id. Each design runs on its own key space, which is deleted
before the next design starts. What each design sends is defined in ``index_ops``.

Clients (``index_client``). ``clients`` threads, one connection each, closed loop (the next
round trip is sent when the previous reply has arrived). Requests are dealt round-robin
(request ``r`` goes to client ``r % clients``), so each client replays its share in trace
order; which blocks are new is decided in global trace order. Threads share Python's
interpreter lock, so with several clients the measured latencies include waiting for it.

Latency is ``time.perf_counter_ns`` around each round trip (commands are packed before the
timer starts), reported as p50/p90/p99 in µs per op type (``inserts``: per insert round trip)
and per 10-minute bucket of trace time (the request's arrival). ``throughput_ops_s`` is the
design's op count (point lookups + range lookups + inserted keys) over its wall time.

Safety (``redis_client``): all keys under the prefix, deleted after each design and, on
Ctrl-C, SIGTERM or any error, by a sweep of the prefix; ``keys_left`` (a SCAN of the prefix at
the end) must be 0. Nothing is flushed, no key outside the prefix is touched.
"""
from __future__ import annotations

import hashlib
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ..errors import KvctraceError, NoBlockIdsError
from ..results import ResultMixin
from . import redis_client as rc
from .index_client import KeySpace, run_clients
from .index_ops import DESIGNS, OP_NAMES, RoundTrips, round_trips, workload

BUCKET_S = 600.0    # the paper's Fig. 3: 10-minute buckets of trace time


class BenchInterrupted(rc.RedisBenchError):
    """Ctrl-C or SIGTERM during a run; the run's keys have been deleted."""


# ---- keys -------------------------------------------------------------------------------------

def chained_ids(trace, n_ids: int) -> np.ndarray:
    """The trace's raw chained id of dense ids 0 .. n_ids - 1 as uint64 (module docstring)."""
    import duckdb
    try:
        table = trace.con.sql("SELECT raw_hash FROM blocks WHERE block < $n ORDER BY block",
                              params={"n": n_ids}).to_arrow_table()
        raw = table.column("raw_hash").to_numpy().astype(np.uint64, copy=False)
    except duckdb.Error:
        return np.arange(n_ids, dtype=np.uint64)
    return raw if raw.shape[0] == n_ids else np.arange(n_ids, dtype=np.uint64)


def block_digests(ids: np.ndarray) -> bytes:
    """SHA-256 of each id's 8 little-endian bytes, concatenated (32 bytes per id)."""
    data = np.ascontiguousarray(ids, dtype="<u8").tobytes()
    sha = hashlib.sha256
    return b"".join(sha(data[i:i + 8]).digest() for i in range(0, len(data), 8))


# ---- results ----------------------------------------------------------------------------------

def _quantiles(values_us: np.ndarray) -> dict | None:
    if values_us.shape[0] == 0:
        return None
    p50, p90, p99 = np.percentile(values_us, [50, 90, 99])
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3)}


@dataclass(frozen=True)
class DesignRun:
    """One design's measurements; ``trips`` has one row per round trip: request, ts (s),
    op (an ``OP_NAMES`` name), keys, latency_us."""
    design: str
    ops: dict
    elapsed_s: float
    trips: pl.DataFrame = field(repr=False)

    def latency(self, op: str) -> np.ndarray:
        return self.trips.filter(pl.col("op") == op)["latency_us"].to_numpy()

    def summary(self) -> dict:
        buckets = (self.trips.with_columns(start_s=(pl.col("ts") // BUCKET_S) * BUCKET_S)
                   .group_by("start_s", "op")
                   .agg(p50_us=pl.col("latency_us").quantile(0.5, "linear"),
                        p99_us=pl.col("latency_us").quantile(0.99, "linear"))
                   .sort("start_s", pl.col("op").replace_strict({n: i for i, n in enumerate(OP_NAMES)})))
        n_ops = sum(self.ops.values())
        return {
            "design": self.design, "ops": dict(self.ops),
            "latency_us": {op: _quantiles(self.latency(op)) for op in OP_NAMES},
            "buckets": [{"start_s": float(b["start_s"]), "op": b["op"], "p50_us": round(b["p50_us"], 3),
                         "p99_us": round(b["p99_us"], 3)} for b in buckets.iter_rows(named=True)],
            "throughput_ops_s": round(n_ops / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0,
        }


def _design_run(trips: RoundTrips, ts: np.ndarray, latency_ns: np.ndarray, elapsed: float) -> DesignRun:
    frame = pl.DataFrame({
        "request": trips.request, "ts": ts[trips.request],
        "op": pl.Series(np.asarray(OP_NAMES)[trips.kind], dtype=pl.String),
        "keys": trips.keys, "latency_us": latency_ns / 1e3})
    return DesignRun(trips.design, trips.op_counts(), elapsed, frame)


@dataclass(frozen=True)
class IndexBenchResult(ResultMixin):
    """What ``bench_index`` measured (``summary()`` is the JSON of ``kvctrace bench-index --json``;
    ``to_json`` and the notebook rendering ``_repr_html_`` come from the result protocol)."""
    server_version: str
    url: str                 # password masked
    key_prefix: str
    trace: str
    n_requests: int
    clients: int
    runs: tuple[DesignRun, ...]
    keys_written: int
    keys_left: int

    def summary(self) -> dict:
        return {"server": {"version": self.server_version}, "designs": [r.summary() for r in self.runs],
                "keys_written": self.keys_written, "keys_left": self.keys_left}


# ---- the run ----------------------------------------------------------------------------------

@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt (like Ctrl-C) while the run writes keys."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def _signals_held(deliver: bool = True):
    """Ctrl-C and SIGTERM wait until the block is done (writing or deleting keys must not stop
    half-way); one that arrived is then raised as KeyboardInterrupt, unless ``deliver`` is
    False (the cleanup after an interrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived = []
    old = {s: signal.signal(s, lambda signum, frame: arrived.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if arrived and deliver:
        raise KeyboardInterrupt


def _check_arguments(trace, designs, clients, max_requests, key_prefix) -> tuple[str, ...]:
    if not trace.has_block_ids:
        raise NoBlockIdsError("the trace has no block ids, so it has no index operations to replay",
                              path=str(trace.path), hint="bench-index needs a trace with block ids (mooncake, bailian, tokens)")
    designs = tuple(dict.fromkeys(designs or DESIGNS))
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown:
        raise KvctraceError(f"unknown design '{unknown[0]}'", field="--design", hint="valid designs: " + ", ".join(DESIGNS))
    if clients < 1:
        raise KvctraceError(f"--clients must be >= 1, got {clients}", field="--clients")
    if max_requests is not None and max_requests < 1:
        raise KvctraceError(f"--max-requests must be >= 1, got {max_requests}", field="--max-requests")
    if key_prefix is not None and not key_prefix:
        raise KvctraceError("--key-prefix must not be empty", field="--key-prefix",
                            hint="leave it out for a fresh random prefix")
    return designs


def bench_index(trace, url: str, designs=DESIGNS, *, max_requests: int | None = None, clients: int = 1,
                key_prefix: str | None = None, progress=None) -> IndexBenchResult:
    """Replay the metadata operations of ``trace`` (first ``max_requests`` requests) against
    the Redis server at ``url``, once per design; see the module docstring."""
    progress = progress or (lambda text: None)
    designs = _check_arguments(trace, designs, clients, max_requests, key_prefix)
    work = workload(trace.offsets, trace.blocks, trace.ts, max_requests)
    progress("hashing block ids")
    digests = block_digests(chained_ids(trace, work.n_ids))
    prefix = (key_prefix or rc.fresh_prefix()).encode()
    admin = rc.client(url)
    try:
        with _signals_held():  # the probe key is written and deleted in one piece
            version = rc.check_ready(url, admin, prefix, designs, given_prefix=key_prefix is not None)
    except KeyboardInterrupt:
        raise BenchInterrupted("interrupted before the run wrote any key", path=rc.masked_url(url)) from None
    runs, written = [], 0
    try:
        with _sigterm_as_interrupt():
            for design in designs:
                space = KeySpace(prefix + design.encode() + b":", digests)
                trips = round_trips(work, design)
                latency, elapsed = run_clients(url, design, space, trips, clients, progress)
                runs.append(_design_run(trips, work.ts, latency, elapsed))
                with _signals_held(), rc.refused_as_error(url):
                    written += rc.delete_keys(admin, space.names(work.n_ids))
            with rc.refused_as_error(url):
                left = rc.count_keys(admin, prefix)
    except BaseException as err:
        raise _after_failure(url, admin, prefix, written, err) from None
    admin.close()
    return IndexBenchResult(version, rc.masked_url(url), prefix.decode(errors="replace"), str(trace.path),
                            work.n_requests, clients, tuple(runs), written, left)


def _after_failure(url, admin, prefix: bytes, written: int, err: BaseException) -> BaseException:
    """Delete whatever the run left under its prefix and return the error to raise."""
    with _signals_held(deliver=False):
        try:
            written += rc.sweep_prefix(admin, prefix)
            left = rc.count_keys(admin, prefix)
            cleanup = f"deleted the run's {written:,} keys under {prefix.decode(errors='replace')!r}, {left} left"
        except Exception as sweep_err:  # the server may be gone: say so, keep the original error
            cleanup = (f"could not delete the keys under {prefix.decode(errors='replace')!r} "
                       f"({str(sweep_err).splitlines()[0] if str(sweep_err) else type(sweep_err).__name__})")
    if isinstance(err, KeyboardInterrupt):
        return BenchInterrupted(f"interrupted; {cleanup}", path=rc.masked_url(url))
    if isinstance(err, KvctraceError):
        err.message += f"; {cleanup}"
        err.args = (err.message,)
        return err
    from redis import exceptions as rx
    if isinstance(err, (rx.RedisError, OSError)):
        mapped = rc.refusal(url, err)
        mapped.message += f"; {cleanup}"
        return mapped
    return err
