"""Config sweep and recommendation behind ``kvctrace recommend`` (docs/replay.md "Sweep and
recommendation").

Two ways to choose the configurations to replay:
* **guided** (the default, ``Grid.fractions`` unset): the analyses name the capacities
  (candidates.py: hot sets, knees of the exact LRU curve, the working set) and the search goes
  in stages -- (A) all-LRU at every candidate capacity vector, priced under the base config's
  index model; (B) every other policy of the grid at the ``REFINE`` best vectors of A (the best
  one only when that would replay more than ``REFINE_WORK`` block accesses); (C) when
  the one-hit share is high, the grid's admission thresholds for the best policy so far at
  those vectors; then every index model for the configurations of B, C and the refined vectors.
* **grid** (``Grid.fractions`` given): every combination of policy x admission x capacity
  fraction of each tier's budget x index model, as before.
Every configuration that is replayed is replayed exactly (points.py), all-LRU ones from one
stack-distance pass. Rows are ranked by the objective with tie groups (ranking.py); the cost
frontier (frontier.py) and Belady at the full budget come with the result.

``Recommendation.config`` is a ReplayConfig that ``save_config`` writes as TOML for
``kvctrace replay --config``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from ..errors import ConfigError, UnknownNameError
from ..kernels import policies
from ..results import ResultMixin as SummaryHtmlMixin  # summary() -> to_json, Jupyter rendering
from . import cost, ranking
from .candidates import ONE_HIT_SWEEP_SHARE, Vector, WorkloadFacts, capacity_vectors, workload_facts
from .config import IndexConfig, ReplayConfig, format_bytes, validate
from .engine import HitCounts, _arrays
from .frontier import frontier
from .points import Point, TraceArrays, _kernel_rows, replay_points
from .pricing import Pricer, make_pricer

OBJECTIVES = ranking.OBJECTIVES
REFINE = 2    # capacity vectors of stage A that the other policies and admission thresholds are tried at
REFINE_WORK = 200_000_000   # ... or only the best one when stage B would replay more block accesses


@dataclass(frozen=True)
class Grid:
    policies: tuple[str, ...] = field(default=tuple(policies.online_names()),
                                      metadata={"help": "Eviction policies (same policy on every tier)"})
    admission: tuple[int, ...] = field(default=(1, 2), metadata={
        "help": "Admission thresholds for the top tier (admit blocks seen at least k times); thresholds "
                "above 1 are tried only when the one-hit share is high (guided search)"})
    fractions: tuple[float, ...] | None = field(default=None, metadata={
        "help": "Capacity of each tier as a fraction of its budget, every combination tried (grid search); "
                "unset: capacities from the analyses (guided search)"})
    indexes: tuple[str, ...] = field(default=tuple(cost.INDEX_MODELS), metadata={
        "help": "Metadata index models"})

    def validate(self) -> "Grid":
        for p in self.policies:
            policies.get(p)
        for i in self.indexes:
            if i not in cost.INDEX_MODELS:
                raise UnknownNameError(f"unknown index kind '{i}'", field="indexes",
                                       hint="valid kinds: " + ", ".join(cost.INDEX_MODELS))
        if not self.policies or not self.admission or not self.indexes or self.fractions == ():
            raise ConfigError("every grid dimension needs at least one value", field="grid")
        if any(a < 1 for a in self.admission):
            raise ConfigError("admission thresholds must be >= 1", field="admission")
        if any(not 0 < f <= 1 for f in self.fractions or ()):
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
    """Hit counts for every row of caps/codes/admit with the engine's kernel (leading config axis)."""
    flags = (base.hierarchy == "inclusive", bool(base.promote_on_hit), bool(base.demote_on_evict))
    return _kernel_rows(TraceArrays(offsets, blocks, int(n_unique), flags), caps, codes, admit, workers, engine)


