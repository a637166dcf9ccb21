"""Reading a store's accesses table: whole, as the trace's dense block ids in CSR order
(``read_block_ids``, what opening a ``.duckdb`` does), or as chunks of whole requests
(``iter_access_chunks``, for an analysis over a trace whose accesses do not fit in memory).
Both read the table in its own (insertion) order, which an ingest writes in CSR order, check
that order as they go, and fall back to a sorted read for a table written otherwise."""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import duckdb
import numpy as np

from .errors import KvctraceError
from .kernels.arrays import id_type
from .sql import load_query


# ---- reading the accesses in chunks (traces bigger than memory) -------------------------------

class AccessChunk(NamedTuple):
    """Requests ``first_request`` .. ``first_request + len(offsets) - 2`` of a stored trace:
    their CSR ``offsets`` (int64, from 0) into ``blocks`` (int64 dense ids)."""
    first_request: int
    offsets: np.ndarray
    blocks: np.ndarray


def iter_access_chunks(con: duckdb.DuckDBPyConnection, accesses: int = 1 << 22) -> Iterator[AccessChunk]:
    """The accesses table as chunks of whole requests of about ``accesses`` block accesses, in
    arrival order, so that an analysis whose state is per block (counts, last-seen times,
    ...) can run over a trace whose accesses do not fit in memory: the table is streamed, never
    held whole. Rows are read in the table's own order (an ingest writes them in request and
    position order; checked on every chunk), else through a sort."""
    n_blocks = con.sql("SELECT n_blocks FROM requests ORDER BY req_id").to_arrow_table().column(0).to_numpy()
    offsets = np.zeros(n_blocks.shape[0] + 1, np.int64)
    np.cumsum(n_blocks, out=offsets[1:])
    chunks = _access_batches(con, offsets, accesses, ordered=False)
    try:
        yield from chunks
    except _OutOfOrder:
        yield from _access_batches(con, offsets, accesses, ordered=True)


class _OutOfOrder(Exception):
    """The accesses table is not stored in request and position order (raised before a chunk
    is handed out)."""


def _access_batches(con, offsets: np.ndarray, accesses: int, ordered: bool) -> Iterator[AccessChunk]:
    query = load_query("store_load_accesses" if ordered else "store_scan_accesses")
    n_req = offsets.shape[0] - 1
    pending, filled, first = [], 0, 0
    for batch in con.sql(query).to_arrow_reader(1 << 20):
        blocks = batch.column("block").to_numpy().astype(np.int64, copy=False)
        if not ordered:
            req, pos = batch.column("req_id").to_numpy(), batch.column("pos").to_numpy()
            at = np.arange(filled, filled + blocks.shape[0])
            if req.shape[0] and (req.min() < 0 or req.max() >= n_req
                                 or not np.array_equal(at, offsets[req] + pos)):
                raise _OutOfOrder
        pending.append(blocks)
        filled += blocks.shape[0]
        # hand out the whole requests read so far once there are enough accesses
        stop = int(np.searchsorted(offsets, filled, side="right")) - 1
        if stop > first and (filled - offsets[first] >= accesses or filled == offsets[-1]):
            data = np.concatenate(pending)
            cut = offsets[stop] - offsets[first]
            yield AccessChunk(first, offsets[first:stop + 1] - offsets[first], data[:cut])
            pending, first = [data[cut:]], stop
    if first < n_req:  # requests without accesses at the end
        yield AccessChunk(first, offsets[first:] - offsets[first], np.concatenate(pending or [np.empty(0, np.int64)]))


ACCESS_BATCH_ROWS = 1 << 20  # accesses read from the store at a time


def _in_csr_order(req: np.ndarray, pos: np.ndarray, prev: tuple) -> bool:
    """(req, pos) strictly increasing, and after ``prev`` (the last pair of the batch before)."""
    if req.shape[0] == 0:
        return True
    if (int(req[0]), int(pos[0])) <= prev:
        return False
    step = np.diff(req)
    return bool(((step > 0) | ((step == 0) & (np.diff(pos) > 0))).all()) and bool((step >= 0).all())


def read_block_ids(con, n_accesses: int) -> np.ndarray:
    """The accesses table's block ids in CSR order (request, then position) as the trace's
    dense ids (int32 below 2**31 - 1 accesses), read a batch at a time into one array: no
    full-size Arrow copy and no sort of the table. A plain scan returns the rows as they were
    inserted, which is CSR order; the batches are checked, and only a store whose rows are in
    another order is read sorted."""
    out = np.empty(n_accesses, id_type(n_accesses))
    filled, prev = 0, (-1, -1)
    for batch in con.sql(load_query("store_scan_accesses")).to_arrow_reader(ACCESS_BATCH_ROWS):
        req, pos = batch.column(0).to_numpy(), batch.column(1).to_numpy()
        if not _in_csr_order(req, pos, prev) or filled + batch.num_rows > n_accesses:
            filled = -1
            break
        out[filled:filled + batch.num_rows] = batch.column(2).to_numpy()
        filled += batch.num_rows
        if batch.num_rows:
            prev = (int(req[-1]), int(pos[-1]))
    if filled != n_accesses:  # not in CSR order (or not the count the requests name): sort
        filled = 0
        for batch in con.sql(load_query("store_load_accesses")).to_arrow_reader(ACCESS_BATCH_ROWS):
            if filled + batch.num_rows > n_accesses:
                break
            out[filled:filled + batch.num_rows] = batch.column(0).to_numpy()
            filled += batch.num_rows
    if filled != n_accesses:
        raise KvctraceError(f"the store's accesses table does not hold the {n_accesses:,} accesses its requests "
                            "table counts", hint="re-ingest the trace")
    return out
