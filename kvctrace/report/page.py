"""The report page as plain data: ``Section`` (facts, figures as ``Figure``, tables as ``Table``, notes) and the
helpers that make them (``frame_table``, ``figures``, ``spec_json``). The section builders
(``build.py``, ``divergence_section.py``) fill these; ``build.render_html`` renders them."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import polars as pl

from ..formatting import format_value as fmt


@dataclass
class Figure:
    id: str
    title: str
    caption: str
    spec: dict = field(repr=False)

    @property
    def empty(self) -> bool:
        """True when the chart's main data (every layer with tooltips) has no rows: the page
        then says so instead of drawing empty axes."""
        spec = self.spec
        datasets = spec.get("datasets", {})

        def rows(view):
            data = view.get("data") or spec.get("data") or {}
            if data.get("name") in datasets:
                return len(datasets[data["name"]])
            return len(data["values"]) if "values" in data else None
        views = [v for v in spec["layer"] if "tooltip" in v.get("encoding", {})] if "layer" in spec else [spec]
        counts = [c for c in (rows(v) for v in views) if c is not None]
        return bool(counts) and all(c == 0 for c in counts)

    @property
    def wide(self) -> bool:
        """Faceted charts (one panel per tier) get the full page width."""
        return "facet" in self.spec

    @property
    def spec_json(self):
        """The spec for a ``<script type="application/json">`` element (already escaped)."""
        from markupsafe import Markup
        return Markup(spec_json(self.spec))


@dataclass
class Table:
    title: str
    caption: str
    columns: list
    rows: list           # list of lists of display strings
    numeric: list = field(default_factory=list)   # per column: right-align?


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    facts: list = field(default_factory=list)      # (label, value, hint)
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    lists: list = field(default_factory=list)      # {"title": str, "items": [str]}
    unavailable: str | None = None


def frame_table(frame: pl.DataFrame, title: str, caption: str, columns: dict | None = None,
                max_rows: int = 50) -> Table:
    """A ``Table`` of at most ``max_rows`` rows; ``columns`` maps frame column -> header."""
    columns = columns or {c: c for c in frame.columns}
    cols = [c for c in columns if c in frame.columns]
    sub = frame.select(cols).head(max_rows)
    numeric = [sub.schema[c].is_numeric() for c in cols]
    rows = [[fmt(v, missing="") for v in row] for row in sub.iter_rows()]
    if frame.height > max_rows:
        caption += f" Top {max_rows:,} of {frame.height:,} rows."
    return Table(title=title, caption=caption, columns=[columns[c] for c in cols], rows=rows, numeric=numeric)


def _figure(section_id: str, n: int, chart) -> Figure:
    spec = chart.to_dict(validate=False)   # charts are validated in the tests; skip it here (speed)
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text", "")
    return Figure(id=f"{section_id}-{n}", title=str(title or ""), caption=spec.get("description", ""), spec=spec)


def figures(section_id: str, chart_list) -> list:
    return [_figure(section_id, i, c) for i, c in enumerate(chart_list) if c is not None]


def _finite(value):
    """NaN/inf floats become null (JSON.parse refuses NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def spec_json(spec: dict) -> str:
    """Compact JSON for a ``<script type="application/json">`` element: ``<``, ``>`` and ``&``
    are written as \\u escapes, so no trace text can close the element or open a tag."""
    try:
        text = json.dumps(spec, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except ValueError:
        text = json.dumps(_finite(spec), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
