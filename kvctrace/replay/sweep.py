"""Config sweep and recommendation behind ``kvctrace recommend``.

The grid is index model x tier capacities x policy x admission threshold. Hit counts do not
depend on the index, so each (policy, admission, capacities) point is replayed once — all of
them in one parallel Numba kernel (``prange`` over configs) — and then priced under every
index model. Capacities are fractions of each tier's budget (the preset's capacity unless a
budget is given); the admission threshold applies to the top tier (hotness-aware admission:
blocks seen fewer times go to the first lower tier that admits them).

Parallelism: ``workers="threads"`` runs the replays in one Numba ``prange`` kernel (shared
read-only trace arrays, no pickling); ``"processes"`` uses a fork pool. Measured on the
Mooncake conversation trace, 2 cores (benchmarks/bench_recommend.py): 400 configs in 3.6 s
with threads vs 5.9 s with processes, so threads are the default.

``recommend`` ranks by the objective, then picks the *smallest-memory* config whose objective
is within ``tolerance`` of the best, and explains the choice against the runner-up of each
dimension. ``Recommendation.config`` is a ReplayConfig that ``save_config`` writes as TOML for
``kvctrace replay --config``.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from ..errors import ConfigError, UnknownNameError
from ..kernels import policies
from ..results import ResultMixin as SummaryHtmlMixin  # summary() -> to_json, Jupyter rendering
from . import cost
from .config import IndexConfig, ReplayConfig, format_bytes, validate
from .engine import HitCounts, _arrays, load_and_prefill, percentiles

CHUNK_BYTES = 256 * 2**20  # per-request hit arrays held at once during a sweep

# objective name -> (column, higher is better)
OBJECTIVES = {
    "p99-ttft": ("ttft_p99_ms", False),
    "p90-ttft": ("ttft_p90_ms", False),
    "p50-ttft": ("ttft_p50_ms", False),
    "mean-ttft": ("ttft_mean_ms", False),
    "hit-ratio": ("prefix_hit_ratio", True),
}


@dataclass(frozen=True)
class Grid:
    policies: tuple[str, ...] = field(default=tuple(policies.online_names()),
                                      metadata={"help": "Eviction policies (same policy on every tier)"})
    admission: tuple[int, ...] = field(default=(1, 2), metadata={
        "help": "Admission thresholds for the top tier (admit blocks seen at least k times)"})
    fractions: tuple[float, ...] = field(default=(0.5, 1.0), metadata={
        "help": "Capacity of each tier as a fraction of its budget (every combination is tried)"})
    indexes: tuple[str, ...] = field(default=tuple(cost.INDEX_MODELS), metadata={
        "help": "Metadata index models"})

    def validate(self) -> "Grid":
        for p in self.policies:
            policies.get(p)
        for i in self.indexes:
            if i not in cost.INDEX_MODELS:
                raise UnknownNameError(f"unknown index kind '{i}'", field="indexes",
                                       hint="valid kinds: " + ", ".join(cost.INDEX_MODELS))
        if not self.policies or not self.admission or not self.fractions or not self.indexes:
            raise ConfigError("every grid dimension needs at least one value", field="grid")
        if any(a < 1 for a in self.admission):
            raise ConfigError("admission thresholds must be >= 1", field="admission")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError("fractions must be in (0, 1]", field="fractions")
        return self


def tier_budgets(base: ReplayConfig, block_size: int, budgets: dict | None) -> list[int]:
    """Maximum blocks per tier: ``budgets`` (tier name -> bytes) or the base config's capacity."""
    budgets = dict(budgets or {})
    names = [t.name for t in base.tiers]
    for name in budgets:
        if name not in names:
            raise ConfigError(f"no tier named '{name}' in config '{base.name}'", field="budget",
                              hint="tiers: " + ", ".join(names))
    bb = base.block_bytes(block_size)
    return [int(budgets[t.name]) // bb if t.name in budgets else t.capacity_in_blocks(bb) for t in base.tiers]


def _run_grid(offsets, blocks, n_unique, caps, codes, admit, base: ReplayConfig, workers: str,
              engine: str = "local"):
    """Hit counts for every row of caps/codes/admit, as one HitCounts with a leading axis."""
    from ..kernels import replay as K
    R, T = caps.shape
    n_req = offsets.shape[0] - 1
    nu = K.next_use(blocks, np.int64(n_unique))
    args = (bool(base.hierarchy == "inclusive"), bool(base.promote_on_hit), bool(base.demote_on_evict))
    out = HitCounts.empty(n_req, T, configs=(R,))
    if engine == "ray":  # one Ray task per config, the same kernel (replay/distributed.py)
        from .distributed import replay_grid
        replay_grid(K.replay_tiers_many, offsets, blocks, n_unique, nu, caps, codes, admit, args, out.arrays())
        return out
    if workers == "processes" and R > 1:
        _run_processes(offsets, blocks, n_unique, nu, caps, codes, admit, args, out)
        return out
    K.replay_tiers_many(offsets, blocks, np.int64(n_unique), nu, caps, codes, admit, *args, *out.arrays())
    return out


def _process_chunk(payload):
    from ..kernels import replay as K
    offsets, blocks, n_unique, nu, caps, codes, admit, args = payload
    R, T = caps.shape
    res = HitCounts.empty(offsets.shape[0] - 1, T, configs=(R,)).arrays()
    for c in range(R):
        K.replay_tiers(offsets, blocks, np.int64(n_unique), nu, caps[c], codes[c], admit[c], *args,
                       *(a[c] for a in res))
    return res


def _run_processes(offsets, blocks, n_unique, nu, caps, codes, admit, args, out):
    """Same as the prange kernel, with a fork-based process pool (one chunk per core)."""
    import multiprocessing as mp
    n = min(os.cpu_count() or 1, caps.shape[0])
    chunks = np.array_split(np.arange(caps.shape[0]), n)
    payloads = [(offsets, blocks, n_unique, nu, caps[ix], codes[ix], admit[ix], args) for ix in chunks]
    with mp.get_context("fork").Pool(n) as pool:
        for ix, res in zip(chunks, pool.map(_process_chunk, payloads)):
            for dst, src in zip(out.arrays(), res):
                dst[ix] = src


@dataclass(frozen=True)
class _Pricing:
    """Prices replays (hit counts) under every index model into table rows."""
    base: ReplayConfig
    models: dict
    plans: dict
    names: tuple
    offsets: np.ndarray
    input_len: np.ndarray
    bs: int
    total: int

    def rows(self, points, start: int, hits: HitCounts) -> list[dict]:
        base, bs, total = self.base, self.bs, self.total
        n_blocks = np.diff(self.offsets)
        bb = base.block_bytes(bs)
        out = []
        for j, (pol, adm, cp) in enumerate(points):
            _, load, pre = load_and_prefill(base, hits.prefix_hits[j], hits.full_tier[j], n_blocks, self.input_len, bs)
            load = load.sum(axis=1)
            ph = int(hits.prefix_hits[j].sum())
            bh = int(hits.block_hits[j].sum())
            for i, model in self.models.items():
                meta = cost.metadata_us(model, self.plans[i], hits.index_inserts[j], hits.insert_runs[j])
                ttft = cost.ttft_us(meta, load, pre, base.overlap) / 1e3
                t = percentiles(ttft)
                m = percentiles(meta)
                row = {"replay": start + j, "index": i, "policy": pol, "admission": adm}
                for name, c in zip(self.names, cp):
                    row[f"cap_{name}"] = c
                row.update({"memory_bytes": int(sum(cp)) * bb, "prefix_hit_ratio": ph / total,
                            "block_hit_ratio": bh / total, "ttft_p50_ms": t["p50"], "ttft_p90_ms": t["p90"],
                            "ttft_p99_ms": t["p99"], "ttft_mean_ms": t["mean"], "metadata_p50_us": m["p50"],
                            "metadata_p99_us": m["p99"]})
                out.append(row)
        return out


@dataclass(frozen=True)
class SweepResult(SummaryHtmlMixin):
    """Every config of the grid, ranked (``table``), with what is needed to rebuild one."""
    table: pl.DataFrame = field(repr=False)
    objective: str
    base: ReplayConfig
    block_size: int
    tier_names: tuple[str, ...]
    budget_blocks: tuple[int, ...]
    sequential_fraction: float
    one_hit_fraction: float
    bound: dict

    def config_of(self, row: dict) -> ReplayConfig:
        """The ReplayConfig of one table row."""
        tiers = []
        for k, t in enumerate(self.base.tiers):
            tiers.append(replace(t, policy=row["policy"], capacity_blocks=int(row[f"cap_{t.name}"]),
                                 capacity_bytes=None,
                                 admit_min_accesses=int(row["admission"]) if k == 0 else 1))
        # the sweep priced the base's own index kind with the base's overrides, others with defaults
        index = self.base.index if row["index"] == self.base.index.kind else IndexConfig(kind=row["index"])
        return validate(replace(self.base, tiers=tuple(tiers), index=index, name=f"{self.base.name}-recommended"))

    def summary(self, top: int = 10) -> dict:
        return {"objective": self.objective, "n_configs": self.table.height,
                "n_replays": int(self.table.select(pl.col("replay").n_unique()).item()),
                "sequential_fraction": self.sequential_fraction, "one_hit_fraction": self.one_hit_fraction,
                "belady_bound": self.bound, "top": self.table.head(top).to_dicts()}


def sweep(trace, base: ReplayConfig, *, budgets: dict | None = None, grid: Grid = Grid(),
          objective: str = "p99-ttft", workers: str = "threads", engine: str = "local") -> SweepResult:
    """Replay and price every grid config; rank by ``objective`` (ties: less memory first).
    ``engine="ray"`` runs the replays as Ray tasks (kvctrace/engines; identical results)."""
    if objective not in OBJECTIVES:
        raise UnknownNameError(f"unknown objective '{objective}'", field="objective",
                               hint="valid objectives: " + ", ".join(OBJECTIVES))
    if workers not in ("threads", "processes"):
        raise ConfigError(f"unknown workers '{workers}'", field="workers", hint="threads or processes")
    from ..engines import check_engine
    check_engine(engine)
    grid.validate()
    offsets, blocks, n_unique = _arrays(trace)
    bs = int(trace.block_size)
    maxcap = tier_budgets(base, bs, budgets)
    T = len(maxcap)
    names = tuple(t.name for t in base.tiers)
    points = []
    for pol, adm, fr in itertools.product(grid.policies, grid.admission,
                                          itertools.product(grid.fractions, repeat=T)):
        caps = tuple(int(m * f) for m, f in zip(maxcap, fr))
        points.append((pol, adm, caps))
    points = list(dict.fromkeys(points))  # fractions can collide on tiny budgets
    caps = np.array([p[2] for p in points], np.int64).reshape(len(points), T)
    codes = np.array([[policies.get(p[0]).code] * T for p in points], np.int64).reshape(len(points), T)
    admit = np.ones((len(points), T), np.int64)
    admit[:, 0] = [p[1] for p in points]

    # Belady at the full budget: the bound the online policies are measured against.
    bound_hits = _run_grid(offsets, blocks, n_unique, np.array([maxcap], np.int64),
                           np.full((1, T), policies.code("belady"), np.int64), np.ones((1, T), np.int64), base, "threads",
                           engine)
    total = max(int(blocks.shape[0]), 1)
    bound = {"policy": "belady", "prefix_hit_ratio": float(bound_hits.prefix_hits.sum()) / total,
             "block_hit_ratio": float(bound_hits.block_hits.sum()) / total}

    models = {i: cost.resolve_index(replace(base.index, kind=i)) if i == base.index.kind
              else cost.INDEX_MODELS[i] for i in grid.indexes}
    plans = {i: cost.lookup_plan(offsets, blocks, m) for i, m in models.items()}
    pricing = _Pricing(base, models, plans, names, offsets, np.asarray(trace.input_len, np.int64), bs, total)
    # Replay in chunks so the per-request hit arrays stay under CHUNK_BYTES whatever the trace size.
    per_cfg = max((offsets.shape[0] - 1) * (T * 8 + 9), 1)
    chunk = max(int(CHUNK_BYTES // per_cfg), os.cpu_count() or 1)
    rows = []
    for start in range(0, len(points), chunk):
        sl = slice(start, start + chunk)
        hits = _run_grid(offsets, blocks, n_unique, caps[sl], codes[sl], admit[sl], base, workers, engine)
        rows += pricing.rows(points[sl], start, hits)
    col, higher = OBJECTIVES[objective]
    table = (pl.DataFrame(rows).with_row_index("grid_order")
             .sort([col, "memory_bytes", "grid_order"], descending=[higher, False, False])
             .with_row_index("rank", offset=1).drop("grid_order"))
    from ..kernels.replay import request_runs
    seq, _, _ = request_runs(offsets, blocks)
    counts = np.bincount(blocks, minlength=n_unique)
    return SweepResult(table, objective, base, bs, names, tuple(maxcap), float(seq.sum()) / total,
                       float((counts == 1).sum()) / max(n_unique, 1), bound)


@dataclass(frozen=True)
class Recommendation(SummaryHtmlMixin):
    config: ReplayConfig
    row: dict
    reasons: tuple[str, ...]
    sweep: SweepResult = field(repr=False)

    def summary(self, top: int = 10) -> dict:
        return {"recommended": self.row, "reasons": list(self.reasons), **self.sweep.summary(top)}


def recommend(trace, base: ReplayConfig, *, budgets: dict | None = None, grid: Grid = Grid(),
              objective: str = "p99-ttft", tolerance: float = 0.01, workers: str = "threads",
              max_memory_bytes: int | None = None, engine: str = "local") -> Recommendation:
    """Sweep, then pick the smallest-memory config within ``tolerance`` (relative) of the best
    objective value, and say why it wins. ``max_memory_bytes`` caps the total capacity of
    all tiers (a budget across tiers, on top of the per-tier ``budgets``)."""
    if not tolerance >= 0:
        raise ConfigError("tolerance must be >= 0", field="tolerance")
    sw = sweep(trace, base, budgets=budgets, grid=grid, objective=objective, workers=workers, engine=engine)
    col, higher = OBJECTIVES[objective]
    t = sw.table
    if max_memory_bytes is not None:
        t = t.filter(pl.col("memory_bytes") <= max_memory_bytes)
        if t.height == 0:
            raise ConfigError(f"no config fits in {format_bytes(max_memory_bytes)} in total",
                              field="max_memory", hint=f"the smallest grid config needs "
                              f"{format_bytes(sw.table['memory_bytes'].min())}; raise the budget or add smaller fractions")
        sw = replace(sw, table=t.drop("rank").with_row_index("rank", offset=1))
        t = sw.table
    best = t.row(0, named=True)[col]
    ok = t.filter(pl.col(col) >= best * (1 - tolerance)) if higher else t.filter(pl.col(col) <= best * (1 + tolerance))
    row = ok.sort(["memory_bytes", "rank"]).row(0, named=True)
    return Recommendation(sw.config_of(row), row, tuple(_reasons(sw, row, col, higher, tolerance)), sw)


_LABELS = {"ttft_p99_ms": "p99 TTFT", "ttft_p90_ms": "p90 TTFT", "ttft_p50_ms": "p50 TTFT",
           "ttft_mean_ms": "mean TTFT", "prefix_hit_ratio": "prefix hit ratio"}


def _reasons(sw: SweepResult, row: dict, col: str, higher: bool, tolerance: float) -> list[str]:
    t = sw.table
    unit = "" if col == "prefix_hit_ratio" else " ms"
    label = _LABELS[col]
    fmt = (lambda v: f"{v:.4f}") if col == "prefix_hit_ratio" else (lambda v: f"{v:,.1f}")
    same_replay = pl.col("replay") == row["replay"]
    out = []
    # index
    others = t.filter(same_replay & (pl.col("index") != row["index"])).sort("rank")
    model = cost.INDEX_MODELS[row["index"]]
    kind = "range index" if model.range_scan else ("batched point index" if model.batch else "point index")
    why = f"{kind} {row['index']}: {sw.sequential_fraction:.0%} of blocks in sequential runs"
    if model.range_scan:
        why += " (one range scan per run instead of a lookup per block)"
    elif model.batch:
        why += " (but one MGET round trip per request beats per-block lookups)"
    if others.height:
        o = others.row(0, named=True)
        why += (f"; metadata p99 {row['metadata_p99_us']:,.1f} µs vs {o['metadata_p99_us']:,.1f} µs "
                f"with {o['index']}, {label} {fmt(row[col])}{unit} vs {fmt(o[col])}{unit}")
    out.append(why)
    # policy
    caps_eq = [pl.col(f"cap_{n}") == row[f"cap_{n}"] for n in sw.tier_names]
    alt = t.filter((pl.col("index") == row["index"]) & (pl.col("admission") == row["admission"])
                   & (pl.col("policy") != row["policy"]) & pl.all_horizontal(caps_eq)).sort("rank")
    if alt.height:
        o = alt.row(0, named=True)
        verb = "ties" if abs(row[col] - o[col]) <= 1e-12 else "beats"
        out.append(f"policy {row['policy']} {verb} the next best policy, {o['policy']}, at the same capacities: "
                   f"{label} {fmt(row[col])}{unit} vs {fmt(o[col])}{unit}, prefix hit ratio "
                   f"{row['prefix_hit_ratio']:.4f} vs {o['prefix_hit_ratio']:.4f}")
    # admission
    alt = t.filter((pl.col("index") == row["index"]) & (pl.col("policy") == row["policy"])
                   & (pl.col("admission") != row["admission"]) & pl.all_horizontal(caps_eq)).sort("rank")
    if alt.height:
        o = alt.row(0, named=True)
        out.append(f"admission to {sw.tier_names[0]} after >= {row['admission']} access(es): "
                   f"{sw.one_hit_fraction:.0%} of blocks are accessed only once; {label} {fmt(row[col])}{unit} "
                   f"vs {fmt(o[col])}{unit} with >= {o['admission']}")
    # capacities
    full = all(row[f"cap_{n}"] == m for n, m in zip(sw.tier_names, sw.budget_blocks))
    best = t.row(0, named=True)
    if full:
        out.append("capacities: every tier at its full budget")
    else:
        saved = sum(m - row[f"cap_{n}"] for n, m in zip(sw.tier_names, sw.budget_blocks))
        out.append(f"capacities: within {tolerance:.0%} of the best {label} ({fmt(best[col])}{unit}) with "
                   f"{format_bytes(saved * sw.base.block_bytes(sw.block_size))} less memory than the full budget")
    out.append(f"Belady (offline optimum) at the full budget: prefix hit ratio {sw.bound['prefix_hit_ratio']:.4f}; "
               f"this config reaches {row['prefix_hit_ratio']:.4f}")
    return out
