"""Parquet's container rules (docs/data-model.md, "Valid values"): a column's type must hold
the field's kind of value, checked once per column before any row is read.

An integer field needs an integer column (a float column is refused even when its values are
whole: ids beyond 2**53 would already have lost digits, and a truncation would merge distinct
blocks); a timestamp an integer or float column (each value then checked for range, NaN and
infinities); a label a string or integer column; an id list a list of integers. Date and
datetime columns are read as ISO text (UTC, nanoseconds), as a CSV's date-time cells are."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from ..errors import TraceFormatError

_ISO = "%Y-%m-%dT%H:%M:%S%.9f"

_NEEDS = {  # wanted kind -> (what the column must be, hint)
    "integer": ("an integer column (int8 .. int64, uint8 .. uint64)",
                "write it as an integer column; a float column is refused even when its values are whole "
                "(pandas: the nullable 'Int64' dtype keeps missing values)"),
    "number": ("an integer or float column", "write it as a float64 or int64 column"),
    "label": ("a string or integer column", "write it as a string column"),
    "integer list": ("a list of integers (list<int64> or list<uint64>)",
                     "write it as a list of integers, not of floats"),
}


def _as_text(df: pl.DataFrame) -> pl.DataFrame:
    """Date and datetime columns as ISO text (tz-aware ones converted to UTC, marked +00:00)."""
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                exprs.append(col.dt.convert_time_zone("UTC").dt.to_string(_ISO) + "+00:00")
            else:
                exprs.append(col.dt.to_string(_ISO))
        elif dtype == pl.Date:
            exprs.append(col.dt.to_string("%Y-%m-%d"))
        else:
            continue
        exprs[-1] = exprs[-1].alias(name)
    return df.with_columns(exprs) if exprs else df


def parquet_frame(path: Path) -> tuple[pl.DataFrame, dict]:
    """The table (date/datetime columns as text) and the column types as written."""
    try:
        df = pl.read_parquet(path)
    except Exception as err:  # corrupt footer, truncated file, duplicate columns, ...  # noqa: BLE001
        raise TraceFormatError(f"cannot read Parquet ({str(err).splitlines()[0]})", path=str(path),
                               hint="the file may be truncated or not Parquet") from None
    if df.height == 0:
        raise TraceFormatError("empty trace: the Parquet file has no rows", path=str(path), line=1,
                               hint="the file holds no requests")
    return _as_text(df), dict(df.schema)


def _wanted(dtype) -> str:
    if dtype == pl.Int64:
        return "integer"
    if dtype == pl.Float64:
        return "number"
    if dtype == pl.String:
        return "label"
    return "integer list"


def _fits(dtype, wanted: str) -> bool:
    if dtype == pl.Null:
        return True  # every cell null: each row is then "field is null"
    if wanted == "integer":
        return dtype.is_integer()
    if wanted == "number":
        return dtype.is_integer() or dtype.is_float()
    if wanted == "label":
        return dtype.is_integer() or dtype in (pl.String, pl.Categorical, pl.Enum)
    return isinstance(dtype, (pl.List, pl.Array)) and (dtype.inner.is_integer() or dtype.inner == pl.Null)


def check_parquet_types(df: pl.DataFrame, written: dict, schema: dict, path: Path) -> None:
    """Raise naming the first column of ``schema`` (the reader's) whose type cannot hold it."""
    for name, dtype in schema.items():
        if name not in df.columns or dtype == pl.Null:
            continue  # each row: "missing field" (or a field that must be absent: it is)
        wanted = _wanted(dtype)
        if not _fits(df.schema[name], wanted):
            need, hint = _NEEDS[wanted]
            raise TraceFormatError(f"the Parquet column holds {written[name]} values; kvctrace needs {need}",
                                   path=str(path), field=name, hint=hint)
