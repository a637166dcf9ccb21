"""Replay a trace through a configured cache hierarchy: hit counts per request and tier
(Numba kernels in kernels/replay.py), then the cost models (cost.py) for TTFT.

``replay(trace, config)`` returns a :class:`ReplayResult` with a per-request polars frame,
a per-tier frame and ``summary()``. Semantics are documented in kernels/replay.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ..errors import ConfigError, NoBlockIdsError
from ..kernels import policies
from ..kernels.arrays import ids
from ..results import ResultMixin as SummaryHtmlMixin  # summary() -> to_json, Jupyter rendering
from . import cost
from .config import ReplayConfig


@dataclass(frozen=True)
class HitCounts:
    """Raw kernel output of one replay."""
    prefix_hits: np.ndarray     # (n_req, T) int32
    block_hits: np.ndarray      # (n_req, T) int32
    index_inserts: np.ndarray   # (n_req,) int32: misses that entered some tier
    insert_runs: np.ndarray     # (n_req,) int32: runs of consecutive ids among those misses
    full_tier: np.ndarray       # (n_req,) int8: tier of the last block of a fully cached request, else -1
    tier_inserts: np.ndarray    # (T,) int64
    tier_evictions: np.ndarray  # (T,) int64
    miss_hist: np.ndarray       # (T + 1, T + 1, 3) int64: the miss taxonomy's counts (kernels/replay.py)

    @classmethod
    def empty(cls, n_req: int, T: int, configs: tuple = ()) -> "HitCounts":
        """Zeroed outputs for the kernels (``full_tier`` -1); ``configs`` = (R,) prepends a
        config axis for the sweep."""
        from ..kernels.replay import MISS_KINDS
        c = tuple(configs)
        return cls(np.zeros(c + (n_req, T), np.int32), np.zeros(c + (n_req, T), np.int32),
                   np.zeros(c + (n_req,), np.int32), np.zeros(c + (n_req,), np.int32),
                   np.full(c + (n_req,), -1, np.int8), np.zeros(c + (T,), np.int64), np.zeros(c + (T,), np.int64),
                   np.zeros(c + (T + 1, T + 1, MISS_KINDS), np.int64))

    def arrays(self) -> tuple:
        """The arrays in the kernels' argument order."""
        return tuple(self.__dict__.values())


def _arrays(trace):
    if not getattr(trace, "has_block_ids", True) or trace.blocks is None:
        raise NoBlockIdsError("the trace has no block ids, so there is nothing to replay",
                              path=getattr(trace, "path", None),
                              hint="replay needs a trace with hash_ids or token ids")
    offsets = np.ascontiguousarray(trace.offsets, dtype=np.int64)
    blocks = ids(trace.blocks)  # the trace's int32 ids as they are: an int64 copy costs 8 bytes per access
    n_unique = int(trace.n_unique_blocks) if trace.n_unique_blocks else (int(blocks.max()) + 1 if blocks.size else 0)
    if blocks.size and (blocks.min() < 0 or blocks.max() >= n_unique):
        raise ValueError("trace.blocks must be dense ids 0 .. n_unique_blocks-1")
    return offsets, blocks, max(n_unique, 1)


def policy_codes(cfg: ReplayConfig) -> np.ndarray:
    return np.array([policies.get(t.policy).code for t in cfg.tiers], np.int64)


def _one_tier_miss_hist(blocks, capacity: int, first: int) -> np.ndarray:
    """The engine's miss histogram (kernels/replay.py) of a one-tier LRU admitting every
    block: first accesses, and (a tier without room) the misses of blocks never held; the
    rest is of blocks the tier has held, which the engine leaves to ``miss_taxonomy``."""
    from ..kernels.replay import FIRST, MISS_KINDS, OTHER
    hist = np.zeros((2, 2, MISS_KINDS), np.int64)
    if capacity <= 0:   # the kernel replayed nothing: every access a miss of a block never held
        first = int(np.unique(blocks).shape[0])
        hist[1, 1, OTHER] = blocks.shape[0] - first
    hist[1, 1, FIRST] = first
    return hist


MISS_CAUSES = ("cold", "capacity", "prefix_broken", "admission")