@dataclass(frozen=True)
class SweepResult(SummaryHtmlMixin):
    """Every configuration replayed, ranked (``table``), with what is needed to rebuild one."""
    table: pl.DataFrame = field(repr=False)
    objective: str
    base: ReplayConfig
    block_size: int
    tier_names: tuple[str, ...]
    budget_blocks: tuple[int, ...]
    sequential_fraction: float
    one_hit_fraction: float
    bound: dict
    tie_tolerance: float = ranking.DEFAULT_TIE_TOLERANCE
    facts: WorkloadFacts | None = field(default=None, repr=False)
    vectors: tuple[Vector, ...] = field(default=(), repr=False)
    search: str = "grid"
    frontier: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    replays: dict = field(default_factory=dict)       # how many replays ran, and how

    @property
    def tie(self) -> str:
        return ranking.tie_text(self.table, ranking.objective(self.objective), self.tie_tolerance)

    def sources_of(self, row: dict) -> tuple[str, ...] | None:
        """Where each tier's capacity of ``row`` comes from (guided search), else None."""
        caps = tuple(int(row[f"cap_{n}"]) for n in self.tier_names)
        return next((v.sources for v in self.vectors if v.caps == caps), None)

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
        return {"objective": self.objective, "search": self.search, "n_configs": self.table.height,
                "n_replays": int(self.table.select(pl.col("replay").n_unique()).item()),
                "replays": dict(self.replays), "tie_tolerance": self.tie_tolerance, "tie": self.tie,
                "sequential_fraction": self.sequential_fraction, "one_hit_fraction": self.one_hit_fraction,
                "belady_bound": self.bound, "analysis": self.facts.summary() if self.facts else None,
                "candidate_capacities": [{"capacity_blocks": list(v.caps), "sources": list(v.sources)}
                                         for v in self.vectors],
                "frontier": self.frontier.drop("tie_group", strict=False).to_dicts() if self.frontier.height else [],
                "top": self.table.head(top).to_dicts()}


class _Run:
    """One sweep's shared state: trace arrays, pricer, the points replayed and their rows, progress."""

    def __init__(self, ta: TraceArrays, pricer: Pricer, workers, engine, progress, total: int):
        self.ta, self.pricer, self.workers, self.engine = ta, pricer, workers, engine
        self.rows: list[dict] = []
        self.points: list[Point] = []
        self.progress, self.total, self.done = progress, max(total, 1), 0
        self.counts = {"stack": 0, "kernel": 0, "repriced": 0}
        self.bound: dict | None = None

    def tick(self, n: int, stage: str) -> None:
        from ..progress import bar_text
        self.done += n
        if self.progress:
            self.progress(f"{stage} {bar_text(min(self.done / self.total, 1.0))}")

    def finish(self) -> None:
        self.done = self.total - 1
        self.tick(1, "replays done")

    def _replay(self, points: list[Point], ids: list[int], kinds, stage: str, again: bool = False,
                last_stack: bool = False) -> None:
        for idx, hits in replay_points(self.ta, points, self.workers, self.engine, lambda n: self.tick(n, stage),
                                       last_stack):
            kind = "stack" if self.ta.stack_ok and points[idx[0]].stack_exact else "kernel"
            for j, i in enumerate(idx):    # priced one replay at a time: each gets its own replay id
                if ids[i] < 0:             # the Belady bound: not a row
                    self.bound = _bound(hits, j, self.pricer.total)
                    continue
                self.counts["repriced" if again else kind] += 1
                sub = HitCounts(*(a[j:j + 1] for a in hits.arrays()))
                self.rows += self.pricer.rows([points[i]], ids[i], sub, kinds)
        self.rows.sort(key=lambda r: r["replay"])      # grid order, whatever order the groups ran in

    def run(self, points: list[Point], kinds, stage: str, bound: Point | None = None, last_stack: bool = False) -> None:
        """Replay ``points`` not replayed yet and price them under index ``kinds``; ``bound``
        (the Belady point) is replayed with them, its hit ratios kept in ``self.bound``;
        ``last_stack``: see ``replay_points``."""
        seen = set(self.points)
        points = [p for p in dict.fromkeys(points) if p not in seen]
        start = len(self.points)
        self.points += points
        ids = list(range(start, start + len(points)))
        if bound is not None:
            points, ids = points + [bound], ids + [-1]
        self._replay(points, ids, kinds, stage, last_stack=last_stack)

    def reprice(self, points: list[Point], kinds, stage: str) -> None:
        """Price replayed ``points`` under the index ``kinds`` they lack (replaying them again:
        cheaper than keeping every replay's per-request hits)."""
        done = {(r["replay"], r["index"]) for r in self.rows}
        by_missing: dict = {}
        for p in points:
            r = self.points.index(p)
            missing = tuple(k for k in kinds if (r, k) not in done)
            if missing:
                by_missing.setdefault(missing, []).append((p, r))
        for missing, todo in by_missing.items():
            self._replay([p for p, _ in todo], [r for _, r in todo], list(missing), stage, again=True)


