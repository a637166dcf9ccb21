"""Scales, axes and overlapping lines for the report charts.

* Axes end at the data: ``linear_scale``/``log_scale`` turn Vega's "nice" rounding off (a
  3,537 s trace is not drawn to 4,000 s, 182,790 blocks not to 1,000,000).
* Log axes are labelled at powers of ten only (``log_axis``; Vega would also label 2, 3, 20,
  30, ... and crowd them), symlog axes at 0, 1, 10, 100, ... (``pow10_axis``), with k/M/G.
* Lines that coincide hide one another: ``coinciding`` finds the series whose points lie
  within a pixel of each other everywhere, ``merge_coinciding`` draws each such group once,
  named together ("block = prefix (identical)", "chime ≈ sherman"), and says so in a sentence
  for the caption.
"""
from __future__ import annotations

import math

import altair as alt
import numpy as np
import polars as pl

# Vega expression: a tick value with k / M / G for thousands, millions, billions.
SHORT_NUMBER = ("datum.value >= 1e9 ? format(datum.value / 1e9, '~g') + 'G' : "
                "datum.value >= 1e6 ? format(datum.value / 1e6, '~g') + 'M' : "
                "datum.value >= 1e3 ? format(datum.value / 1e3, '~g') + 'k' : format(datum.value, '~g')")
# ... and only at powers of ten (the other ticks of a log axis keep their grid line, no label).
POWERS_OF_TEN_ONLY = ("abs(log(datum.value) / LN10 - round(log(datum.value) / LN10)) > 1e-6 ? '' : "
                      + SHORT_NUMBER)
LABEL_GAP = 4        # px: labels closer than this are thinned out by Vega
PIXEL = 1.0          # lines closer than this everywhere are drawn as one


def extent(values) -> list:
    """[min, max] of the finite values (``[0, 1]`` when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return [float(v.min()), float(v.max())] if v.shape[0] else [0.0, 1.0]


def linear_scale(zero: bool = True, **options) -> alt.Scale:
    """A linear scale that ends at the data (and starts at 0 unless ``zero=False``)."""
    return alt.Scale(nice=False, zero=zero, **options)


def log_scale(values=None, **options) -> alt.Scale:
    """A log scale over exactly the positive data (``values``), not rounded to powers of ten."""
    if values is not None:
        v = np.asarray(values, dtype=np.float64)
        options["domain"] = extent(v[v > 0])
    return alt.Scale(type="log", nice=False, **options)


def spans_powers_of_ten(values) -> bool:
    """Whether the positive ``values`` reach from one power of ten to another (1 to 10 or more)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.shape[0]:
        return False
    return math.floor(math.log10(v.max()) + 1e-9) - math.ceil(math.log10(v.min()) - 1e-9) >= 1


def log_axis(title: str, values=None, powers_of_ten: bool | None = None) -> alt.Axis:
    """A log axis labelled at powers of ten only (k/M/G) when the data (``values``, or the
    caller's ``powers_of_ten``) spans two of them; otherwise Vega's labels, thinned so that
    none touch."""
    if powers_of_ten is None:
        powers_of_ten = values is not None and spans_powers_of_ten(values)
    if powers_of_ten:
        return alt.Axis(title=title, labelExpr=POWERS_OF_TEN_ONLY, labelOverlap=True, labelSeparation=LABEL_GAP)
    return alt.Axis(title=title, labelOverlap="greedy", labelSeparation=LABEL_GAP, tickCount=4)


def pow10_axis(max_value: float, title: str) -> alt.Axis:
    """An axis with ticks at 0, 1, 10, 100, ... (symlog scales otherwise label sparsely)."""
    top = max(float(max_value), 1.0)
    values = [0] + [10 ** k for k in range(0, int(math.floor(math.log10(top))) + 1)]
    return alt.Axis(title=title, values=values, labelOverlap=True, labelSeparation=LABEL_GAP,
                    labelExpr=SHORT_NUMBER)


def symlog(values) -> np.ndarray:
    """Vega's symlog transform (constant 1): where a value sits on a symlog axis."""
    v = np.asarray(values, dtype=np.float64)
    return np.sign(v) * np.log1p(np.abs(v))


def coinciding(series: dict, pixels) -> list:
    """Groups of series names (in order) whose points are within a pixel of each other at every
    point. ``series``: name -> array of values at the same points; ``pixels(array)`` maps
    values to screen positions."""
    groups: list = []
    for name, values in series.items():
        px = pixels(np.asarray(values, dtype=np.float64))
        for group in groups:
            ref = pixels(np.asarray(series[group[0]], dtype=np.float64))
            if ref.shape == px.shape and bool(np.all(np.abs(ref - px) <= PIXEL)):
                group.append(name)
                break
        else:
            groups.append([name])
    return groups


def _names(names: list) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _max_relative_difference(arrays: list) -> float:
    ref = arrays[0]
    worst = 0.0
    for other in arrays[1:]:
        scale = np.maximum(np.maximum(np.abs(ref), np.abs(other)), 1e-12)
        worst = max(worst, float(np.max(np.abs(ref - other) / scale)) if ref.shape[0] else 0.0)
    return worst


def merge_coinciding(frame: pl.DataFrame, key: str, series: dict, groups: list) -> tuple:
    """``frame`` with each group of coinciding series (``coinciding``) kept once, its ``key``
    renamed to the group's label, and a caption sentence naming the groups ("" if none)."""
    rename, sentences = {}, []
    for group in groups:
        if len(group) < 2:
            continue
        arrays = [np.asarray(series[n], dtype=np.float64) for n in group]
        exact = all(np.array_equal(arrays[0], a) for a in arrays[1:])
        rename[group[0]] = " = ".join(group) + " (identical)" if exact else " ≈ ".join(group)
        detail = "identical values" if exact else f"values within {_max_relative_difference(arrays):.2%} of each other"
        sentences.append(f"The lines of {_names(group)} coincide on this chart ({detail}) and are drawn as one.")
    if not rename:
        return frame, ""
    dropped = {n for g in groups for n in g[1:]}
    merged = frame.filter(~pl.col(key).is_in(list(dropped))).with_columns(
        pl.col(key).replace(rename).alias(key))
    return merged, " " + " ".join(sentences)
