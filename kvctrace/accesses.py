"""Reading a store's accesses table as the trace's dense block ids in CSR order (request, then
position): whole (``read_block_ids``, what opening a ``.duckdb`` does) or as chunks of whole
requests (``iter_access_chunks``, for an analysis over a trace whose accesses do not fit in
memory). Both take the ids a batch at a time from one reader (``_id_batches``), which reads
the table in its own (insertion) order, the CSR order an ingest writes, checks every row's
place as it goes, and continues through a sorted read for a table written otherwise."""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import duckdb
import numpy as np

from .errors import KvctraceError
from .kernels.arrays import id_type
from .sql import load_query

ACCESS_BATCH_ROWS = 1 << 20  # accesses read from the store at a time
STORE_CHUNK_ACCESSES = 1 << 22  # accesses an analysis of a store opened in chunks gets at a time


def _id_batches(con, offsets: np.ndarray) -> Iterator[np.ndarray]:
    """The block ids of the requests with CSR ``offsets``, in CSR order, a batch at a time.
    A plain scan returns the rows as they were inserted; each row is checked to sit at its
    own CSR place (``offsets[req] + pos``), so every id handed out is where it belongs, and at
    the first row that is not, the rest comes from a sorted read (no full sort for a store in
    order). The consumer checks the count: a table short of rows ends early."""
    n_req = offsets.shape[0] - 1
    filled = 0
    for batch in con.sql(load_query("store_scan_accesses")).to_arrow_reader(ACCESS_BATCH_ROWS):
        req, pos = batch.column(0).to_numpy(), batch.column(1).to_numpy()
        placed = (req.shape[0] == 0 or (req.min() >= 0 and req.max() < n_req
                  and np.array_equal(offsets[req] + pos, np.arange(filled, filled + req.shape[0]))))
        if not placed:
            break
        yield batch.column(2).to_numpy()
        filled += req.shape[0]
    else:
        return
    seen = 0    # in another order: the sorted ids from where the checked ones stopped
    for batch in con.sql(load_query("store_load_accesses")).to_arrow_reader(ACCESS_BATCH_ROWS):
        ids = batch.column(0).to_numpy()
        skip = min(max(filled - seen, 0), ids.shape[0])
        seen += ids.shape[0]
        if skip < ids.shape[0]:
            yield ids[skip:]


def _short(n_accesses: int) -> KvctraceError:
    return KvctraceError(f"the store's accesses table does not hold the {n_accesses:,} accesses its requests "
                         "table counts", hint="re-ingest the trace")


def read_block_ids(con, offsets: np.ndarray) -> np.ndarray:
    """The block ids of the requests with CSR ``offsets`` as the trace's dense ids (int32
    below 2**31 - 1 accesses), read a batch at a time into one array: no full-size Arrow copy
    and no sort of a table in CSR order."""
    n_accesses = int(offsets[-1])
    out = np.empty(n_accesses, id_type(n_accesses))
    filled = 0
    for ids in _id_batches(con, offsets):
        if filled + ids.shape[0] > n_accesses:
            raise _short(n_accesses)
        out[filled:filled + ids.shape[0]] = ids
        filled += ids.shape[0]
    if filled != n_accesses:
        raise _short(n_accesses)
    return out


# ---- reading the accesses in chunks (traces bigger than memory) -------------------------------

class AccessChunk(NamedTuple):
    """Requests ``first_request`` .. ``first_request + len(offsets) - 2`` of a stored trace:
    their CSR ``offsets`` (int64, from 0) into ``blocks`` (dense ids, the trace's id dtype)."""
    first_request: int
    offsets: np.ndarray
    blocks: np.ndarray


def iter_access_chunks(con: duckdb.DuckDBPyConnection, accesses: int = STORE_CHUNK_ACCESSES,
                       offsets: np.ndarray | None = None) -> Iterator[AccessChunk]:
    """The accesses table as chunks of whole requests of about ``accesses`` block accesses, in
    arrival order, so that an analysis whose state is per block (counts, last-seen times,
    ...) can run over a trace whose accesses do not fit in memory: the table is streamed, never
    held whole. ``offsets``: the requests' CSR offsets when the caller has them (else read)."""
    if offsets is None:
        n_blocks = con.sql("SELECT n_blocks FROM requests ORDER BY req_id").to_arrow_table().column(0).to_numpy()
        offsets = np.zeros(n_blocks.shape[0] + 1, np.int64)
        np.cumsum(n_blocks, out=offsets[1:])
    n_req, dtype = offsets.shape[0] - 1, id_type(int(offsets[-1]))
    pending, filled, first = [], 0, 0
    for ids in _id_batches(con, offsets):
        pending.append(ids.astype(dtype, copy=False))
        filled += ids.shape[0]
        if filled > offsets[-1]:
            raise _short(int(offsets[-1]))
        # hand out the whole requests read so far once there are enough accesses
        stop = int(np.searchsorted(offsets, filled, side="right")) - 1
        if stop > first and (filled - offsets[first] >= accesses or filled == offsets[-1]):
            data = np.concatenate(pending)
            cut = offsets[stop] - offsets[first]
            yield AccessChunk(first, offsets[first:stop + 1] - offsets[first], data[:cut])
            pending, first = [data[cut:]], stop
    if filled != offsets[-1]:
        raise _short(int(offsets[-1]))
    if first < n_req:  # requests without accesses at the end
        yield AccessChunk(first, offsets[first:] - offsets[first], np.concatenate(pending or [np.empty(0, dtype)]))