def _bound(hits, j: int, total: int) -> dict:
    return {"policy": "belady", "prefix_hit_ratio": float(hits.prefix_hits[j].sum()) / total,
            "block_hit_ratio": float(hits.block_hits[j].sum()) / total}


def _grid_points(grid: Grid, maxcap: list[int]) -> list[Point]:
    out = []
    for pol, adm, fr in itertools.product(grid.policies, grid.admission,
                                          itertools.product(grid.fractions, repeat=len(maxcap))):
        out.append(Point(pol, adm, tuple(int(m * f) for m, f in zip(maxcap, fr))))
    return list(dict.fromkeys(out))  # fractions can collide on tiny budgets


def _refine(n_accesses: int, n_others: int) -> int:
    """How many of stage A's best capacity vectors stage B tries the other policies at."""
    return REFINE if n_accesses * n_others * REFINE <= REFINE_WORK else 1


def _guided(run: _Run, grid: Grid, vectors: list[Vector], obj, tol: float, base_kind: str, facts,
            bound: Point) -> None:
    """Stages A-C of the guided search (module docstring); the Belady ``bound`` replays beside
    the last stage's replays."""
    scout = "lru" if "lru" in grid.policies else grid.policies[0]
    run.run([Point(scout, 1, v.caps) for v in vectors], [base_kind], "A: capacities")
    ranked = ranking.rank(pl.DataFrame(run.rows), obj, tol)
    others = [p for p in grid.policies if p != scout]
    refine = _refine(facts.n_accesses, len(others))
    best_caps = list(dict.fromkeys(tuple(int(r[f"cap_{n}"]) for n in run.pricer.names)
                                   for r in ranked.iter_rows(named=True)))[:refine]
    run.reprice([Point(scout, 1, c) for c in best_caps], list(run.pricer.models), "index models")
    run.ta.drop_distances()      # the last stack-distance replays are done
    thresholds = [a for a in grid.admission if a > 1]
    admit = thresholds and facts.one_hit_share >= ONE_HIT_SWEEP_SHARE
    run.run([Point(p, 1, c) for c in best_caps for p in others], list(run.pricer.models), "B: policies",
            bound=None if admit else bound)
    if admit:
        top = ranking.rank(pl.DataFrame(run.rows), obj, tol).row(0, named=True)["policy"]
        run.run([Point(top, a, c) for c in best_caps for a in thresholds], list(run.pricer.models),
                "C: admission", bound=bound)