def complete_miss_hist(hits: HitCounts, n_accesses: int) -> np.ndarray:
    """The engine's miss histogram with the cells it leaves out (accesses to blocks tier 0 has
    held, top-most tier ever 0) filled in: per holding tier and kind, its hits less the
    cells counted; for misses, the accesses no tier held less the cells counted."""
    from ..kernels.replay import FIRST, OTHER, PREFIX_HIT
    hist = hits.miss_hist.astype(np.int64, copy=True)
    T = hist.shape[0] - 1
    ph = hits.prefix_hits.sum(axis=0, dtype=np.int64)
    bh = hits.block_hits.sum(axis=0, dtype=np.int64)
    hist[:T, 0, PREFIX_HIT] = ph - hist[:T, 1:, PREFIX_HIT].sum(axis=1)
    hist[:T, 0, OTHER] = bh - ph - hist[:T, 1:, OTHER].sum(axis=1)
    hist[T, 0, OTHER] = n_accesses - bh.sum() - hist[T, T, FIRST] - hist[T, 1:, OTHER].sum()
    return hist


def miss_taxonomy(hits: HitCounts, caps, n_accesses: int) -> np.ndarray:
    """(T, 4) int64: per tier, its misses by cause (``MISS_CAUSES`` order), from the engine's
    miss histogram (docs/replay.md "Miss taxonomy"). Tier k's misses are the accesses that
    tiers 0..k do not serve as prefix hits; the last row is the overall taxonomy."""
    from ..kernels.replay import FIRST, OTHER, PREFIX_HIT
    hist = complete_miss_hist(hits, n_accesses)
    T = len(caps)
    roomy = np.flatnonzero(np.asarray(caps) > 0)
    first_roomy = int(roomy[0]) if roomy.size else T     # the top-most tier with room to admit
    out = np.zeros((T, len(MISS_CAUSES)), np.int64)
    cold, capacity, broken, admission = range(len(MISS_CAUSES))
    for k in range(T):
        out[k, cold] = hist[:, :, FIRST].sum()
        for holder in range(T + 1):
            for ever in range(T + 1):
                for kind in (PREFIX_HIT, OTHER):
                    n = int(hist[holder, ever, kind])
                    if holder <= k:   # held in tiers 0..k: a miss only when its prefix is broken
                        out[k, broken] += n if kind == OTHER else 0
                    elif ever > k and k >= first_roomy:
                        out[k, admission] += n
                    else:
                        out[k, capacity] += n
    return out


def run_hits(offsets, blocks, n_unique, caps, codes, admit, *, inclusive=False, promote=True,
             demote=True, next_use=None) -> HitCounts:
    """Replay hit counts for one tier configuration (arrays in, arrays out)."""
    from ..kernels import replay as K
    caps = np.asarray(caps, np.int64)
    codes = np.asarray(codes, np.int64)
    admit = np.asarray(admit, np.int64)
    T = caps.shape[0]
    n_req = offsets.shape[0] - 1
    if T == 1 and codes[0] == policies.code("lru") and admit[0] <= 1:
        ph = np.zeros(n_req, np.int32)
        bh = np.zeros(n_req, np.int32)
        full = np.zeros(n_req, np.bool_)
        runs = np.zeros(n_req, np.int32)
        ins, ev, first = K.lru_one_tier(offsets, blocks, np.int64(n_unique), np.int64(caps[0]), ph, bh, full, runs)
        misses = (np.diff(offsets) - bh).astype(np.int32) * np.int32(caps[0] > 0)  # all admitted
        return HitCounts(ph[:, None], bh[:, None], misses, runs, np.where(full, 0, -1).astype(np.int8),
                         np.array([ins], np.int64), np.array([ev], np.int64),
                         _one_tier_miss_hist(blocks, int(caps[0]), first))
    if next_use is None:
        next_use = K.next_use_for_rows(blocks, n_unique)
    out = HitCounts.empty(n_req, T)
    K.replay_tiers(offsets, blocks, np.int64(n_unique), next_use, caps, codes, admit, bool(inclusive),
                   bool(promote), bool(demote), *out.arrays())
    return out


def percentiles(x: np.ndarray) -> dict:
    """p50, p90, p99 and mean of ``x`` (all 0.0 for no values)."""
    return percentiles_of_rows(np.asarray(x)[None, :])[0]


