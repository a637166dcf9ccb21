"""Token traces: ``{"timestamp": s, "token_ids": [...], "output_length"?, "session_id"?}``.
kvctrace hashes the blocks itself (``kernels.hashing.hash_token_blocks``) at ``--block-size``
(default 16), keeping or dropping the last partial block (``--partial-block``). A request's
``input_len`` is the number of its tokens."""
from __future__ import annotations

import numpy as np
import polars as pl

from ..kernels.hashing import hash_token_blocks
from .common import (Columns, counts_ok, csr_offsets, get_count, get_str, get_timestamp, get_token_ids, has_keys,
                     ids_array, list_column, timestamps_ok, tokens_column)

NAME = "tokens"
DEFAULT_BLOCK_SIZE = 16
SIGNATURE = "token_ids"
CSV = False  # token_ids are lists


def matches(keys) -> bool:
    return has_keys(keys, "token_ids")


def options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False) -> dict:
    return {"block_size": block_size or DEFAULT_BLOCK_SIZE, "partial": partial}


def schema(opts: dict) -> dict:
    return {"timestamp": pl.Float64, "token_ids": pl.List(pl.Int64), "output_length": pl.Int64,
            "session_id": pl.String}  # integer or string ids, kept as text


def _columns(ts, tokens, offsets, output_len, session, line_no, opts) -> Columns:
    if tokens.dtype == np.uint64:
        tokens = tokens.view(np.int64)  # the hash mixes the 64-bit pattern; sign does not matter
    ids, id_offsets = hash_token_blocks(tokens, offsets, opts["block_size"], opts["partial"])
    return Columns(format=NAME, block_size=opts["block_size"], ts=ts, input_len=np.diff(offsets),
                   output_len=output_len, line_no=line_no, offsets=id_offsets, ids=ids,
                   session_id=session, partial_dropped=opts["partial"] == "drop",
                   extra=tokens_column(tokens, offsets))


def from_frame(df: pl.DataFrame, line_no: np.ndarray, opts: dict) -> Columns | None:
    if df["timestamp"].null_count() or df["token_ids"].null_count():
        return None
    output_len = df["output_length"].fill_null(0).to_numpy()
    tokens, offsets = list_column(df["token_ids"])
    if not (counts_ok(output_len, np.diff(offsets)) and timestamps_ok(df["timestamp"].to_numpy())):
        return None
    session = df["session_id"].cast(pl.String).to_list() if df["session_id"].null_count() < df.height else None
    return _columns(df["timestamp"].to_numpy(), tokens, offsets, output_len, session, line_no, opts)


def parse_record(rec: dict, opts: dict) -> tuple:
    ts = get_timestamp(rec, "timestamp")
    tokens = get_token_ids(rec, "token_ids")
    output_len = get_count(rec, "output_length", optional=True)
    session = get_str(rec, "session_id", optional=True)
    return ts, tokens, output_len, session


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    ts, tokens, output_len, session = zip(*rows) if rows else ((), (), (), ())
    session = list(session) if any(s is not None for s in session) else None
    return _columns(np.array(ts, np.float64), ids_array([x for row in tokens for x in row]),
                    csr_offsets([len(x) for x in tokens]), np.array(output_len, np.int64), session,
                    line_no, opts)