def sweep(trace, base: ReplayConfig, *, budgets: dict | None = None, grid: Grid = Grid(),
          objective: str = "cost", tie_tolerance: float = ranking.DEFAULT_TIE_TOLERANCE,
          workers: str = "threads", engine: str = "local", max_memory_bytes: int | None = None,
          progress=None) -> SweepResult:
    """Replay and price the configurations (guided or grid, see module docstring) and rank
    them by ``objective`` with tie groups. ``max_memory_bytes`` caps the total capacity of
    all tiers; ``progress(text)`` is told how far the replays are; ``engine="ray"`` runs the
    replays as Ray tasks (kvctrace/engines; identical results)."""
    obj = ranking.objective(objective)
    tol = ranking.check_tolerance(tie_tolerance)
    if workers not in ("threads", "processes"):
        raise ConfigError(f"unknown workers '{workers}'", field="workers", hint="threads or processes")
    from ..engines import check_engine
    check_engine(engine)
    grid.validate()
    offsets, blocks, n_unique = _arrays(trace)
    bs = int(trace.block_size)
    maxcap = tier_budgets(base, bs, budgets)
    flags = (base.hierarchy == "inclusive", bool(base.promote_on_hit), bool(base.demote_on_evict))
    ta = TraceArrays(offsets, blocks, n_unique, flags)
    pricer = make_pricer(trace, base, grid.indexes, offsets, blocks, need_prices=objective == "cost")
    facts = workload_facts(trace, blocks, n_unique, ta.distances())
    bb = base.block_bytes(bs)
    limit = None if max_memory_bytes is None else int(max_memory_bytes // bb)
    vectors: list[Vector] = []
    if grid.fractions is None:
        vectors = capacity_vectors(facts.sizes(), maxcap, limit)
        refine = min(_refine(facts.n_accesses, len(grid.policies) - 1), len(vectors))
        admit = facts.one_hit_share >= ONE_HIT_SWEEP_SHARE
        planned = len(vectors) + refine * (len(grid.policies) + admit * (len(grid.admission) - 1)) + 1
    else:
        points = [p for p in _grid_points(grid, maxcap) if limit is None or sum(p.caps) <= limit]
        planned = len(points) + 1
    if (vectors if grid.fractions is None else points) == []:
        raise ConfigError(f"no config fits in {format_bytes(max_memory_bytes)} in total", field="max_memory",
                          hint="raise the budget, or give --fractions with smaller values")
    run = _Run(ta, pricer, workers, engine, progress, planned)
    # Belady at the full budget, the bound the online policies are measured against
    bound = Point("belady", 1, tuple(maxcap))
    base_kind = base.index.kind if base.index.kind in grid.indexes else grid.indexes[0]
    if grid.fractions is None:
        _guided(run, grid, vectors, obj, tol, base_kind, facts, bound)
    else:
        run.run(points, list(grid.indexes), "replays", bound=bound, last_stack=True)
    run.finish()
    table = ranking.rank(pl.DataFrame(run.rows), obj, tol)
    from ..kernels.replay import request_runs
    seq, _, _ = request_runs(offsets, blocks)
    return SweepResult(table, objective, base, bs, pricer.names, tuple(maxcap),
                       float(seq.sum()) / pricer.total, facts.one_hit_share, run.bound, tol, facts, tuple(vectors),
                       "guided" if grid.fractions is None else "grid", frontier(table, tol), run.counts)


@dataclass(frozen=True)
class Recommendation(SummaryHtmlMixin):
    config: ReplayConfig
    row: dict
    reasons: tuple[str, ...]
    sweep: SweepResult = field(repr=False)

    def summary(self, top: int = 10) -> dict:
        return {"recommended": self.row, "reasons": list(self.reasons), **self.sweep.summary(top)}


def recommend(trace, base: ReplayConfig, *, budgets: dict | None = None, grid: Grid = Grid(),
              objective: str = "cost", tie_tolerance: float = ranking.DEFAULT_TIE_TOLERANCE,
              workers: str = "threads", max_memory_bytes: int | None = None, engine: str = "local",
              progress=None) -> Recommendation:
    """Sweep (``sweep``), recommend the best-ranked configuration -- under ``cost`` the knee of
    the frontier -- and say why, citing the analysis figures behind its capacities."""
    from .reasons import reasons
    sw = sweep(trace, base, budgets=budgets, grid=grid, objective=objective, tie_tolerance=tie_tolerance,
               workers=workers, engine=engine, max_memory_bytes=max_memory_bytes, progress=progress)
    row = sw.table.row(0, named=True)
    return Recommendation(sw.config_of(row), row, tuple(reasons(sw, row)), sw)
