"""Alibaba Bailian / Qwen usage traces: ``{"chat_id", "parent_chat_id" (-1 = none),
"timestamp": s, "input_length", "output_length", "type", "turn", "hash_ids"}`` with
16-token blocks whose ids are per-block content hashes, NOT chained. They are rechained
(``kernels.hashing.rechain``) so two requests share a block only if they share the whole
prefix up to it. A request's session is its chat chain (the root of ``parent_chat_id`` links)."""
from __future__ import annotations

import numpy as np
import polars as pl

from ..kernels.hashing import rechain
from .common import (Columns, check_block_count, checked_block_columns, csr_offsets, get_count, get_int,
                     get_int_list, get_str, get_timestamp, has_keys, ids_array, timestamps_ok)

NAME = "bailian"
DEFAULT_BLOCK_SIZE = 16
SIGNATURE = "chat_id+hash_ids"
CSV = False  # hash_ids are lists


def matches(keys) -> bool:
    return has_keys(keys, "chat_id", "hash_ids")


def options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False) -> dict:
    return {"block_size": block_size or DEFAULT_BLOCK_SIZE}


def schema(opts: dict) -> dict:
    return {"chat_id": pl.Int64, "parent_chat_id": pl.Int64, "timestamp": pl.Float64,
            "input_length": pl.Int64, "output_length": pl.Int64, "type": pl.String, "turn": pl.Int64,
            "hash_ids": pl.List(pl.Int64)}


def chat_sessions(chat_id: np.ndarray, parent_chat_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parent row (-1 if the parent is absent) and session root chat id of every request,
    vectorised: parents found by binary search, roots by pointer jumping."""
    n = chat_id.shape[0]
    order = np.argsort(chat_id, kind="stable")
    sorted_ids = chat_id[order]
    pos = np.searchsorted(sorted_ids, parent_chat_id)
    pos_c = np.minimum(pos, max(n - 1, 0))
    found = (parent_chat_id >= 0) & (pos < n) & (sorted_ids[pos_c] == parent_chat_id) if n else np.zeros(0, bool)
    parent_row = np.where(found, order[pos_c] if n else 0, -1).astype(np.int64)
    # A chain whose top parent is missing from the trace is still one session, named by that id.
    top_id = np.where(parent_chat_id >= 0, parent_chat_id, chat_id)
    root = np.where(found, parent_row, np.arange(n))
    for _ in range(64):  # depth doubles each step; 64 steps cover any chain (and stop on cycles)
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    return parent_row, np.where(found[root], chat_id[root], top_id[root])


def _columns(chat_id, parent_chat_id, ts, input_len, output_len, typ, turn, raw_ids, offsets, line_no, opts):
    parent_row, session = chat_sessions(chat_id, parent_chat_id)
    return Columns(format=NAME, block_size=opts["block_size"], ts=ts, input_len=input_len,
                   output_len=output_len, line_no=line_no, offsets=offsets, ids=rechain(raw_ids, offsets),
                   session_id=[str(s) for s in session.tolist()], parent_row=parent_row, turn=turn, type=typ,
                   links=(chat_id, parent_chat_id))


def from_frame(df: pl.DataFrame, line_no: np.ndarray, opts: dict) -> Columns | None:
    checked = checked_block_columns(df, schema(opts), opts["block_size"])
    if checked is None:
        return None
    ids, offsets, input_len, output_len = checked
    if not timestamps_ok(df["timestamp"].to_numpy()):
        return None
    return _columns(df["chat_id"].to_numpy(), df["parent_chat_id"].to_numpy(), df["timestamp"].to_numpy(),
                    input_len, output_len, df["type"].to_list(), df["turn"].to_numpy(), ids, offsets,
                    line_no, opts)


def parse_record(rec: dict, opts: dict) -> tuple:
    chat = get_int(rec, "chat_id", nonnegative=False)
    parent = get_int(rec, "parent_chat_id", nonnegative=False)
    ts = get_timestamp(rec, "timestamp")
    input_len = get_count(rec, "input_length")
    output_len = get_count(rec, "output_length")
    typ = get_str(rec, "type")
    turn = get_int(rec, "turn", nonnegative=False)
    ids = get_int_list(rec, "hash_ids")
    check_block_count(len(ids), input_len, opts["block_size"])
    return chat, parent, ts, input_len, output_len, typ, turn, ids


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    cols = list(zip(*rows)) if rows else [()] * 8
    chat, parent, ts, input_len, output_len, typ, turn, ids = cols
    return _columns(np.array(chat, np.int64), np.array(parent, np.int64), np.array(ts, np.float64),
                    np.array(input_len, np.int64), np.array(output_len, np.int64), list(typ),
                    np.array(turn, np.int64), ids_array([x for row in ids for x in row]),
                    csr_offsets([len(x) for x in ids]), line_no, opts)
