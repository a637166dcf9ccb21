"""BurstGPT CSV (github.com/HPMLL/BurstGPT): ``Timestamp,Model,Request tokens,Response tokens,
Total tokens,Log Type`` (release 1 and 2; timestamps in seconds), and the later release with
``Session ID`` and ``Elapsed time`` columns. Lengths only (no block ids): read as the ``lengths``
format (timestamp, request tokens as the input length, response tokens as the output length),
keeping ``Model`` as the ``model`` request column, ``Log Type`` (e.g. ``Conversation log``,
``API log``) as the request ``type`` and ``Session ID`` as the ``session_id``. Failed requests
(zero response tokens) are kept as they are."""
from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from . import lengths
from .common import Columns

NAME = "burstgpt"
DEFAULT_BLOCK_SIZE = lengths.DEFAULT_BLOCK_SIZE
SIGNATURE = "Timestamp, Request tokens, Response tokens and Model or Log Type"
CSV = True
_LABELS = {"model": "model", "type": "log type", "session": "session id"}


def _key(keys, name: str):
    return next((k for k in keys if str(k).strip().lower() == name), None)


def matches(keys) -> bool:
    keys = list(keys)
    return all(_key(keys, n) for n in ("timestamp", "request tokens", "response tokens")) and (
        _key(keys, "log type") is not None or _key(keys, "model") is not None)


def options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False) -> dict:
    opts = lengths.options(first_record, block_size, partial, **({"text_cells": True} if text_cells else {}))
    return {**opts, **{label: _key(first_record, name) for label, name in _LABELS.items()}}


def schema(opts: dict) -> dict:
    return {**lengths.schema(opts), **{opts[label]: pl.String for label in _LABELS if opts[label]}}


def _labels(values):
    return [None if v is None or not str(v).strip() else str(v).strip() for v in values]


def _with_labels(cols: Columns, model, typ, session) -> Columns:
    cols.format = NAME
    cols.type = _labels(typ) if typ is not None else None
    cols.session_id = _labels(session) if session is not None else None
    if model is not None:
        cols.extra = {"model": pa.array(_labels(model), pa.string())}
    return cols


def from_frame(df: pl.DataFrame, line_no: np.ndarray, opts: dict) -> Columns | None:
    cols = lengths.from_frame(df, line_no, opts)
    if cols is None:
        return None
    model, typ, session = (df[opts[label]].to_list() if opts[label] else None for label in _LABELS)
    return _with_labels(cols, model, typ, session)


def parse_record(rec: dict, opts: dict) -> tuple:
    return lengths.parse_record(rec, opts) + tuple(rec.get(opts[label]) if opts[label] else None for label in _LABELS)


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    cols = lengths.from_rows([r[:3] for r in rows], line_no, opts)
    model, typ, session = ([r[3 + i] for r in rows] if opts[label] else None for i, label in enumerate(_LABELS))
    return _with_labels(cols, model, typ, session)
