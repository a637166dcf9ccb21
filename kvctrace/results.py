"""The result protocol every analysis and replay result follows, and its two renderings.

A result has ``summary() -> dict`` (its figures, JSON-able), ``to_json() -> str`` (that
summary as strict JSON: numpy scalars as Python numbers, NaN and inf as ``null``) and
``_repr_html_() -> str`` (Jupyter: an escaped HTML table of the summary, nested sections and
lists of records, such as a replay's tiers, folded under ``<details>``). Result dataclasses define ``summary()`` and inherit the other two from
``ResultMixin``. This is the base layer: no Altair, no Jinja, nothing from ``kvctrace.report``.
"""
from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .formatting import format_value


@runtime_checkable
class Result(Protocol):
    """What the CLI, the notebooks and the report rely on in a result object."""

    def summary(self) -> dict: ...

    def to_json(self) -> str: ...

    def _repr_html_(self) -> str: ...


class ResultMixin:
    """``to_json`` and ``_repr_html_`` for a class that defines ``summary() -> dict``."""

    def to_json(self) -> str:
        return json.dumps(jsonable(self.summary()), indent=2, allow_nan=False)

    def _repr_html_(self) -> str:
        return dict_html(type(self).__name__, self.summary())


def jsonable(value):
    """numpy scalars to Python, NaN/inf to None, tuples to lists, paths to strings (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"summary value of type {type(value).__name__} is not JSON-able: {value!r}")


_STYLE = ("<style>.kvct-repr table{border-collapse:collapse;font-size:12px}"
          ".kvct-repr td,.kvct-repr th{padding:1px 8px;text-align:left;border-bottom:1px solid #e3e3e3}"
          ".kvct-repr td.v{text-align:right;font-variant-numeric:tabular-nums}"
          ".kvct-repr summary{cursor:pointer;font-weight:600}</style>")


def _rows(mapping: dict) -> str:
    return "".join(f"<tr><td>{escape(str(key))}</td><td class='v'>{escape(format_value(value))}</td></tr>"
                   for key, value in mapping.items() if not isinstance(value, dict) and not _is_records(value))


def _is_records(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, dict) for v in value)


def _flat(record: dict, prefix: str = "") -> dict:
    """A record's scalars, nested dicts' keys joined with dots (``misses.cold``)."""
    out = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _records_table(records) -> str:
    """A list of records as one column per record (headed by its name when it has one) and one
    row per field, the way the console prints tiers."""
    flat = [_flat(r) for r in records]
    head = next((k for k in ("name", "design", "config") if all(k in r for r in flat)), None)
    fields = list(dict.fromkeys(k for r in flat for k in r if k != head))
    header = "".join(f"<th>{escape(str(r[head]) if head else str(i))}</th>" for i, r in enumerate(flat))
    rows = "".join(f"<tr><td>{escape(field)}</td>"
                   + "".join(f"<td class='v'>{escape(format_value(r.get(field)))}</td>" for r in flat) + "</tr>"
                   for field in fields)
    return f"<table><tr><th></th>{header}</tr>{rows}</table>"


def dict_html(title: str, mapping: dict, open_sections: bool = False) -> str:
    """An escaped HTML rendering of a (nested) summary dict: its scalars as a table, each
    nested dict folded under ``<details>`` (deeper levels as titled tables inside it), and each
    list of records (dicts) folded under ``<details>`` as a table of one column per record."""
    opened = " open" if open_sections else ""
    parts = [_STYLE, "<div class='kvct-repr'>", f"<strong>{escape(title)}</strong>",
             f"<table>{_rows(mapping)}</table>"]
    for key, value in mapping.items():
        if isinstance(value, dict):
            nested = "".join(dict_html(f"{key}.{k}", v)[len(_STYLE):] for k, v in value.items()
                             if isinstance(v, dict))
            parts.append(f"<details{opened}><summary>{escape(str(key))}</summary>"
                         f"<table>{_rows(value)}</table>{nested}</details>")
        elif _is_records(value):
            parts.append(f"<details{opened}><summary>{escape(str(key))}</summary>{_records_table(value)}</details>")
    parts.append("</div>")
    return "".join(parts)
