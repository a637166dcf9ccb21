"""Objectives, tie groups and the ranking of a sweep table.

Ranking (docs/replay.md "Ties"): rows are sorted by the objective, best first, and cut into
tie groups: a row joins the current group when its value is within ``tolerance`` (relative) of
the group's first (best) value, else it starts a new group. Rows of equal value always share a
group (for ``cost``, the tolerance is relative to the group's first GPU dollars saved: net
saving is a difference of two figures). Within a group the order is the secondary key: memory
cost per hour, cheapest first (memory bytes when the config has no prices), then the
objective's next objective (for ``cost``: prefill saved, then mean TTFT), then grid order. Groups keep their order. So a row never ranks above another that is no worse on the
objective and better on the secondary key (tests/test_ranking.py checks it on random tables).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..errors import ConfigError, UnknownNameError

DEFAULT_TIE_TOLERANCE = 0.005


@dataclass(frozen=True)
class Objective:
    name: str
    column: str
    higher: bool        # higher is better
    label: str
    unit: str           # printed after the value ("" for ratios)
    digits: int         # decimals when printed
    # after memory, the secondary key: the "next objective" (and for cost the TTFT after it),
    # as (column, higher is better)
    next_keys: tuple[tuple[str, bool], ...]
    # the column whose size the tie tolerance is relative to (default: the objective's own);
    # net saving is a difference of two figures, so its tolerance is that of the larger one
    scale_column: str | None = None


_MEAN = ("ttft_mean_ms", False)


def _ttft(name, column, label):
    nxt = ("ttft_p99_ms", False) if column == "ttft_mean_ms" else _MEAN
    return Objective(name, column, False, label, " ms", 1, (nxt,))


OBJECTIVES: dict[str, Objective] = {
    # cost: the frontier's other axis next, so the best row is always a frontier point (frontier.py)
    "cost": Objective("cost", "net_usd_per_hour", True, "net saving", " $/h", 2,
                      (("prefill_saved_gpu_s_per_hour", True), _MEAN), "prefill_saved_usd_per_hour"),
    "mean-ttft": _ttft("mean-ttft", "ttft_mean_ms", "mean TTFT"),
    "p99-ttft": _ttft("p99-ttft", "ttft_p99_ms", "p99 TTFT"),
    "p90-ttft": _ttft("p90-ttft", "ttft_p90_ms", "p90 TTFT"),
    "p50-ttft": _ttft("p50-ttft", "ttft_p50_ms", "p50 TTFT"),
    "prefill-saved": Objective("prefill-saved", "prefill_saved_gpu_s_per_hour", True,
                               "prefill GPU time saved", " GPU-s/h", 1, (_MEAN,)),
    "hit-ratio": Objective("hit-ratio", "prefix_hit_ratio", True, "prefix hit ratio", "", 4, (_MEAN,)),
}

LABELS = {o.column: o.label for o in OBJECTIVES.values()} | {
    "ttft_mean_ms": "mean TTFT", "memory_usd_per_hour": "memory cost", "memory_bytes": "memory"}


def secondary_keys(table: pl.DataFrame, obj: Objective) -> list[tuple[str, bool]]:
    """The secondary key as (column, higher is better), in order: memory, then the next objective."""
    return [(memory_key(table), False), *obj.next_keys]


def objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise UnknownNameError(f"unknown objective '{name}'", field="objective",
                               hint="valid objectives: " + ", ".join(OBJECTIVES))
    return OBJECTIVES[name]


def check_tolerance(tolerance: float) -> float:
    if not (tolerance >= 0 and np.isfinite(tolerance)):
        raise ConfigError(f"must be a number >= 0, got {tolerance}", field="tie_tolerance",
                          hint="a relative distance, e.g. 0.005 for 0.5%")
    return float(tolerance)


def within(value: float, leader: float, tolerance: float, scale: float | None = None) -> bool:
    """``value`` ties with ``leader``: within ``tolerance`` of it, relative to the size of
    ``scale`` (default: of ``leader``)."""
    return abs(value - leader) <= tolerance * abs(leader if scale is None else scale)


def tie_groups(values: np.ndarray, tolerance: float, scales: np.ndarray | None = None) -> np.ndarray:
    """Group number of each value of ``values`` (sorted best first): a value joins the current
    group when it ties with the group's first value (``within``, relative to that row's
    ``scales`` entry when given), else opens the next one."""
    groups = np.zeros(values.shape[0], np.int64)
    scales = values if scales is None else scales
    g, lead = 0, 0
    for i, v in enumerate(values):
        if not within(float(v), float(values[lead]), tolerance, float(scales[lead])):
            g += 1
            lead = i
        groups[i] = g
    return groups


def memory_key(table: pl.DataFrame) -> str:
    """The secondary key's memory column: $ per hour when every row is priced, else bytes."""
    col = table.get_column("memory_usd_per_hour") if "memory_usd_per_hour" in table.columns else None
    return "memory_usd_per_hour" if col is not None and col.null_count() == 0 else "memory_bytes"


