"""Mooncake (FAST'25 release): ``{"timestamp": ms, "input_length", "output_length",
"hash_ids": [...]}``; ``hash_ids`` are chained prefix ids of 512-token blocks, the last
partial block included, so ``len(hash_ids) == ceil(input_length / 512)``."""
from __future__ import annotations

import numpy as np
import polars as pl

from .common import Columns, check_block_count, csr_offsets, get_int, get_int_list, get_number, ids_array, list_column

NAME = "mooncake"
DEFAULT_BLOCK_SIZE = 512
MS = 1e-3  # timestamps are milliseconds


def options(first_record: dict, block_size: int | None, partial: str) -> dict:
    return {"block_size": block_size or DEFAULT_BLOCK_SIZE}


def schema(opts: dict) -> dict:
    return {"timestamp": pl.Float64, "input_length": pl.Int64, "output_length": pl.Int64,
            "hash_ids": pl.List(pl.Int64)}


def valid_lengths(input_len, output_len, counts, block_size) -> bool:
    """Vectorised form of the per-record checks (lengths >= 0, one id per block)."""
    return bool((input_len >= 0).all() and (output_len >= 0).all()
                and np.array_equal(counts, (input_len + block_size - 1) // block_size))


def checked_block_columns(df: pl.DataFrame, fields, block_size: int):
    """``(ids, offsets, input_len, output_len)`` of a frame with ``hash_ids`` lists, or None
    when a field is missing or a row's lengths do not fit (the slow path then says which)."""
    if any(df[c].null_count() for c in fields):
        return None
    ids, offsets = list_column(df["hash_ids"])
    input_len = df["input_length"].to_numpy()
    output_len = df["output_length"].to_numpy()
    if not valid_lengths(input_len, output_len, np.diff(offsets), block_size):
        return None
    return ids, offsets, input_len, output_len


def from_frame(df: pl.DataFrame, line_no: np.ndarray, opts: dict) -> Columns | None:
    """Fast path; None when any row needs the slow path's exact diagnosis."""
    checked = checked_block_columns(df, schema(opts), opts["block_size"])
    if checked is None:
        return None
    ids, offsets, input_len, output_len = checked
    return Columns(format=NAME, block_size=opts["block_size"], ts=df["timestamp"].to_numpy() * MS,
                   input_len=input_len, output_len=output_len, line_no=line_no, offsets=offsets, ids=ids)


def parse_record(rec: dict, opts: dict) -> tuple:
    ts = get_number(rec, "timestamp")
    input_len = get_int(rec, "input_length")
    output_len = get_int(rec, "output_length")
    ids = get_int_list(rec, "hash_ids")
    check_block_count(len(ids), input_len, opts["block_size"])
    return ts, input_len, output_len, ids


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    ts, input_len, output_len, ids = zip(*rows) if rows else ((), (), (), ())
    return Columns(format=NAME, block_size=opts["block_size"], ts=np.array(ts, np.float64) * MS,
                   input_len=np.array(input_len, np.int64), output_len=np.array(output_len, np.int64),
                   line_no=line_no, offsets=csr_offsets([len(x) for x in ids]),
                   ids=ids_array([x for row in ids for x in row]))
