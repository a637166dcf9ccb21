"""Partitioned reuse analysis: exact stack distances per block partition, merged into the
miss-ratio curve SHARDS-style, with the per-request reuse figures exact.

Method (docs/ray.md has the derivation and the measured errors):

* **Partitions.** Block ``b`` (its raw id: the trace's hash id, so a block keeps its partition
  across exports of different windows of the same fleet) goes to partition
  ``fmix64(raw_id XOR salt) mod P`` with ``salt = fmix64(seed + PARTITION_SEED)`` (fmix64 is
  the project's SplitMix64 finalizer, kernels/hashing.py): deterministic across runs and
  machines for a given ``P`` and seed. Every access of a block lands in its block's
  partition, so each partition holds every reuse of its blocks: a 1/P spatial sample of the
  blocks in the sense of SHARDS (Waldspurger et al., FAST'15).
* **Curve.** Each partition's exact LRU stack distances ``d`` (kernels/reuse.py) count the
  distinct blocks *of that partition* between two accesses; about ``d·P`` distinct blocks of
  the whole trace lie between them, so ``d`` is rescaled to ``d·P`` (SHARDS at rate
  ``R = 1/P``) and the rescaled histograms of all partitions are added. Together the P samples
  hold every access, so the merged total is exactly ``N`` (SHARDS_adj's correction is zero) and
  the curve is ``hit(C) = #{accesses with d·P < C} / N`` (``curve_at`` of kernels/sampling.py).
  Approximate: the error against the exact curve is reported whenever the exact curve is
  affordable (``EXACT_LIMIT`` accesses).
* **Per-request figures are exact.** Whether an access is *seen before* (an unlimited cache
  hits) depends only on its own block's earlier accesses, which are all in the same
  partition. So a request's block hits are the sum over partitions, and its prefix hit length
  (the position of its first cold access) is the *minimum over partitions* of the position of
  the first cold access the partition holds for that request (``n_blocks`` when none): the
  first cold access overall is the earliest of the per-partition first ones. Token figures
  follow from these and the last block's hit flag (the maximum warm position).

Inputs: a ``Trace`` (split in memory) or a folder written by ``export_partitions``
(``kvctrace export DB --parquet DIR --partitions P``), from which each partition's task reads
only its own Parquet files (``part=K/*.parquet``), so a worker on another machine with the
folder mounted reads just its share. The partitions run on an engine (kvctrace/engines): one
after another in this process, or one Ray task each; merging is in partition order, so the
result is the same on both.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..engines import check_engine, map_ordered, start as start_engine
from ..errors import ConfigError, KvctraceError, NoBlockIdsError
from ..kernels.hashing import dense_ids
from ..kernels.reuse import distance_counts, hit_ratio_at, stack_distances
from ..kernels.sampling import curve_at
from ..sql import load_query
from ..trace import Trace
from .reuse import log_capacities

PARTITION_SEED = np.uint64(0x4B56435041525453)  # "KVCPARTS"
EXACT_LIMIT = 30_000_000  # accesses: above this the exact curve (for the error) is skipped
MANIFEST = "kvctrace_export.json"
EXPORT_VERSION = 1
_NO_COLD = np.iinfo(np.int32).max  # first-cold position of a request with no cold access here
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


# ---- partitioning -----------------------------------------------------------------------------

def fmix64_array(z: np.ndarray) -> np.ndarray:
    """kernels.hashing.fmix64 on a uint64 array (numpy's uint64 arithmetic wraps like the
    kernel's)."""
    z = np.asarray(z, np.uint64)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def block_partitions(raw_ids: np.ndarray, partitions: int, seed: int = 0) -> np.ndarray:
    """Partition (int32, ``0 .. partitions-1``) of each block given its raw id."""
    if partitions < 1:
        raise ConfigError(f"partitions={partitions} must be >= 1", field="partitions", hint="e.g. 8")
    salt = fmix64_array(np.array([seed], np.uint64) + PARTITION_SEED)[0]
    return (fmix64_array(np.asarray(raw_ids, np.uint64) ^ salt) % np.uint64(partitions)).astype(np.int32)


def raw_block_ids(trace: Trace) -> np.ndarray:
    """Raw id (uint64) of each dense block id, from the store's blocks table."""
    if not trace.has_block_ids:
        raise NoBlockIdsError("the trace has no block ids, so it cannot be partitioned by block",
                              path=trace.path, hint="partitioning needs a trace with hash_ids or token ids")
    raw = trace.sql("SELECT raw_hash FROM blocks ORDER BY block")["raw_hash"].to_numpy()
    return raw.astype(np.uint64, copy=False)


# ---- one partition ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PartitionStats:
    """What one partition's task sends back: its distance histogram and per-request edges."""
    partition: int
    n_accesses: int
    n_unique: int
    one_hit_blocks: int
    cold: int
    distances: np.ndarray       # counts[d] of partition-local stack distance d
    hits: np.ndarray            # (n_requests,) warm accesses of the request in this partition
    first_cold: np.ndarray      # (n_requests,) position of its first cold access here, or _NO_COLD
    last_warm: np.ndarray       # (n_requests,) position of its last warm access here, or -1
    seconds: float


def _edge_positions(req: np.ndarray, pos: np.ndarray, n_requests: int, fill: int, last: bool) -> np.ndarray:
    """Per request, the position of its first (or last) access among (req, pos) sorted by
    request then position; ``fill`` for requests without one."""
    out = np.full(n_requests, fill, np.int32)
    if req.shape[0]:
        change = req[1:] != req[:-1]
        edge = np.flatnonzero(np.concatenate((change, [True])) if last else np.concatenate(([True], change)))
        out[req[edge]] = pos[edge]
    return out


def partition_stats(req, pos, block, n_requests: int, partition: int = 0) -> PartitionStats:
    """Exact reuse statistics of one partition's accesses (any order: sorted here by request
    and position, i.e. trace order). ``block`` ids need not be dense."""
    start = time.perf_counter()
    req = np.asarray(req, np.int64)
    pos = np.asarray(pos, np.int64)
    block = np.asarray(block)
    key = req * (np.int64(1) << 32) + pos
    if key.shape[0] > 1 and not bool((key[1:] >= key[:-1]).all()):
        order = np.argsort(key, kind="stable")  # timsort: Parquet row groups come in sorted runs
        req, pos, block = req[order], pos[order], block[order]
    del key
    local, n_local = dense_ids(block) if block.shape[0] else (np.empty(0, np.int64), 0)
    dist = stack_distances(local, max(n_local, 1)) if local.shape[0] else np.empty(0, np.int32)
    counts, cold = distance_counts(dist)
    warm = dist >= 0
    once = int(np.count_nonzero(np.bincount(local, minlength=n_local) == 1)) if n_local else 0
    return PartitionStats(
        partition=int(partition), n_accesses=int(req.shape[0]), n_unique=int(n_local), one_hit_blocks=once,
        cold=int(cold), distances=counts,
        hits=np.bincount(req[warm], minlength=n_requests).astype(np.int32),
        first_cold=_edge_positions(req[~warm], pos[~warm], n_requests, _NO_COLD, last=False),
        last_warm=_edge_positions(req[warm], pos[warm], n_requests, -1, last=True),
        seconds=time.perf_counter() - start)


def read_partition(files: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(req_id, pos, block) of one partition's Parquet files (any order)."""
    if not files:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    import pyarrow.parquet as pq
    table = pq.ParquetDataset([str(f) for f in files], partitioning=None).read(columns=["req_id", "pos", "block"])
    return tuple(table.column(c).to_numpy() for c in ("req_id", "pos", "block"))


def stats_from_files(files: list, n_requests: int, partition: int) -> PartitionStats:
    """A partition task reading its own files (the export-folder input)."""
    return partition_stats(*read_partition(files), n_requests, partition)


# ---- export -----------------------------------------------------------------------------------

def export_partitions(trace: Trace, out_dir, partitions: int, seed: int = 0) -> dict:
    """Write ``trace``'s accesses hash-partitioned by block into ``out_dir``:
    ``part=K/*.parquet`` (req_id, pos, block; DuckDB ``COPY … PARTITION_BY``; a partition
    without accesses has no folder), ``requests.parquet`` and the manifest ``MANIFEST``.
    Written into a temporary folder beside ``out_dir`` and renamed at the end, so an
    interrupted export leaves no partial folder. Returns the manifest."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise KvctraceError("the export folder exists and is not empty", path=str(out),
                            hint="choose a new folder; the export never overwrites")
    parts = block_partitions(raw_block_ids(trace), partitions, seed)
    per_part = np.bincount(parts[trace.blocks], minlength=partitions) if trace.n_accesses else np.zeros(partitions, np.int64)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    import pyarrow as pa
    con = trace.con
    con.register("kvctrace_block_parts", pa.table({"block": np.arange(parts.shape[0], dtype=np.int64), "part": parts}))
    try:
        con.execute(load_query("export_accesses"), {"dir": str(tmp)})
        con.execute(load_query("export_requests"), {"path": str(tmp / "requests.parquet")})
        manifest = {"kvctrace_export": EXPORT_VERSION, "partitions": int(partitions), "seed": int(seed),
                    "hash": "fmix64(raw_id XOR fmix64(seed + 0x4B56435041525453)) mod partitions",
                    "source": str(trace.path), "format": trace.format, "block_size": int(trace.block_size),
                    "requests": trace.n_requests, "accesses": trace.n_accesses,
                    "unique_blocks": int(trace.n_unique_blocks),
                    "partition_accesses": [int(x) for x in per_part]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.unregister("kvctrace_block_parts")
    return manifest


def is_export(path) -> bool:
    """True for a folder written by ``export_partitions``."""
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def read_manifest(path) -> dict:
    p = Path(path) / MANIFEST
    try:
        manifest = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise KvctraceError(f"cannot read the export manifest ({err})", path=str(p),
                            hint="pass a folder written by kvctrace export --parquet DIR --partitions P") from None
    if manifest.get("kvctrace_export") != EXPORT_VERSION:
        raise KvctraceError("unknown export layout version", path=str(p), field="kvctrace_export",
                            hint="re-export with this kvctrace version")
    return manifest


def partition_files(path, partition: int) -> list[Path]:
    """The Parquet files of one partition of an export folder (none: an empty partition)."""
    return sorted((Path(path) / f"part={partition}").glob("*.parquet"))


# ---- inputs -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Input:
    """One partitioned input: the per-request columns the merge needs, the partition tasks
    (``fn`` and a generator of its argument tuples) and the whole access stream (for the
    exact curve)."""
    path: str
    partitions: int
    seed: int
    block_size: int
    n_unique: int
    n_blocks: np.ndarray
    input_len: np.ndarray
    fn: object
    payloads: object
    stream: object


def _trace_input(trace: Trace, partitions: int, seed: int) -> _Input:
    parts = block_partitions(raw_block_ids(trace), partitions, seed)
    offsets, blocks = trace.offsets, trace.blocks
    n_blocks = np.diff(offsets)

    def payloads():
        # partition p's accesses in trace order; built one partition at a time
        access_part = parts[blocks]
        req_of = np.repeat(np.arange(n_blocks.shape[0], dtype=np.int64), n_blocks)
        for p in range(partitions):
            idx = np.flatnonzero(access_part == p)
            req = req_of[idx]
            yield req, idx - offsets[req], blocks[idx], n_blocks.shape[0], p

    return _Input(str(trace.path), partitions, seed, int(trace.block_size), int(trace.n_unique_blocks),
                  n_blocks, np.asarray(trace.input_len, np.int64), partition_stats, payloads, lambda: blocks)


def _export_input(path: Path, partitions: int | None, seed: int | None) -> _Input:
    manifest = read_manifest(path)
    for name, given in (("partitions", partitions), ("seed", seed)):
        if given is not None and given != manifest[name]:
            raise ConfigError(f"the export was written with {name}={manifest[name]}, not {given}",
                              path=str(path), field=name,
                              hint=f"drop --{name}, or export again with --{name} {given}")
    import pyarrow.parquet as pq
    req = pq.read_table(Path(path) / "requests.parquet", columns=["n_blocks", "input_len"])
    n_blocks = req.column("n_blocks").to_numpy().astype(np.int64, copy=False)
    P = int(manifest["partitions"])

    def payloads():
        for p in range(P):
            yield [str(f) for f in partition_files(path, p)], n_blocks.shape[0], p

    def stream():
        files = [f for p in range(P) for f in partition_files(path, p)]
        req_id, pos, block = read_partition(files)
        return block[np.argsort(req_id * (np.int64(1) << 32) + pos, kind="stable")]

    return _Input(str(path), P, int(manifest["seed"]), int(manifest["block_size"]), int(manifest["unique_blocks"]),
                  n_blocks, req.column("input_len").to_numpy().astype(np.int64, copy=False),
                  stats_from_files, payloads, stream)


# ---- merge ------------------------------------------------------------------------------------

def merged_histogram(stats: list[PartitionStats], partitions: int) -> np.ndarray:
    """The partitions' distance histograms rescaled (d -> d·P) and added, in partition order."""
    top = max((s.distances.shape[0] for s in stats), default=0)
    merged = np.zeros(max((top - 1) * partitions + 1, 1), np.int64)
    for s in stats:
        merged[: s.distances.shape[0] * partitions: partitions] += s.distances
    return merged


def _request_figures(stats: list[PartitionStats], n_blocks: np.ndarray, input_len: np.ndarray,
                     block_size: int) -> pl.DataFrame:
    """Per request, exact: hits = sum over partitions, prefix = min(first cold positions)."""
    n = n_blocks.shape[0]
    hits = np.zeros(n, np.int64)
    first_cold = np.full(n, _NO_COLD, np.int64)
    last_warm = np.full(n, -1, np.int64)
    for s in stats:
        hits += s.hits
        np.minimum(first_cold, s.first_cold, out=first_cold)
        np.maximum(last_warm, s.last_warm, out=last_warm)
    prefix = np.minimum(first_cold, n_blocks)
    bs = np.int64(block_size)
    last_tok = np.clip(input_len - (n_blocks - 1) * bs, 0, bs)
    tokens = np.where(n_blocks > 0, (n_blocks - 1) * bs + last_tok, 0)
    last_hit = (n_blocks > 0) & (last_warm == n_blocks - 1)
    return pl.DataFrame({
        "req_id": np.arange(n, dtype=np.int64), "n_blocks": n_blocks, "hit_blocks": hits,
        "prefix_hit_blocks": prefix, "tokens": tokens,
        "hit_tokens": hits * bs - np.where(last_hit, bs - last_tok, 0),
        "prefix_hit_tokens": np.where((prefix == n_blocks) & (n_blocks > 0), tokens, prefix * bs)})


def _curve_error(merged: np.ndarray, exact_counts: np.ndarray, n_acc: int, log_caps: np.ndarray) -> dict:
    """Mean absolute hit-ratio error on the grids of the reuse analysis's SHARDS check: 200
    evenly spaced capacities up to the largest exact distance + 1 (``mae_linear``) and the
    log-spaced MRC capacities (``mae_log``); ``max_abs`` over both."""
    top = max(int(exact_counts.shape[0]), 1)
    lin = np.unique(np.linspace(1, top, 200).round().astype(np.int64))
    grid = np.unique(np.concatenate([log_caps, lin]))
    diff = np.abs(curve_at(merged, n_acc, grid) - hit_ratio_at(exact_counts, n_acc, grid))
    return {"exact_computed": True, "mae_linear": float(diff[np.isin(grid, lin)].mean()),
            "mae_log": float(diff[np.isin(grid, log_caps)].mean()) if log_caps.shape[0] else 0.0,
            "max_abs": float(diff.max()) if diff.shape[0] else 0.0}


# ---- result -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PartitionedReuse:
    """The partitioned reuse analysis: exact per-request figures, the merged curve and its
    error against the exact one (``error["exact_computed"]`` False when not affordable)."""
    path: str
    partitions: int
    seed: int
    engine: str
    block_size: int
    n_requests: int
    n_accesses: int
    n_unique_blocks: int
    cold_accesses: int
    one_hit_block_share: float
    error: dict
    mrc: pl.DataFrame = field(repr=False)              # capacity_blocks, hit_ratio, miss_ratio, exact_hit_ratio
    requests: pl.DataFrame = field(repr=False)         # per request (exact)
    partition_table: pl.DataFrame = field(repr=False)  # partition, accesses, unique_blocks, seconds
    timings_s: dict = field(default_factory=dict)      # wall times (not in summary)
    _merged: np.ndarray = field(repr=False, default=None)

    def hit_ratio_at(self, capacities) -> np.ndarray:
        """The merged (estimated) block-LRU hit ratio at each capacity (blocks)."""
        return curve_at(self._merged, self.n_accesses, capacities)

    def summary(self) -> dict:
        req = self.requests
        has = req.filter(pl.col("n_blocks") > 0)
        n_acc, tokens = max(self.n_accesses, 1), max(int(req["tokens"].sum()), 1)
        rate = (has["hit_blocks"] / has["n_blocks"]).to_numpy()
        prate = (has["prefix_hit_blocks"] / has["n_blocks"]).to_numpy()
        return {
            "method": "exact stack distances per block partition (fmix64 hash of the raw block id, seeded), "
                      "rescaled d -> d*P and merged (SHARDS at rate 1/P over all P samples); "
                      "per-request figures exact (hits summed, prefix = min over partitions)",
            "partitions": self.partitions, "seed": self.seed, "engine": self.engine, "path": self.path,
            "requests": self.n_requests, "accesses": self.n_accesses, "unique_blocks": self.n_unique_blocks,
            "cold_accesses": self.cold_accesses, "one_hit_block_share": self.one_hit_block_share,
            "ideal_hit_ratio_blocks": (self.n_accesses - self.cold_accesses) / n_acc,
            "ideal_prefix_hit_ratio_blocks": int(req["prefix_hit_blocks"].sum()) / n_acc,
            "ideal_hit_ratio_tokens": int(req["hit_tokens"].sum()) / tokens,
            "ideal_prefix_hit_ratio_tokens": int(req["prefix_hit_tokens"].sum()) / tokens,
            "request_hit_rate_mean": float(rate.mean()) if rate.shape[0] else 0.0,
            "request_prefix_hit_rate_mean": float(prate.mean()) if prate.shape[0] else 0.0,
            "mrc_error": dict(self.error),
            "partition_accesses": self.partition_table["accesses"].to_list(),
            "mrc": self.mrc.select("capacity_blocks", "hit_ratio", "exact_hit_ratio").to_dicts(),
        }

    def to_json(self) -> str:
        from ..results import jsonable   # strict JSON: a NaN error figure is null, not a traceback
        return json.dumps(jsonable(self.summary()), indent=2, allow_nan=False)


def analyze_partitioned(source, partitions: int | None = None, *, seed: int | None = None,
                        engine: str = "local", ray_address: str | None = None, exact: bool | None = None,
                        mrc_points: int = 64) -> PartitionedReuse:
    """Partitioned reuse analysis (module docstring) of ``source``: a ``Trace`` (split into
    ``partitions`` in memory with ``seed``, default 0) or an export folder (its own partitions
    and seed; given values must match), on ``engine`` (for ``ray``: the session already up, or
    one started locally or at ``ray_address`` once the input is checked). ``exact``: also
    compute the exact curve and the error (default: when the trace has at most
    ``EXACT_LIMIT`` accesses)."""
    check_engine(engine, ray_address)
    began = time.perf_counter()
    if isinstance(source, Trace):
        if partitions is None:
            raise ConfigError("a trace needs a partition count", field="partitions", hint="e.g. --partitions 8")
        inp = _trace_input(source, int(partitions), 0 if seed is None else int(seed))
    elif is_export(source):
        inp = _export_input(Path(source), partitions, seed)
    else:
        raise KvctraceError("not a trace and not an export folder", path=str(source),
                            hint="pass a Trace, or a folder written by kvctrace export --parquet DIR --partitions P")
    start_engine(engine, ray_address)
    stats = map_ordered(engine, inp.fn, inp.payloads())
    mapped = time.perf_counter()
    P, n_acc = inp.partitions, sum(s.n_accesses for s in stats)
    merged = merged_histogram(stats, P)
    requests = _request_figures(stats, inp.n_blocks, inp.input_len, inp.block_size)
    caps = log_capacities(inp.n_unique, mrc_points)
    caps = np.unique(np.concatenate([caps, [max(merged.shape[0], 1)]])) if inp.n_unique else caps
    merged_at = time.perf_counter()
    want_exact = n_acc <= EXACT_LIMIT if exact is None else bool(exact)
    exact_hr = [None] * caps.shape[0]
    error = {"exact_computed": False, "reason": f"more than {EXACT_LIMIT:,} accesses (exact curve not affordable)"
             if exact is None else "not asked for"}
    if want_exact and n_acc:
        counts, _ = distance_counts(stack_distances(inp.stream(), max(inp.n_unique, 1)))
        exact_hr = hit_ratio_at(counts, n_acc, caps)
        error = _curve_error(merged, counts, n_acc, log_capacities(inp.n_unique, mrc_points))
    hr = curve_at(merged, n_acc, caps)
    mrc = pl.DataFrame({"capacity_blocks": caps, "hit_ratio": hr, "miss_ratio": 1.0 - hr,
                        "exact_hit_ratio": pl.Series(exact_hr, dtype=pl.Float64)})
    table = pl.DataFrame({"partition": [s.partition for s in stats], "accesses": [s.n_accesses for s in stats],
                          "unique_blocks": [s.n_unique for s in stats], "seconds": [s.seconds for s in stats]},
                         schema={"partition": pl.Int64, "accesses": pl.Int64, "unique_blocks": pl.Int64,
                                 "seconds": pl.Float64})
    done = time.perf_counter()
    timings = {"total": done - began, "partitions_wall": mapped - began, "merge": merged_at - mapped,
               "exact": done - merged_at, "partition_max": float(table["seconds"].max() or 0.0),
               "partition_sum": float(table["seconds"].sum())}
    n_unique = sum(s.n_unique for s in stats)
    return PartitionedReuse(
        path=inp.path, partitions=P, seed=inp.seed, engine=engine, block_size=inp.block_size,
        n_requests=int(inp.n_blocks.shape[0]), n_accesses=int(n_acc), n_unique_blocks=int(n_unique),
        cold_accesses=sum(s.cold for s in stats),
        one_hit_block_share=sum(s.one_hit_blocks for s in stats) / n_unique if n_unique else 0.0,
        error=error, mrc=mrc, requests=requests, partition_table=table, timings_s=timings, _merged=merged)

