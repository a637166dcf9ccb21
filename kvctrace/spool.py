"""The spool of a streamed ingest (``store.ingest_streamed`` into a database file,
``store._ingest_chunks_in_memory`` into memory): the trace a bounded chunk at a time.

Pass 1 reads the file chunk by chunk (formats/stream.py): each chunk's block ids, re-blocked,
go to a spool file on disk (8 bytes per access), its request columns stay in memory (about
50 bytes per request). Pass 2 takes the requests in arrival order ((timestamp, line): the
file's order when it is sorted), a batch of about STREAM_BATCH_ACCESSES accesses at a time
(``arrival_batches``), reads their ids back from the spool and has ``tables.TableStream``
write them, or (in memory) maps them to dense ids (``dense_in_batches``). The block ids are
those of the whole-file ingest: re-blocking is per request, and the dense-id map persists
across batches (docs/data-model.md, "Streamed ingest")."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .kernels.arrays import id_type
from .kernels.dense_stream import DenseIdMap
from .kernels.tree import gather_csr

STREAM_BATCH_ACCESSES = 1 << 21


class Spool:
    """Block ids in file order on disk (a temporary file, gone when closed)."""

    def __init__(self, folder: Path):
        import tempfile
        self._fh = tempfile.TemporaryFile(dir=folder, prefix=".kvctrace-ids-")
        self.n = 0

    def write(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids)
        self._fh.write(memoryview(ids.view(np.uint64) if ids.dtype == np.int64 else ids.astype(np.uint64)))
        self.n += ids.shape[0]

    def gather(self, offsets: np.ndarray, rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """(ids, CSR offsets from 0) of the requests ``rows`` (file rows; ``offsets`` in file
        order). The file is mapped for this call only, so its pages do not stay resident."""
        if self.n == 0:
            count = (offsets[1:] - offsets[:-1])[rows]
            return np.empty(0, np.uint64), np.concatenate(([0], np.cumsum(count))).astype(np.int64)
        self._fh.flush()
        mapped = np.memmap(self._fh, np.uint64, "r", shape=(self.n,))
        if isinstance(rows, slice):
            out = np.array(mapped[offsets[rows.start]:offsets[rows.stop]])
            out_off = offsets[rows.start:rows.stop + 1] - offsets[rows.start]
        else:
            out, out_off = gather_csr(mapped, offsets, rows)
        del mapped
        return out, out_off

    def close(self) -> None:
        self._fh.close()


def arrival_batches(spool: Spool, file_offsets: np.ndarray, order: np.ndarray | None, n_blocks: np.ndarray,
                     stage, what: str):
    """Pass 2: the requests in arrival order (``n_blocks`` in that order), a batch of about
    STREAM_BATCH_ACCESSES accesses at a time: (first request, one past the last, their block
    ids read back from the spool, CSR offsets from 0)."""
    from .progress import bar_text
    ends = np.cumsum(n_blocks)
    n = n_blocks.shape[0]
    start = 0
    while start < n:
        stop = max(int(np.searchsorted(ends, (ends[start - 1] if start else 0) + STREAM_BATCH_ACCESSES)), start + 1)
        stop = min(stop, n)
        keys, offsets = spool.gather(file_offsets, slice(start, stop) if order is None else order[start:stop])
        yield start, stop, keys, offsets
        stage(f"{what} {bar_text(stop / n)}")
        start = stop


def dense_in_batches(batches, n_accesses: int) -> tuple[np.ndarray, int, np.ndarray]:
    """``tables.dense_block_ids`` of the raw ids of ``batches`` (``arrival_batches``), mapped
    a batch at a time (the map persists across batches: the same ids): never every raw
    8-byte id at once, which was the in-memory ingest's peak (8 bytes per access)."""
    dense, id_map, filled = np.empty(n_accesses, id_type(n_accesses)), DenseIdMap(), 0
    for _, _, keys, _ in batches:
        dense[filled:filled + keys.shape[0]] = id_map.map(keys)
        filled += keys.shape[0]
    return dense, id_map.count, id_map.keys()
