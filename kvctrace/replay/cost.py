"""Per-request cost models: metadata index lookups, KV transfer from each tier, prefill.

All functions are vectorised over requests (numpy in, numpy out) so that one replay's hit
counts can be priced under several index models without replaying again.

Metadata index (docs/replay.md "Index cost models", from the paper's Fig. 3 benchmark). A request
looks up every one of its blocks (the client cannot know which are cached before asking)
and inserts every missed block that entered a tier:
* point indexes (Redis, RDMA hash): one point lookup per block;
* range indexes (Sherman, CHIME): one range scan per run of >= 2 consecutive block ids
  (reading ceil(run / keys_per_leaf) leaves, at most ``range_parallel`` in flight per round
  trip) and a point lookup for each block outside a run;
* batched Redis (MGET): all lookups of a request in one round trip, all inserts in one more.
Inserts: one per missed block that entered a tier (``insert_rtts`` each) for point indexes;
a range index writes each run of consecutive new ids into one leaf (one more leaf per
``keys_per_leaf`` keys of the run) — new blocks get consecutive dense ids, so a request's
new suffix is typically one run.
Point operations go ``outstanding`` at a time; each round trip costs ``rtt_us`` plus the
bytes read over the link. Moving a block between tiers is not counted as an index write.

Transfer: for each tier that served prefix hits, ``read_latency_us + bytes / bandwidth``
with bytes = hit tokens x KV bytes per token (the last block of a request may be partial).
Tiers are loaded one after another (they share the path into GPU memory).

Prefill of the ``n`` uncached tokens after ``c`` cached ones, on ``count`` GPUs:
``FLOPs = 2·P·n + 2·L·d_model·(n² + 2·n·c)`` — the dense matmuls (2 FLOPs per parameter per
token) plus causal attention (QKᵀ and AV, 2·d FLOPs each per query-key pair; the new tokens
attend to the c cached ones and, causally, to each other: n·c + n²/2 pairs per layer). With
c = 0 this is ``2·P·n + 2·L·n²·d_model`` (docs/replay.md "Prefill"). Time = FLOPs / (peak x count x MFU).
A request whose whole prompt is cached still recomputes its last token (as vLLM does, to
get the first output logits), so n >= 1.

TTFT = metadata + load + prefill (``overlap = "none"``), or metadata + max(load, prefill)
(``overlap = "layerwise"``: layer i's KV loads while layer i-1 computes).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import UnknownNameError


@dataclass(frozen=True)
class IndexModel:
    kind: str
    rtt_us: float
    point_rtts: int
    insert_rtts: int
    range_scan: bool
    batch: bool
    outstanding: int
    keys_per_leaf: int
    range_parallel: int
    point_bytes: int
    leaf_bytes: int
    link_gbit_s: float
    source: str


INDEX_MODELS: dict[str, IndexModel] = {
    "redis-get": IndexModel(
        "redis-get", rtt_us=100.0, point_rtts=1, insert_rtts=1, range_scan=False, batch=False,
        outstanding=1, keys_per_leaf=1, range_parallel=1, point_bytes=64, leaf_bytes=0,
        link_gbit_s=25.0,
        source="Redis over TCP, one GET/SET per key: 1 RTT each; RTT 100 µs (redis.io latency "
               "docs: ~200 µs on 1 Gbit/s, 30 µs unix socket; 50–200 µs same rack)"),
    "redis-mget": IndexModel(
        "redis-mget", rtt_us=100.0, point_rtts=1, insert_rtts=1, range_scan=False, batch=True,
        outstanding=1, keys_per_leaf=1, range_parallel=1, point_bytes=64, leaf_bytes=0,
        link_gbit_s=25.0,
        source="Redis MGET / pipelined SETs: 1 RTT per batch (redis.io pipelining docs)"),
    "sherman": IndexModel(
        "sherman", rtt_us=2.0, point_rtts=1, insert_rtts=3, range_scan=True, batch=False,
        outstanding=1, keys_per_leaf=50, range_parallel=32, point_bytes=1024, leaf_bytes=1024,
        link_gbit_s=200.0,
        source="Sherman RDMA B+tree (thustorage/Sherman): 1 KB leaves (include/Common.h "
               "kLeafPageSize), ~50 18-byte entries per leaf; point = 1 RTT when the 1000 MB "
               "internal-node cache covers the key; insert = 3 RTT (lock CAS, leaf read, "
               "write+unlock); range leaves read in parallel, <= 32 outstanding (src/Tree.cpp)"),
    "chime": IndexModel(
        "chime", rtt_us=2.0, point_rtts=1, insert_rtts=3, range_scan=True, batch=False,
        outstanding=1, keys_per_leaf=64, range_parallel=32, point_bytes=136, leaf_bytes=1152,
        link_gbit_s=200.0,
        source="CHIME RDMA hybrid index (dmemsys/CHIME): point = 1 RTT reading a hopscotch "
               "neighbourhood (H = 8 entries of 17 B); insert ~3 RTT; range over B+tree "
               "leaves of 64 entries (include/Common.h leafSpanSize); 32 outstanding leaf "
               "reads assumed as for Sherman"),
    "rdma-hash": IndexModel(
        "rdma-hash", rtt_us=2.0, point_rtts=2, insert_rtts=2, range_scan=False, batch=False,
        outstanding=1, keys_per_leaf=1, range_parallel=1, point_bytes=128, leaf_bytes=0,
        link_gbit_s=200.0,
        source="RACE-like one-sided RDMA hash (ATC'21): ~2 RTT per lookup, 2+ RTT per insert; "
               "no range scans"),
}


# The models as published (INDEX_MODELS is swapped while a calibration is in use): what a
# calibration is compared against.
DEFAULT_INDEX_MODELS: dict[str, IndexModel] = dict(INDEX_MODELS)


def index_names() -> list[str]:
    return list(INDEX_MODELS)


def resolve_index(index_cfg) -> IndexModel:
    """The registry model for ``index_cfg.kind`` with the config's overrides applied."""
    try:
        m = INDEX_MODELS[index_cfg.kind]
    except KeyError:
        raise UnknownNameError(f"unknown index kind '{index_cfg.kind}'", field="index.kind",
                               hint="valid kinds: " + ", ".join(INDEX_MODELS)) from None
    over = {}
    if index_cfg.rtt_us is not None:
        over["rtt_us"] = float(index_cfg.rtt_us)
    if index_cfg.outstanding is not None:
        over["outstanding"] = int(index_cfg.outstanding)
    if index_cfg.link_gbit_s is not None:
        over["link_gbit_s"] = float(index_cfg.link_gbit_s)
    if index_cfg.uncached_levels is not None and m.kind == "sherman":
        over["point_rtts"] = 1 + int(index_cfg.uncached_levels)
    return replace(m, **over)


