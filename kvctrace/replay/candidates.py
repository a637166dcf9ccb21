"""What the analyses say about cache size, turned into the capacities ``recommend`` tries.

Sizes (in blocks, of the whole cache), each from an analysis of kvctrace/analysis/:
* hot sets: the fewest hottest blocks holding 50/80/90/99% of accesses
  (``analysis.hotness.hot_set_size``, the hotness analysis' figure);
* knees of the exact LRU miss-ratio curve (the reuse analysis' curve, from the same stack
  distances: ``kernels.reuse.hit_ratio_at`` on ``analysis.reuse.log_capacities``): Kneedle
  (Satopää et al., 2011) on hit ratio against log capacity, both scaled to [0, 1] -- every
  local maximum of (scaled hit ratio - scaled log capacity) that stands ``KNEE_PROMINENCE``
  above the lowest point between it and its neighbouring maxima, at most ``MAX_KNEES``, the
  highest first;
* the working set: the most distinct blocks accessed in one window of the hotness analysis'
  drift table (``analysis.hotness.window_drift``, windows of a twentieth of the trace).
Sizes within ``MERGE`` (relative) of a larger-priority one are merged into it (one candidate,
both names kept).

Capacity vectors: the tiers, fastest first, are cut so that the cache down to some tier ends at
a candidate size: tier k holds its full budget, or ``s - (capacity of the tiers above)`` for a
candidate size s that falls inside it, or nothing when the tiers above already hold a candidate
size (a lower tier that is not needed). Every tier's capacity is named by the figure it comes from.

Admission thresholds above 1 are swept only when the one-hit share (blocks accessed once, as in
the hotness and reuse analyses) is at least ``ONE_HIT_SWEEP_SHARE``: only then can keeping
single-use blocks out of the top tier pay.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..formatting import format_bytes

HOT_SET_SOURCES = {0.5: "hot set holding 50% of accesses", 0.8: "hot set holding 80% of accesses",
                   0.9: "hot set holding 90% of accesses", 0.99: "hot set holding 99% of accesses"}
MAX_KNEES = 3
KNEE_PROMINENCE = 0.05
KNEE_CURVE_POINTS = 128
MERGE = 0.05
ONE_HIT_SWEEP_SHARE = 0.5
MAX_VECTORS = 64


@dataclass(frozen=True)
class Size:
    """A candidate cache size and the analysis figure it comes from."""
    blocks: int
    source: str                    # e.g. "hot set holding 80% of accesses"
    also: tuple[str, ...] = ()     # merged sources of (nearly) the same size

    def text(self, block_bytes: int) -> str:
        """"the hot set holding 80% of accesses is 125,090 blocks = 7.8 TB at 64 MiB/block"."""
        names = " = ".join((self.source,) + self.also)
        return f"the {names} is {self.amount(block_bytes)}"

    def figure(self, block_bytes: int) -> str:
        """"the hot set holding 80% of accesses: 125,090 blocks = 7.8 TB at 64 MiB/block"."""
        names = " = ".join((self.source,) + self.also)
        return f"the {names}: {self.amount(block_bytes)}"

    def amount(self, block_bytes: int) -> str:
        return f"{self.blocks:,} blocks = {format_bytes(self.blocks * block_bytes)} at {format_bytes(block_bytes)}/block"


@dataclass(frozen=True)
class WorkloadFacts:
    n_accesses: int
    n_unique: int
    one_hit_share: float
    unlimited_hit_ratio: float       # exact LRU with every block kept (the curve's end)
    hot_sets: tuple[Size, ...]
    knees: tuple[Size, ...]
    working_set: Size | None
    working_set_window_s: float
    knee_hit_ratios: tuple[float, ...] = field(default=())

    def sizes(self) -> list[Size]:
        """Every candidate size, merged (see module docstring), smallest first."""
        raw = list(self.knees) + ([self.working_set] if self.working_set else []) + list(self.hot_sets)
        merged: list[Size] = []
        for s in raw:
            near = next((i for i, m in enumerate(merged) if abs(m.blocks - s.blocks) <= MERGE * max(m.blocks, 1)), None)
            if near is None:
                merged.append(s)
            else:
                m = merged[near]
                merged[near] = Size(m.blocks, m.source, m.also + (s.source,))
        return sorted((s for s in merged if s.blocks > 0), key=lambda s: s.blocks)

    def summary(self) -> dict:
        return {"one_hit_share": self.one_hit_share, "unlimited_lru_hit_ratio": self.unlimited_hit_ratio,
                "hot_sets": {s.source: s.blocks for s in self.hot_sets},
                "mrc_knees": [{"capacity_blocks": s.blocks, "hit_ratio": h} for s, h in zip(self.knees, self.knee_hit_ratios)],
                "working_set": None if self.working_set is None else {
                    "blocks": self.working_set.blocks, "window_s": self.working_set_window_s}}


def mrc_knees(caps: np.ndarray, hit: np.ndarray, max_knees: int = MAX_KNEES,
              prominence: float = KNEE_PROMINENCE) -> list[int]:
    """Indices into ``caps`` of the knees of the hit-ratio curve ``hit`` (see module docstring)."""
    if caps.shape[0] < 3 or hit[-1] <= 0 or caps[-1] <= caps[0]:
        return []
    x = (np.log(caps) - np.log(caps[0])) / (np.log(caps[-1]) - np.log(caps[0]))
    diff = hit / hit[-1] - x
    peaks = [i for i in range(1, diff.shape[0] - 1) if diff[i] >= diff[i - 1] and diff[i] > diff[i + 1]]
    kept = []
    for n, i in enumerate(peaks):
        lo = peaks[n - 1] if n else 0
        hi = peaks[n + 1] if n + 1 < len(peaks) else diff.shape[0] - 1
        if diff[i] - max(diff[lo:i].min(), diff[i + 1:hi + 1].min()) >= prominence:
            kept.append(i)
    return sorted(sorted(kept, key=lambda i: -diff[i])[:max_knees])


def workload_facts(trace, blocks: np.ndarray, n_unique: int, dist: np.ndarray) -> WorkloadFacts:
    """The analysis figures candidate capacities come from, for ``trace`` (``dist``: its stack
    distances, shared with the LRU replays)."""
    from ..analysis.hotness import HOT_SET_QUANTILES, CountHistogram, window_drift
    from ..analysis.reuse import log_capacities
    from ..kernels.reuse import distance_counts, hit_ratio_at
    n_acc = int(blocks.shape[0])
    counts = np.bincount(blocks, minlength=n_unique)
    one_hit = float(np.count_nonzero(counts == 1) / max(n_unique, 1))
    # the hot sets from the histogram of the counts (no sort of millions of per-block counts)
    hist = CountHistogram.of(counts[counts > 0])
    del counts
    hot = tuple(Size(hist.hot_set_size(q), HOT_SET_SOURCES.get(q, f"hot set holding {q:.0%} of accesses"))
                for q in HOT_SET_QUANTILES) if hist.u else ()
    dcounts, cold = distance_counts(dist)
    caps = log_capacities(n_unique, KNEE_CURVE_POINTS)
    hit = hit_ratio_at(dcounts, n_acc, caps)
    idx = mrc_knees(caps, hit)
    knees = tuple(Size(int(caps[i]), f"knee{f' {n + 1}' if len(idx) > 1 else ''} of the exact LRU miss-ratio curve "
                                     f"(at hit ratio {hit[i]:.3f})") for n, i in enumerate(idx))
    ws, window = None, 0.0
    if n_acc and getattr(trace, "ts", None) is not None:
        drift, window = window_drift(trace, None, 1, n_unique)
        peak = int(drift["distinct_blocks"].max())
        ws = Size(peak, f"working set (most distinct blocks in a {window:,.0f}-s window)")
    return WorkloadFacts(n_acc, n_unique, one_hit, (n_acc - cold) / n_acc if n_acc else 0.0, hot, knees, ws,
                         float(window), tuple(float(hit[i]) for i in idx))


@dataclass(frozen=True)
class Vector:
    """Capacities per tier (blocks) and, per tier, where its capacity comes from."""
    caps: tuple[int, ...]
    sources: tuple[str, ...]


def capacity_vectors(sizes: list[Size], budgets: list[int], limit_blocks: int | None = None) -> list[Vector]:
    """The capacity vectors of the module docstring, for tier ``budgets`` (blocks), with total
    capacity at most ``limit_blocks`` when given."""
    out: list[Vector] = []

    def walk(k: int, above: int, caps: tuple, src: tuple):
        if k == len(budgets):
            if sum(caps) > 0 and (limit_blocks is None or sum(caps) <= limit_blocks):
                out.append(Vector(caps, src))
            return
        options = [(budgets[k], "full budget")]
        options += [(s.blocks - above, s.source) for s in sizes if 0 < s.blocks - above < budgets[k]]
        covered = [s for s in sizes if 0 < s.blocks <= above]
        if k > 0 and covered:
            options.append((0, f"not needed: the tiers above hold the {covered[-1].source}"))
        for c, why in options:
            walk(k + 1, above + c, caps + (int(c),), src + (why,))

    walk(0, 0, (), ())
    unique = list({v.caps: v for v in out}.values())
    if len(unique) > MAX_VECTORS:   # evenly over the totals, the smallest and the largest kept
        unique.sort(key=lambda v: sum(v.caps))
        keep = np.unique(np.linspace(0, len(unique) - 1, MAX_VECTORS).round().astype(int))
        unique = [unique[i] for i in keep]
    return unique
