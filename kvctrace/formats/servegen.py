"""Alibaba ServeGen offline traces: one JSON object per request,
``{"request_id", "type", "input_length", "output_length"?, "hash_ids": [...], ...}`` with
16-token blocks (the last partial one included: ``len(hash_ids) == ceil(input_length / 16)``)
and no timestamps. Requests keep their record order, all at t = 0 (time-based statistics such
as arrival rates do not apply). Like Bailian's, the ids are rechained
(``kernels.hashing.rechain``): two requests share a block only if they share the whole prefix up
to it; for ids that are already chained this changes nothing but the numbers. ``request_id`` is
kept as a request column."""
from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from ..kernels.hashing import rechain
from .common import (Columns, check_block_count, csr_offsets, get_int, get_int_list, get_str, ids_array,
                     list_column)

NAME = "servegen"
DEFAULT_BLOCK_SIZE = 16
SIGNATURE = "request_id+input_length+hash_ids without timestamp"
CSV = False  # hash_ids are lists


def matches(keys) -> bool:
    keys = set(keys)
    return {"request_id", "input_length", "hash_ids"} <= keys and "timestamp" not in keys


def options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False) -> dict:
    return {"block_size": block_size or DEFAULT_BLOCK_SIZE}


def schema(opts: dict) -> dict:
    return {"request_id": pl.String, "type": pl.String, "input_length": pl.Int64, "output_length": pl.Int64,
            "hash_ids": pl.List(pl.Int64)}


def _columns(request_id, typ, input_len, output_len, ids, offsets, line_no, opts) -> Columns:
    return Columns(format=NAME, block_size=opts["block_size"], ts=np.zeros(input_len.shape[0]),
                   input_len=input_len, output_len=output_len, line_no=line_no, offsets=offsets,
                   ids=rechain(ids, offsets), type=typ, extra={"request_id": pa.array(request_id, pa.string())})


def from_frame(df: pl.DataFrame, line_no: np.ndarray, opts: dict) -> Columns | None:
    if any(df[c].null_count() for c in ("request_id", "input_length", "hash_ids")):
        return None
    ids, offsets = list_column(df["hash_ids"])
    input_len = df["input_length"].to_numpy()
    output_len = df["output_length"].fill_null(0).to_numpy()
    bs = opts["block_size"]
    if (input_len < 0).any() or (output_len < 0).any() or not np.array_equal(np.diff(offsets), -(-input_len // bs)):
        return None
    return _columns(df["request_id"].to_list(), df["type"].to_list(), input_len, output_len, ids, offsets,
                    line_no, opts)


def parse_record(rec: dict, opts: dict) -> tuple:
    request_id = get_str(rec, "request_id")
    typ = get_str(rec, "type", optional=True)
    input_len = get_int(rec, "input_length")
    output_len = get_int(rec, "output_length", optional=True)
    ids = get_int_list(rec, "hash_ids")
    check_block_count(len(ids), input_len, opts["block_size"])
    return request_id, typ, input_len, output_len, ids


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    request_id, typ, input_len, output_len, ids = zip(*rows) if rows else ((), (), (), (), ())
    return _columns(list(request_id), list(typ), np.array(input_len, np.int64), np.array(output_len, np.int64),
                    ids_array([x for row in ids for x in row]), csr_offsets([len(x) for x in ids]), line_no, opts)