def rank(table: pl.DataFrame, obj: Objective, tolerance: float) -> pl.DataFrame:
    """``table`` sorted by the ranking above, with ``rank`` (1 = best) and ``tie_group``
    (1 = the best group) columns in front."""
    if table.height == 0:
        return table.with_columns(pl.lit(None, pl.Int64).alias("rank"), pl.lit(None, pl.Int64).alias("tie_group"))
    t = table.with_row_index("_order").sort([obj.column, "_order"], descending=[obj.higher, False])
    scales = t[obj.scale_column].to_numpy() if obj.scale_column else None
    t = t.with_columns(pl.Series("tie_group", tie_groups(t[obj.column].to_numpy(), tolerance, scales) + 1))
    keys = secondary_keys(t, obj)
    t = t.sort(["tie_group", *(k for k, _ in keys), "_order"], descending=[False, *(h for _, h in keys), False])
    return t.with_row_index("rank", offset=1).drop("_order").select(
        "rank", "tie_group", pl.exclude("rank", "tie_group"))


def tie_text(table: pl.DataFrame, obj: Objective, tolerance: float) -> str:
    """The sentence that says whether the best configuration ties, and how the tie is broken."""
    best = table.filter(pl.col("tie_group") == 1)
    value = fmt_value(obj, best_value(table, obj))
    of = (f"; the tolerance is {tolerance:.1%} of the {fmt_value(obj, table[obj.scale_column][0])} of GPU time "
          "it saves" if obj.scale_column else "")
    if best.height > 1:
        return (f"tie: {best.height} configurations within {tolerance:.1%} of the best {obj.label} ({value}{of}), "
                f"broken by {key_text(table, obj)}")
    if table.height > 1:
        return (f"no tie: the next configuration's {obj.label} ({fmt_value(obj, table[obj.column][1])}) is "
                f"more than {tolerance:.1%} from the best ({value}{of})")
    return "one configuration"


def best_value(table: pl.DataFrame, obj: Objective) -> float:
    """The best value of the objective in ``table``."""
    col = table[obj.column]
    return col.max() if obj.higher else col.min()


def key_text(table: pl.DataFrame, obj: Objective) -> str:
    """The secondary key in words: "memory cost (cheapest first), then mean TTFT (lowest first)"."""
    words = []
    for col, higher in secondary_keys(table, obj):
        name = LABELS.get(col, col)
        words.append(f"{name} ({'cheapest' if col.startswith('memory') else ('highest' if higher else 'lowest')} first)")
    return ", then ".join(words)


def fmt_value(obj: Objective, v) -> str:
    if v is None:
        return "-"
    if obj.unit.strip() == "$/h":
        return f"${v:,.{obj.digits}f}/h"
    return f"{v:,.{obj.digits}f}{obj.unit}"