@dataclass(frozen=True)
class LookupPlan:
    """What one request asks of the index, independent of caching: blocks, blocks outside
    runs (point lookups for a range index), range-scan round trips and leaves read."""
    n_blocks: np.ndarray
    singles: np.ndarray
    range_rtts: np.ndarray
    leaves: np.ndarray


def lookup_plan(offsets: np.ndarray, blocks: np.ndarray, model: IndexModel, runs=None) -> LookupPlan:
    """``runs``: the trace's ``find_runs`` when the caller has it (plans of several models)."""
    from ..kernels.replay import range_reads
    from ..kernels.runs import find_runs
    n_blocks = np.diff(offsets)
    if not model.range_scan:
        z = np.zeros_like(n_blocks)
        return LookupPlan(n_blocks, n_blocks, z, z)
    runs = find_runs(offsets, blocks) if runs is None else runs
    rtts, leaves = range_reads(runs, model.keys_per_leaf, model.range_parallel)
    return LookupPlan(n_blocks, runs.n_point, rtts, leaves)


def metadata_us(model: IndexModel, plan: LookupPlan, inserts: np.ndarray,
                insert_runs: np.ndarray | None = None) -> np.ndarray:
    """Metadata index time per request (µs). ``insert_runs`` (runs of consecutive ids among
    the inserted blocks) lets a range index write a run leaf by leaf; without it every
    insert is its own run."""
    inserts = np.asarray(inserts, np.int64)
    runs = inserts if insert_runs is None else np.minimum(np.asarray(insert_runs, np.int64), inserts)
    us_per_byte = 8.0 / (model.link_gbit_s * 1e3)
    if model.batch:
        lookups = (plan.n_blocks > 0) * (model.rtt_us + plan.n_blocks * model.point_bytes * us_per_byte)
        writes = (inserts > 0) * model.rtt_us
        return lookups + writes
    points = plan.singles
    waves = -(-points // model.outstanding)
    lookups = (waves * model.point_rtts * model.rtt_us + points * model.point_bytes * us_per_byte
               + plan.range_rtts * model.rtt_us + plan.leaves * model.leaf_bytes * us_per_byte)
    if model.range_scan:
        # a run of consecutive keys lands in one leaf (one more per keys_per_leaf keys)
        writes_n = runs + (inserts - runs) // model.keys_per_leaf
    else:
        writes_n = inserts
    writes = -(-writes_n // model.outstanding) * model.insert_rtts * model.rtt_us
    return lookups + writes


def hit_tokens_per_tier(prefix_hits: np.ndarray, full_tier: np.ndarray, n_blocks: np.ndarray,
                        input_len: np.ndarray, block_size: int) -> np.ndarray:
    """Tokens served by each tier (n_req, T): block_size per prefix-hit block, except that
    the request's last block holds only its remainder of the prompt."""
    tokens = prefix_hits.astype(np.int64) * block_size
    last = np.clip(input_len - (n_blocks - 1) * block_size, 1, block_size)
    rows = np.nonzero(full_tier >= 0)[0]
    tokens[rows, full_tier[rows]] -= block_size - last[rows]
    return tokens


def load_us(tokens: np.ndarray, kv_bytes_per_token: int, latency_us, bandwidth_gb_s) -> np.ndarray:
    """Transfer time per request and tier (n_req, T) in µs."""
    lat = np.asarray(latency_us, np.float64)[None, :]
    bw = np.asarray(bandwidth_gb_s, np.float64)[None, :]
    nbytes = tokens * float(kv_bytes_per_token)
    return (tokens > 0) * lat + nbytes / (bw * 1e3)  # GB/s = 1e3 bytes/µs


def prefill_us(model_cfg, gpu_cfg, input_len: np.ndarray, cached_tokens: np.ndarray) -> np.ndarray:
    """Prefill time of the uncached tokens after ``cached_tokens`` of context (µs)."""
    n = np.maximum(input_len - cached_tokens, np.minimum(input_len, 1)).astype(np.float64)
    c = (input_len - n).astype(np.float64)
    flops = 2.0 * model_cfg.params * n + 2.0 * model_cfg.layers * model_cfg.d_model * (n * n + 2.0 * n * c)
    rate = gpu_cfg.peak_tflops * 1e12 * gpu_cfg.count * gpu_cfg.mfu
    return flops / rate * 1e6


def ttft_us(meta_us: np.ndarray, load_total_us: np.ndarray, prefill: np.ndarray, overlap: str) -> np.ndarray:
    if overlap == "layerwise":
        return meta_us + np.maximum(load_total_us, prefill)
    return meta_us + load_total_us + prefill


# ---- calibration of the Redis models (``kvctrace bench-index --calibrate``) -------------------
# A calibration file holds a fitted Redis op cost, ``rtt_us + keys x per_key_us``, and its
# provenance (kvctrace.replay.index_calibration writes it). Loaded, it replaces the round trip
# (``rtt_us``) of the Redis kinds and their per-key cost, which the models express as
# ``point_bytes`` over the link: ``link_gbit_s`` is set so that point_bytes / link = per_key_us.

REDIS_KINDS = ("redis-get", "redis-mget")
_MIN_PER_KEY_US = 1e-6  # a fitted per-key cost of 0 kept finite (the link bandwidth is derived from it)


@dataclass(frozen=True)
class RedisCalibration:
    rtt_us: float
    per_key_us: float
    provenance: dict
    # what the fit was made from, per design and op (index_calibration.measured_rows): n, p50_us,
    # p99_us and keys_p50/keys_p99 (keys per op), so a model can be priced against it later
    measured: tuple = ()


def per_key_us(model: IndexModel) -> float:
    """The model's cost of one more key in a Redis op (µs)."""
    return model.point_bytes * 8.0 / (model.link_gbit_s * 1e3)


def load_calibration(path) -> RedisCalibration:
    """Read a calibration TOML (``[redis] rtt_us, per_key_us``; ``[provenance]``)."""
    import math
    import tomllib
    from pathlib import Path

    from ..errors import ConfigError
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read calibration: {err.strerror}", path=str(p),
                          hint="write one with: kvctrace bench-index TRACE --redis URL --calibrate FILE") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}", path=str(p)) from None
    redis = data.get("redis")
    if not isinstance(redis, dict):
        raise ConfigError("missing the [redis] table", field="redis", path=str(p))
    values = {}
    for key, zero_ok in (("rtt_us", False), ("per_key_us", True)):
        v = redis.get(key)
        if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                or v < 0 or (v == 0 and not zero_ok)):
            raise ConfigError(f"expected a number {'>= 0' if zero_ok else '> 0'}, got {v!r}",
                              field=f"redis.{key}", path=str(p))
        values[key] = float(v)
    return RedisCalibration(values["rtt_us"], values["per_key_us"], dict(data.get("provenance", {})),
                            _measured_rows(data.get("measured", []), p))


