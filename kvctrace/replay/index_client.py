"""The client loop of ``kvctrace bench-index``: key names, the commands of each key design, and
closed-loop clients that time each round trip (see ``index_bench`` for what is measured).

Clients are threads with one connection each. Requests are dealt round-robin (request ``r``
goes to client ``r % clients``), so each client replays its share in trace order. The timed
window of a round trip holds the socket write, the reads until the reply is whole and its
parse (hiredis); commands are packed before the timer starts.
"""
from __future__ import annotations

import threading
import time
from array import array
from dataclasses import dataclass

import numpy as np

from . import redis_client as rc
from .index_ops import POINT, RANGE, RoundTrips

CHUNK_TRIPS = 4096  # round trips converted to Python lists (and checked for a stop) at a time


@dataclass(frozen=True)
class KeySpace:
    """Key names of one design's run under the prefix."""
    base: bytes          # <prefix><design>:
    digests: bytes       # 32 bytes per dense id

    def key(self, block: int) -> bytes:
        return self.base + self.digests[32 * block:32 * block + 32]

    @property
    def zset(self) -> bytes:
        return self.base + b"zset"  # 4 bytes after the base: never equal to a 32-byte digest

    def names(self, n_ids: int):
        yield self.zset
        for block in range(n_ids):
            yield self.key(block)


def address(block: int) -> bytes:
    return block.to_bytes(8, "little")


# ---- the client loop --------------------------------------------------------------------------

def _commands(conn, design: str, space: KeySpace):
    """``command(kind, first, keys) -> (packed bytes, replies)`` for one design."""
    pack_chunks = conn.pack_command

    def pack(*args) -> bytes:
        return b"".join(pack_chunks(*args))
    key = space.key
    zset = space.zset

    def command(kind, first, n):
        if kind == POINT:
            return pack(b"GET", key(first)), 1
        ids = range(first, first + n)
        if kind == RANGE:
            if design == "mget":
                return pack(b"MGET", *[key(i) for i in ids]), 1
            return pack(b"ZRANGE", zset, first, first + n - 1, b"BYSCORE"), 1
        if design == "get":
            return pack(b"SET", key(first), address(first)), 1
        pairs = [part for i in ids for part in (key(i), address(i))]
        if design == "mget":
            return pack(b"MSET", *pairs), 1
        members = [part for i in ids for part in (i, key(i)[-32:] + address(i))]
        # both commands in one write: one round trip
        return pack(b"MSET", *pairs) + pack(b"ZADD", zset, *members), 2
    return command


class Wire:
    """The timed path of one client: the socket redis-py connected (URL parsing, TLS, AUTH and
    SELECT done by redis-py) with its own hiredis reader and receive buffer. Through redis-py's
    ``send_packed_command``/``read_response`` (hiredis parser too) a loopback GET took ~1.1 µs
    more (its per-call bookkeeping): bench-index's GET p50 was 10.3-10.5 µs against
    redis-benchmark's 7 µs (1.5x); with this path 9.0-9.2 µs (1.3x)."""

    def __init__(self, conn):
        import hiredis
        self.conn = conn
        self.sock = conn._sock  # noqa: SLF001 - see the class docstring
        from redis.exceptions import ResponseError
        # error replies come back as ResponseError("OOM ...") objects; rc.refusal reads the code
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.buf = bytearray(1 << 16)

    def close(self) -> None:
        self.conn.disconnect()


def _client(wire: Wire, design, space, trips: RoundTrips, mine: np.ndarray, out: array, state: dict, slot: int):
    """Run the round trips ``mine`` (indices into ``trips``) in order, appending each one's
    latency (ns) to ``out``. Errors are handed to the main thread through ``state``. The
    timed window holds only the socket write, the reads until the reply is whole, and the
    parse (hiredis): nothing else per op."""
    command = _commands(wire.conn, design, space)
    sendall, recv_into, buf = wire.sock.sendall, wire.sock.recv_into, wire.buf
    feed, gets = wire.reader.feed, wire.reader.gets
    clock, append = time.perf_counter_ns, out.append
    stop = state["stop"]
    try:
        for a in range(0, mine.shape[0], CHUNK_TRIPS):
            if stop.is_set():
                return
            idx = mine[a:a + CHUNK_TRIPS]
            for kind, first, n in zip(trips.kind[idx].tolist(), trips.first[idx].tolist(), trips.keys[idx].tolist()):
                packed, replies = command(kind, first, n)
                t0 = clock()
                sendall(packed)
                while replies:  # a reply may arrive in pieces, or two replies in one read
                    reply = gets()
                    while reply is False:
                        got = recv_into(buf)
                        if not got:
                            raise ConnectionError("the server closed the connection")
                        feed(buf, 0, got)
                        reply = gets()
                    replies -= 1
                append(clock() - t0)
                if isinstance(reply, Exception):
                    raise reply
            state["done"][slot] = a + idx.shape[0]
    except Exception as err:  # handed over: the main thread cleans up and reports it
        state["errors"].append(err)
        stop.set()


def _connect(url: str) -> Wire:
    with rc.refused_as_error(url):
        return Wire(rc.client(url).connection_pool.get_connection())


def run_clients(url, design, space, trips: RoundTrips, clients: int, progress) -> tuple[np.ndarray, float]:
    """Latency (ns) of every round trip and the wall time (s) of the run."""
    shares = [np.nonzero(trips.request % clients == c)[0] for c in range(clients)]
    conns = []
    try:
        for _ in range(clients):
            conns.append(_connect(url))
    except BaseException:
        for wire in conns:
            wire.close()
        raise
    outs = [array("q") for _ in range(clients)]
    state = {"stop": threading.Event(), "errors": [], "done": [0] * clients}
    threads = [threading.Thread(target=_client, args=(conns[c], design, space, trips, shares[c], outs[c], state, c),
                                name=f"kvctrace-bench-index-{c}", daemon=True) for c in range(clients)]
    total = trips.kind.shape[0]
    start = time.perf_counter()
    try:
        for t in threads:
            t.start()
        alive = threads
        while alive:
            alive[0].join(0.2)
            progress(f"{design}: {sum(state['done']):,}/{total:,} round trips")
            alive = [t for t in alive if t.is_alive()]
    finally:
        state["stop"].set()
        for t in threads:
            t.join()
        for wire in conns:
            wire.close()
    elapsed = time.perf_counter() - start
    if state["errors"]:
        raise state["errors"][0]
    latency = np.empty(total, np.int64)
    for share, out in zip(shares, outs):
        latency[share] = np.frombuffer(out, np.int64)
    return latency, elapsed
