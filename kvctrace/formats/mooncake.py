"""Mooncake (FAST'25 release): ``{"timestamp": ms, "input_length", "output_length",
"hash_ids": [...]}``; ``hash_ids`` are chained prefix ids of 512-token blocks, the last
partial block included, so ``len(hash_ids) == ceil(input_length / 512)``."""
from __future__ import annotations

import numpy as np
import polars as pl

from .common import (Columns, check_block_count, checked_block_columns, csr_offsets, get_count, get_int_list,
                     get_timestamp, has_keys, ids_array, timestamps_ok)

NAME = "mooncake"
DEFAULT_BLOCK_SIZE = 512
SIGNATURE = "hash_ids"
CSV = False  # hash_ids are lists
MS = 1e-3  # timestamps are milliseconds


def matches(keys) -> bool:
    return has_keys(keys, "hash_ids")


def options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False) -> dict:
    return {"block_size": block_size or DEFAULT_BLOCK_SIZE}


def schema(opts: dict) -> dict:
    return {"timestamp": pl.Float64, "input_length": pl.Int64, "output_length": pl.Int64,
            "hash_ids": pl.List(pl.Int64)}


def from_frame(df: pl.DataFrame, line_no: np.ndarray, opts: dict) -> Columns | None:
    """Fast path; None when any row needs the slow path's exact diagnosis."""
    checked = checked_block_columns(df, schema(opts), opts["block_size"])
    if checked is None:
        return None
    ids, offsets, input_len, output_len = checked
    ts = df["timestamp"].to_numpy()
    if not timestamps_ok(ts, MS):
        return None
    return Columns(format=NAME, block_size=opts["block_size"], ts=ts * MS,
                   input_len=input_len, output_len=output_len, line_no=line_no, offsets=offsets, ids=ids)


def parse_record(rec: dict, opts: dict) -> tuple:
    ts = get_timestamp(rec, "timestamp", MS)
    input_len = get_count(rec, "input_length")
    output_len = get_count(rec, "output_length")
    ids = get_int_list(rec, "hash_ids")
    check_block_count(len(ids), input_len, opts["block_size"])
    return ts, input_len, output_len, ids


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    ts, input_len, output_len, ids = zip(*rows) if rows else ((), (), (), ())
    return Columns(format=NAME, block_size=opts["block_size"], ts=np.array(ts, np.float64) * MS,
                   input_len=np.array(input_len, np.int64), output_len=np.array(output_len, np.int64),
                   line_no=line_no, offsets=csr_offsets([len(x) for x in ids]),
                   ids=ids_array([x for row in ids for x in row]))
