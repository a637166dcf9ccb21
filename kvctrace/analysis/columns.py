"""Per-request columns for the analyses' frames, wrapping numpy arrays without copying them.

polars wraps a numpy array as it is; a column with nulls would normally be a copy with a
validity mask (``fill_nan(None)``, ``when/then``): at a million requests, 8 MB per column and
the moment both exist. Here the values stay where they are and only the validity bitmap
(one bit per request) is new."""
from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


def with_nulls(values: np.ndarray, valid: np.ndarray | None) -> pl.Series:
    """``values`` (int64 or float64) as a column that is null where ``valid`` is False (all
    null when ``valid`` is None)."""
    values = np.ascontiguousarray(values)
    n = values.shape[0]
    bitmap = np.packbits(valid, bitorder="little") if valid is not None else np.zeros((n + 7) // 8, np.uint8)
    kind = pa.from_numpy_dtype(values.dtype)
    return pl.from_arrow(pa.Array.from_buffers(kind, n, [pa.py_buffer(bitmap), pa.py_buffer(values)]))


def null_below_zero(values: np.ndarray | None, n: int) -> pl.Series:
    """An Int64 column of ``values`` with nulls where they are negative; all null when
    ``values`` is None (over numpy's zeros: pages that are never touched)."""
    if values is None:
        return with_nulls(np.zeros(n, np.int64), None)
    values = np.ascontiguousarray(values, np.int64)
    return with_nulls(values, values >= 0)


def null_nan(values: np.ndarray) -> pl.Series:
    """A Float64 column of ``values`` with nulls where they are NaN."""
    values = np.ascontiguousarray(values, np.float64)
    return with_nulls(values, ~np.isnan(values))
