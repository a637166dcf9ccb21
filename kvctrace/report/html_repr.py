"""Jupyter renderings (``_repr_html_``) of traces and analysis results: small escaped HTML
tables of their summaries. No Altair or Jinja here, so result classes can use it cheaply.

Result classes inherit ``SummaryHtmlMixin``: any object with ``summary() -> dict`` renders as
a table of its figures (nested sections folded under ``<details>``)."""
from __future__ import annotations

import math
from html import escape
from pathlib import Path

_STYLE = ("<style>.kvct-repr table{border-collapse:collapse;font-size:12px}"
          ".kvct-repr td,.kvct-repr th{padding:1px 8px;text-align:left;border-bottom:1px solid #e3e3e3}"
          ".kvct-repr td.v{text-align:right;font-variant-numeric:tabular-nums}"
          ".kvct-repr summary{cursor:pointer;font-weight:600}</style>")


def format_value(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.4f}".rstrip("0").rstrip(".") or "0"
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} items]"
    return str(value)


def _rows(mapping: dict) -> str:
    rows = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            continue
        rows.append(f"<tr><td>{escape(str(key))}</td><td class='v'>{escape(format_value(value))}</td></tr>")
    return "".join(rows)


def dict_html(title: str, mapping: dict, open_sections: bool = False) -> str:
    """An escaped HTML rendering of a (nested) summary dict."""
    parts = [_STYLE, "<div class='kvct-repr'>", f"<strong>{escape(title)}</strong>",
             f"<table>{_rows(mapping)}</table>"]
    for key, value in mapping.items():
        if isinstance(value, dict):
            inner = _rows(value)
            nested = "".join(dict_html(f"{key}.{k}", v)[len(_STYLE):] for k, v in value.items() if isinstance(v, dict))
            parts.append(f"<details{' open' if open_sections else ''}><summary>{escape(str(key))}</summary>"
                         f"<table>{inner}</table>{nested}</details>")
    parts.append("</div>")
    return "".join(parts)


def trace_html(trace) -> str:
    """The facts a user wants on opening a trace in a notebook."""
    facts = {
        "path": str(trace.path),
        "format": trace.format,
        "block size (tokens)": int(trace.block_size),
        "requests": trace.n_requests,
        "block accesses": trace.n_accesses if trace.has_block_ids else "n/a (no block ids)",
        "unique blocks": int(trace.n_unique_blocks) if trace.has_block_ids else "n/a (no block ids)",
        "duration (s)": float(trace.duration_s),
        "rejected lines": int(trace.rejected_lines),
    }
    if not getattr(trace, "sorted_input", True):
        facts["note"] = "input was not in timestamp order; requests were sorted"
    return dict_html(f"Trace {Path(str(trace.path)).name}", facts)


class SummaryHtmlMixin:
    """``_repr_html_`` for result objects that have ``summary() -> dict``."""

    def _repr_html_(self) -> str:
        return dict_html(type(self).__name__, self.summary())
