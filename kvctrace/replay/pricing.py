"""Price replays (hit counts) into sweep table rows: TTFT and metadata percentiles under each
index model, memory in bytes and dollars, and the GPU prefill time the hits save.

The figures of a row are those ``replay(trace, config_of(row)).summary()`` reports (the same
cost functions on the same hit counts); the dollar figures come from replay/prices.py.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import cost, prices
from .config import ReplayConfig
from .engine import HitCounts, load_and_prefill, percentiles_of_rows
from .points import Point


@dataclass(frozen=True)
class Pricer:
    """Prices the replays of one trace under one base config (its model, GPU, tiers' links)."""
    base: ReplayConfig
    models: dict            # index kind -> IndexModel
    plans: dict             # index kind -> LookupPlan
    names: tuple            # tier names
    n_blocks: np.ndarray
    input_len: np.ndarray
    block_size: int
    total: int              # block accesses
    duration_s: float
    gb_hour: np.ndarray | None      # $ per GB-hour per tier; None when a tier has no price
    cold_prefill_us: float          # prefill of every request with nothing cached

    def memory_usd_per_hour(self, caps) -> float | None:
        if self.gb_hour is None:
            return None
        nbytes = np.asarray(caps, np.float64) * self.base.block_bytes(self.block_size)
        return float(prices.memory_cost_per_hour(self.gb_hour, nbytes))

    def _shared(self, point: Point, hits: HitCounts, j: int) -> dict:
        """The index-independent figures of replay ``j`` of ``hits``: loads, prefill, hits, money."""
        base = self.base
        _, load, pre = load_and_prefill(base, hits.prefix_hits[j], hits.full_tier[j], self.n_blocks,
                                        self.input_len, self.block_size)
        saved_s = prices.prefill_gpu_seconds(self.cold_prefill_us - np.sum(pre), base.gpu.count)
        saved_h = float(prices.per_hour(saved_s, self.duration_s))
        mem_usd = self.memory_usd_per_hour(point.caps)
        saved_usd = float(prices.gpu_cost(base.prices, saved_h))
        row = {"policy": point.policy, "admission": point.admission}
        for name, c in zip(self.names, point.caps):
            row[f"cap_{name}"] = c
        row.update({
            "memory_bytes": int(sum(point.caps)) * base.block_bytes(self.block_size),
            "memory_usd_per_hour": mem_usd,
            "prefix_hit_ratio": int(hits.prefix_hits[j].sum()) / self.total,
            "block_hit_ratio": int(hits.block_hits[j].sum()) / self.total,
            "prefill_saved_gpu_s_per_hour": saved_h, "prefill_saved_usd_per_hour": saved_usd,
            "net_usd_per_hour": None if mem_usd is None else saved_usd - mem_usd})
        return {"row": row, "load": load.sum(axis=1), "prefill": pre}

    def rows(self, points: list[Point], start: int, hits: HitCounts, kinds=None) -> list[dict]:
        """One row per point of ``hits`` (replay ``start + j``) and index kind in ``kinds``
        (default: every model)."""
        out = []
        kinds = list(kinds or self.models)
        for j, point in enumerate(points):
            shared = self._shared(point, hits, j)
            meta = np.stack([cost.metadata_us(self.models[k], self.plans[k], hits.index_inserts[j],
                                              hits.insert_runs[j]) for k in kinds])
            ttft = cost.ttft_us(meta, shared["load"], shared["prefill"], self.base.overlap) / 1e3
            for kind, t, m in zip(kinds, percentiles_of_rows(ttft), percentiles_of_rows(meta)):
                out.append({"replay": start + j, "index": kind, **shared["row"],
                            "ttft_p50_ms": t["p50"], "ttft_p90_ms": t["p90"], "ttft_p99_ms": t["p99"],
                            "ttft_mean_ms": t["mean"], "metadata_p50_us": m["p50"], "metadata_p99_us": m["p99"]})
        return out


def make_pricer(trace, base: ReplayConfig, indexes, offsets, blocks, need_prices: bool) -> Pricer:
    """A Pricer for ``trace`` under ``base``: the base's own index kind keeps the base's
    ``[index]`` overrides, the other kinds their defaults. ``need_prices``: a tier without a
    price is an error (the cost objective), else the dollar columns are left empty."""
    from ..errors import ConfigError
    models = {i: cost.resolve_index(replace(base.index, kind=i)) if i == base.index.kind
              else cost.INDEX_MODELS[i] for i in indexes}
    from ..kernels.runs import find_runs
    shared: dict = {}     # models that plan alike (every point index) share one plan's arrays
    plans = {}
    runs = find_runs(offsets, blocks) if any(m.range_scan for m in models.values()) else None
    for i, m in models.items():
        key = (m.range_scan, m.keys_per_leaf, m.range_parallel) if m.range_scan else (False,)
        if key not in shared:
            shared[key] = cost.lookup_plan(offsets, blocks, m, runs)
        plans[i] = shared[key]
    try:
        gb_hour = np.array([p.gb_hour for p in prices.tier_prices(base)], np.float64)
    except ConfigError:
        if need_prices:
            raise
        gb_hour = None
    input_len = np.asarray(trace.input_len, np.int64)
    cold = float(np.sum(cost.prefill_us(base.model, base.gpu, input_len, np.zeros_like(input_len))))
    return Pricer(base, models, plans, tuple(t.name for t in base.tiers), np.diff(offsets), input_len,
                  int(trace.block_size), max(int(blocks.shape[0]), 1), float(trace.duration_s), gb_hour, cold)