_MEASURED_FIELDS = {"design": str, "op": str, "n": int, "p50_us": float, "p99_us": float,
                    "keys_p50": float, "keys_p99": float}


def _measured_rows(rows, path) -> tuple:
    """The calibration file's ``[[measured]]`` tables, checked."""
    from ..errors import ConfigError
    if not isinstance(rows, list):
        raise ConfigError("expected an array of tables ([[measured]])", field="measured", path=str(path))
    out = []
    for i, row in enumerate(rows):
        checked = {}
        for key, typ in _MEASURED_FIELDS.items():
            v = row.get(key) if isinstance(row, dict) else None
            ok = isinstance(v, str) if typ is str else (isinstance(v, (int, float)) and not isinstance(v, bool))
            if not ok:
                raise ConfigError(f"expected {'text' if typ is str else 'a number'}, got {v!r}",
                                  field=f"measured[{i}].{key}", path=str(path))
            checked[key] = typ(v)
        out.append(checked)
    return tuple(out)


def calibrated_models(cal: RedisCalibration) -> dict[str, IndexModel]:
    """The Redis kinds of INDEX_MODELS with the calibration's round trip and per-key cost."""
    source = (f"calibrated by kvctrace bench-index: Redis {cal.provenance.get('server_version', '?')}, "
              f"{cal.provenance.get('date', '?')}, trace {cal.provenance.get('trace', '?')}, "
              f"{cal.provenance.get('n_ops', '?')} ops")
    out = {}
    for kind in REDIS_KINDS:
        m = INDEX_MODELS[kind]
        link = m.point_bytes * 8.0 / (max(cal.per_key_us, _MIN_PER_KEY_US) * 1e3)
        out[kind] = replace(m, rtt_us=cal.rtt_us, link_gbit_s=link, source=source)
    return out


def use_calibration(path):
    """Context manager: the Redis entries of INDEX_MODELS come from the calibration file while
    the block runs (``None``: nothing changes), so every part of a replay or a sweep that
    prices the Redis kinds sees them. A config's explicit ``[index]`` overrides still apply."""
    from contextlib import contextmanager

    @contextmanager
    def swapped():
        if path is None:
            yield
            return
        saved = {k: INDEX_MODELS[k] for k in REDIS_KINDS}
        INDEX_MODELS.update(calibrated_models(load_calibration(path)))
        try:
            yield
        finally:
            INDEX_MODELS.update(saved)
    return swapped()
