"""DuckDB store: schema, ingest, open. (Placeholder until the foundation helper fills it in:
``trace_from_arrays`` below is the minimal working version the other parts build on.)"""
from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from .kernels.hashing import dense_ids


def trace_from_arrays(offsets, blocks, *, ts=None, input_len=None, output_len=None,
                      block_size=16, path="<arrays>", format="arrays", session_id=None, type=None):
    from .trace import Trace
    offsets = np.asarray(offsets, dtype=np.int64)
    raw = np.asarray(blocks)
    dense, n_unique = dense_ids(raw) if raw.shape[0] else (np.empty(0, np.int64), 0)
    n_req = offsets.shape[0] - 1
    n_blocks = np.diff(offsets)
    ts = np.zeros(n_req) if ts is None else np.asarray(ts, dtype=np.float64)
    if ts.shape[0]:
        ts = ts - ts[0]
    input_len = n_blocks * block_size if input_len is None else np.asarray(input_len, np.int64)
    output_len = np.zeros(n_req, np.int64) if output_len is None else np.asarray(output_len, np.int64)
    con = duckdb.connect()
    req = pa.table({
        "req_id": np.arange(n_req, dtype=np.int64), "ts": ts, "input_len": input_len,
        "output_len": output_len, "n_blocks": n_blocks,
        "session_id": pa.array(session_id if session_id is not None else [None] * n_req, pa.string()),
        "parent_id": pa.nulls(n_req, pa.int64()), "turn": pa.nulls(n_req, pa.int64()),
        "type": pa.array(type if type is not None else [None] * n_req, pa.string()),
        "line_no": np.arange(1, n_req + 1, dtype=np.int64)})
    acc = pa.table({"req_id": np.repeat(np.arange(n_req, dtype=np.int64), n_blocks),
                    "pos": np.arange(dense.shape[0], dtype=np.int64) - np.repeat(offsets[:-1], n_blocks),
                    "block": dense})
    con.register("req_arrow", req)
    con.register("acc_arrow", acc)
    con.execute("CREATE TABLE requests AS SELECT * FROM req_arrow")
    con.execute("CREATE TABLE accesses AS SELECT * FROM acc_arrow")
    con.execute("CREATE TABLE meta(key VARCHAR, value VARCHAR)")
    con.execute("CREATE TABLE rejects(line_no BIGINT, raw VARCHAR, reason VARCHAR)")
    con.execute("CREATE TABLE blocks(block BIGINT, raw_hash UBIGINT, first_req BIGINT, parent_block BIGINT, depth INTEGER, tokens INTEGER)")
    con.unregister("req_arrow")
    con.unregister("acc_arrow")
    return Trace(path=path, format=format, block_size=block_size, con=con, offsets=offsets,
                 blocks=dense, ts=ts, input_len=input_len, output_len=output_len,
                 n_unique_blocks=n_unique, has_block_ids=True)
