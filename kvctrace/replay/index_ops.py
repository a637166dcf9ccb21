"""The metadata operations ``kvctrace bench-index`` sends to a live key-value store, per key
design, computed from the trace's CSR arrays before anything is sent (docs/index-bench.md).

For each request, in trace order: its lookups, then one insert per block never seen before.
A block is new at its first access in the trace; dense ids are first-appearance ids, so the
new blocks of request ``r`` are exactly the ids above the largest id of the requests before
it, and they are consecutive: ``prev_max + 1 .. max_r`` (one range, found without a loop).

Lookups per design (``kernels.runs.find_runs`` splits a request into maximal runs of
consecutive dense ids):
* ``get``  - one point lookup (GET) per block, in position order;
* ``mget`` - per run, in position order: a run of >= 2 blocks is one range lookup (MGET of
  its keys), a lone block one point lookup (GET);
* ``zset`` - the same runs: a range lookup is one ``ZRANGE <set> first last BYSCORE`` (score =
  dense id), a lone block one GET.
Inserts (``inserts`` counts keys): ``get`` writes one SET per new block, each its own round
trip (as the per-key Redis cost model ``redis-get`` prices them); ``mget`` writes a request's
new blocks with one MSET; ``zset`` sends one MSET and one ZADD of all of them to the sorted
set, pipelined in one round trip.

The *round trips* (one per lookup op and one per insert batch) are listed in execution
order as flat arrays, which is what the client loop walks and what the latencies line up with.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.runs import find_runs

DESIGNS = ("get", "mget", "zset")

# round-trip kinds (``RoundTrips.kind``), also the op names of the JSON output
POINT, RANGE, INSERT = 0, 1, 2
OP_NAMES = ("point_lookups", "range_lookups", "inserts")


@dataclass(frozen=True)
class RoundTrips:
    """One design's round trips in execution order (request by request: its lookup ops in
    position order, then its insert batch or, for ``get``, one SET per new block).

    ``first``/``keys``: the round trip covers dense ids ``first .. first + keys - 1``."""
    design: str
    request: np.ndarray   # int64: request index of the round trip
    kind: np.ndarray      # int8: POINT, RANGE or INSERT
    first: np.ndarray     # int64: first dense id
    keys: np.ndarray      # int64: keys read or written
    req_offsets: np.ndarray  # int64 CSR: request r owns round trips req_offsets[r]:req_offsets[r+1]

    def op_counts(self) -> dict:
        """``point_lookups``, ``range_lookups`` (round trips) and ``inserts`` (keys written)."""
        point = int(np.count_nonzero(self.kind == POINT))
        ranges = int(np.count_nonzero(self.kind == RANGE))
        inserts = int(self.keys[self.kind == INSERT].sum())
        return {"point_lookups": point, "range_lookups": ranges, "inserts": inserts}


@dataclass(frozen=True)
class IndexWorkload:
    """The first ``n_requests`` requests of a trace, as the index benchmark replays them."""
    offsets: np.ndarray   # CSR of the replayed requests
    blocks: np.ndarray    # dense ids
    ts: np.ndarray        # request arrival (s from the first request)
    new_first: np.ndarray  # per request: first new dense id
    new_count: np.ndarray  # per request: blocks never seen before (its inserts)

    @property
    def n_requests(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def n_ids(self) -> int:
        """Distinct blocks of the replayed requests (dense ids 0 .. n_ids - 1)."""
        return int(self.new_count.sum())


def workload(offsets, blocks, ts, max_requests: int | None = None) -> IndexWorkload:
    """The replayed prefix of a trace (requests are in time order in a Trace) and its
    per-request new blocks."""
    offsets = np.asarray(offsets, np.int64)
    n = offsets.shape[0] - 1 if max_requests is None else min(int(max_requests), offsets.shape[0] - 1)
    offsets = offsets[:n + 1]
    blocks = np.asarray(blocks, np.int64)[:offsets[-1]]
    req_max = np.full(n, -1, np.int64)
    nonempty = np.diff(offsets) > 0
    if blocks.shape[0]:
        req_max[nonempty] = np.maximum.reduceat(blocks, offsets[:-1][nonempty])
    seen_max = np.maximum.accumulate(req_max) if n else req_max
    before = np.concatenate(([-1], seen_max[:-1])) if n else seen_max
    new_count = np.maximum(seen_max - before, 0)
    return IndexWorkload(offsets, blocks, np.asarray(ts, np.float64)[:n], before + 1, new_count)


def _lookups(w: IndexWorkload, design: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(request, kind, first id, keys) of every lookup op, in execution order."""
    if design == "get":
        request = np.repeat(np.arange(w.n_requests, dtype=np.int64), np.diff(w.offsets))
        ones = np.ones(w.blocks.shape[0], np.int64)
        return request, np.full(w.blocks.shape[0], POINT, np.int8), w.blocks.copy(), ones
    runs = find_runs(w.offsets, w.blocks)
    per_request = np.diff(runs.run_offsets)
    request = np.repeat(np.arange(w.n_requests, dtype=np.int64), per_request)
    first = w.blocks[w.offsets[request] + runs.run_start]
    kind = np.where(runs.run_len >= 2, RANGE, POINT).astype(np.int8)
    return request, kind, first, runs.run_len.astype(np.int64)


def _inserts(w: IndexWorkload, design: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(request, first id, keys) of every insert round trip, in request order."""
    has_new = np.nonzero(w.new_count > 0)[0]
    if design != "get":
        return has_new, w.new_first[has_new], w.new_count[has_new]
    count = w.new_count[has_new]
    request = np.repeat(has_new, count)
    # one SET per new id: first ids new_first[r], new_first[r] + 1, ... of each request
    starts = np.repeat(w.new_first[has_new] - np.concatenate(([0], np.cumsum(count)[:-1])), count)
    first = starts + np.arange(request.shape[0], dtype=np.int64)
    return request, first, np.ones(request.shape[0], np.int64)


def round_trips(w: IndexWorkload, design: str) -> RoundTrips:
    """Every round trip of ``design`` on the workload, in execution order."""
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; valid: {', '.join(DESIGNS)}")
    l_req, l_kind, l_first, l_keys = _lookups(w, design)
    i_req, i_first, i_keys = _inserts(w, design)
    request = np.concatenate((l_req, i_req))
    # a stable sort on the request keeps lookups (listed first) before the request's inserts
    order = np.argsort(request, kind="stable")
    kind = np.concatenate((l_kind, np.full(i_req.shape[0], INSERT, np.int8)))[order]
    req_offsets = np.zeros(w.n_requests + 1, np.int64)
    np.cumsum(np.bincount(request, minlength=w.n_requests), out=req_offsets[1:])
    return RoundTrips(design, request[order], kind, np.concatenate((l_first, i_first))[order],
                      np.concatenate((l_keys, i_keys))[order], req_offsets)