def percentiles_of_rows(x: np.ndarray) -> list[dict]:
    """``percentiles`` of each row of the 2-D ``x``, with one partition of the whole array
    (a sweep prices every index model of a replay at once)."""
    if x.shape[1] == 0:
        return [{"p50": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0} for _ in range(x.shape[0])]
    p = np.percentile(x, [50, 90, 99], axis=1)
    return [{"p50": float(p[0, i]), "p90": float(p[1, i]), "p99": float(p[2, i]), "mean": float(row.mean())}
            for i, row in enumerate(x)]


@dataclass(frozen=True)
class Costs:
    metadata_us: np.ndarray
    load_us: np.ndarray          # (n_req, T)
    prefill_us: np.ndarray
    ttft_us: np.ndarray
    hit_tokens: np.ndarray       # (n_req, T)


def load_and_prefill(cfg: ReplayConfig, prefix_hits: np.ndarray, full_tier: np.ndarray, n_blocks: np.ndarray,
                     input_len: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The index-independent costs of one replay: tokens served per tier and load time per
    tier (both (n_req, T)), and prefill time (µs) of the rest."""
    tokens = cost.hit_tokens_per_tier(prefix_hits, full_tier, n_blocks, input_len, block_size)
    load = cost.load_us(tokens, cfg.model.kv_bytes_per_token, [t.read_latency_us for t in cfg.tiers],
                        [t.read_bandwidth_gb_s for t in cfg.tiers])
    return tokens, load, cost.prefill_us(cfg.model, cfg.gpu, input_len, tokens.sum(axis=1))


def price(cfg: ReplayConfig, hits: HitCounts, plan: cost.LookupPlan, input_len: np.ndarray,
          block_size: int, index_model: cost.IndexModel | None = None) -> Costs:
    """Cost models applied to one replay's hit counts."""
    model = index_model or cost.resolve_index(cfg.index)
    meta = cost.metadata_us(model, plan, hits.index_inserts, hits.insert_runs)
    tokens, load, pre = load_and_prefill(cfg, hits.prefix_hits, hits.full_tier, plan.n_blocks, input_len, block_size)
    ttft = cost.ttft_us(meta, load.sum(axis=1), pre, cfg.overlap)
    return Costs(meta, load, pre, ttft, tokens)


@dataclass(frozen=True)
class ReplayResult(SummaryHtmlMixin):
    """One replay: ``requests`` (one row per request), ``tiers`` (one row per tier)."""
    config: ReplayConfig
    block_size: int
    capacities: tuple[int, ...]
    requests: pl.DataFrame = field(repr=False)
    tiers: pl.DataFrame = field(repr=False)

    @property
    def prefix_hit_ratio(self) -> float:
        n = int(self.requests["n_blocks"].sum())
        return int(self.tiers["prefix_hits"].sum()) / n if n else 0.0

    @property
    def block_hit_ratio(self) -> float:
        n = int(self.requests["n_blocks"].sum())
        return int(self.tiers["block_hits"].sum()) / n if n else 0.0

    def misses(self, tier: str | None = None) -> dict:
        """The miss taxonomy (docs/replay.md "Miss taxonomy"): cause -> accesses, of ``tier``
        (the accesses that fall through it) or, by default, of the whole hierarchy."""
        row = self.tiers.row(-1 if tier is None else self.tiers["name"].to_list().index(tier), named=True)
        return {cause: int(row[f"misses_{cause}"]) for cause in MISS_CAUSES}

    def _tier_dicts(self) -> list[dict]:
        """The tiers frame's rows, the miss causes nested as ``misses``."""
        out = []
        for row in self.tiers.to_dicts():
            causes = {cause: row.pop(f"misses_{cause}") for cause in MISS_CAUSES}
            row.pop("misses")
            out.append({**row, "misses": causes})
        return out

    def summary(self) -> dict:
        req = self.requests
        tokens = int(req["input_len"].sum())
        return {
            "config": self.config.name,
            "n_requests": req.height,
            "n_accesses": int(req["n_blocks"].sum()),
            "block_size": self.block_size,
            "prefix_hit_ratio": self.prefix_hit_ratio,
            "block_hit_ratio": self.block_hit_ratio,
            "token_hit_ratio": int(req["hit_tokens"].sum()) / tokens if tokens else 0.0,
            "misses": self.misses(),
            "tiers": self._tier_dicts(),
            "ttft_ms": percentiles(req["ttft_ms"].to_numpy()),
            "metadata_us": percentiles(req["metadata_us"].to_numpy()),
            "load_us": percentiles(req["load_us"].to_numpy()),
            "prefill_ms": percentiles(req["prefill_ms"].to_numpy()),
            "index": self.config.index.kind,
            "overlap": self.config.overlap,
        }

    def to_parquet(self, path) -> None:
        """Write the per-request frame (explicit call)."""
        self.requests.write_parquet(path)


def replay(trace, config: ReplayConfig) -> ReplayResult:
    """Replay ``trace`` (a kvctrace Trace) through ``config``'s tiers and price every request."""
    offsets, blocks, n_unique = _arrays(trace)
    bs = int(trace.block_size)
    caps = config.capacities(bs)
    for i, c in enumerate(caps):
        if c < 0:
            raise ConfigError("capacity must be >= 0", field=f"tiers[{i}].capacity_blocks")
    hits = run_hits(offsets, blocks, n_unique, caps, policy_codes(config),
                    [t.admit_min_accesses for t in config.tiers],
                    inclusive=config.hierarchy == "inclusive", promote=config.promote_on_hit,
                    demote=config.demote_on_evict)
    model = cost.resolve_index(config.index)
    plan = cost.lookup_plan(offsets, blocks, model)
    input_len = np.asarray(trace.input_len, np.int64)
    c = price(config, hits, plan, input_len, bs, model)
    return build_result(config, bs, caps, trace, hits, c)


def build_result(config, bs, caps, trace, hits: HitCounts, c: Costs) -> ReplayResult:
    names = [t.name for t in config.tiers]
    n_blocks = np.diff(np.asarray(trace.offsets, np.int64))
    cols = {
        "req_id": np.arange(n_blocks.shape[0], dtype=np.int64),
        "ts": np.asarray(trace.ts, np.float64),
        "input_len": np.asarray(trace.input_len, np.int64),
        "n_blocks": n_blocks,
        "prefix_hit_blocks": hits.prefix_hits.sum(axis=1).astype(np.int64),
        "block_hits": hits.block_hits.sum(axis=1).astype(np.int64),
        "hit_tokens": c.hit_tokens.sum(axis=1),
        "index_inserts": hits.index_inserts.astype(np.int64),
        "metadata_us": c.metadata_us,
        "load_us": c.load_us.sum(axis=1),
        "prefill_ms": c.prefill_us / 1e3,
        "ttft_ms": c.ttft_us / 1e3,
    }
    for k, name in enumerate(names):
        cols[f"prefix_hits_{name}"] = hits.prefix_hits[:, k].astype(np.int64)
        cols[f"block_hits_{name}"] = hits.block_hits[:, k].astype(np.int64)
        cols[f"load_us_{name}"] = c.load_us[:, k]
    requests = pl.DataFrame(cols)
    bb = config.block_bytes(bs)
    kvb = config.model.kv_bytes_per_token
    total = int(n_blocks.sum())
    tiers = pl.DataFrame({
        "name": names,
        "policy": [t.policy for t in config.tiers],
        "capacity_blocks": np.asarray(caps, np.int64),
        "capacity_bytes": np.asarray(caps, np.int64) * bb,
        "admit_min_accesses": np.array([t.admit_min_accesses for t in config.tiers], np.int64),
        "prefix_hits": hits.prefix_hits.sum(axis=0).astype(np.int64),
        "block_hits": hits.block_hits.sum(axis=0).astype(np.int64),
        "prefix_hit_ratio": hits.prefix_hits.sum(axis=0) / max(total, 1),
        "block_hit_ratio": hits.block_hits.sum(axis=0) / max(total, 1),
        "bytes_read": c.hit_tokens.sum(axis=0) * kvb,
        "bytes_written": hits.tier_inserts * bb,
        "inserts": hits.tier_inserts,
        "evictions": hits.tier_evictions,
        **_miss_columns(hits, caps, total),
    })
    return ReplayResult(config, bs, tuple(int(x) for x in caps), requests, tiers)


def _miss_columns(hits: HitCounts, caps, total: int) -> dict:
    """The tiers frame's miss columns: ``misses`` (accesses that fall through the tier: not
    served as prefix hits by it or a tier above) and ``misses_<cause>`` per cause."""
    causes = miss_taxonomy(hits, caps, total)
    cols = {"misses": total - np.cumsum(hits.prefix_hits.sum(axis=0, dtype=np.int64))}
    cols.update({f"misses_{cause}": causes[:, j] for j, cause in enumerate(MISS_CAUSES)})
    return cols
