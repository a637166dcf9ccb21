"""How kernel wrappers take the trace's arrays: without a copy when they already have a type
the kernels are compiled for.

A trace's dense block ids are int32 (4 bytes per access; int64 only past 2**31 distinct
blocks), its CSR offsets int64. Numba compiles a kernel once per argument type, so a wrapper
that passes int32 ids through as they are costs nothing; converting them to int64 would cost a
full-length copy (8 bytes per access) on every call.
"""
from __future__ import annotations

import numpy as np

# The id types kernels take as they are; anything else is converted to int64.
ID_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


def ids(values) -> np.ndarray:
    """``values`` as a contiguous int32 or int64 array: the array itself when it is one."""
    array = np.ascontiguousarray(values)
    if array.dtype not in ID_TYPES:
        array = array.astype(np.int64)
    return array


def offsets(values) -> np.ndarray:
    """CSR offsets as a contiguous int64 array (the array itself when it is one)."""
    return np.ascontiguousarray(values, dtype=np.int64)


def id_type(n_ids: int) -> type:
    """The dtype of dense ids of ``n_ids`` keys (or fewer): int32 below 2**31 - 1, else int64."""
    return np.int32 if n_ids < np.iinfo(np.int32).max else np.int64


def one_chunk(offsets, blocks):
    """A CSR trace held whole as what the kernels that read the block ids in chunks take (a
    ``Trace.access_chunks``: called once per pass, each call yielding (first request, offsets,
    ids) chunks of whole requests): here one chunk of the arrays themselves, no copy."""
    return lambda: iter(((0, offsets, blocks),))


class RequestCursor:
    """How far a kernel fed a trace of ``n_requests`` (default: as many as the trace's
    ``trace_offsets`` say) a chunk of whole requests at a time has got. A chunk is a (first
    request, CSR offsets from 0, ids) triple, as ``Trace.access_chunks`` yields them (``AccessChunk``, a layer above the kernels). ``take``
    checks that a chunk holds the next requests, as CSR (and, given the trace's
    ``trace_offsets``, with their lengths) before handing its arrays to a kernel (kernels index
    per-request and per-access state by them without bounds checks), and ``check_done`` that
    every request came: a ValueError otherwise."""

    def __init__(self, n_requests: int | None = None, trace_offsets=None):
        self.offsets = None if trace_offsets is None else offsets(trace_offsets)
        self.n_requests = int(n_requests) if n_requests is not None else self.offsets.shape[0] - 1
        self.next_request = 0

    def take(self, chunk) -> tuple[np.ndarray, np.ndarray]:
        """The chunk's (CSR offsets from 0, ids) as kernels take them."""
        first, chunk_offsets, blocks = chunk
        chunk_offsets, blocks = offsets(chunk_offsets), ids(blocks)
        stop = first + chunk_offsets.shape[0] - 1
        in_place = (first == self.next_request and first <= stop <= self.n_requests and chunk_offsets[0] == 0
                    and blocks.shape[0] == chunk_offsets[-1]
                    and (self.offsets is None or chunk_offsets is self.offsets   # in memory: the trace's own
                         or np.array_equal(chunk_offsets, self.offsets[first:stop + 1] - self.offsets[first])))
        if not in_place:
            raise ValueError(f"a chunk of requests {first}..{stop - 1} is not the trace's next "
                             f"(request {self.next_request}, CSR offsets as the trace's)")
        self.next_request = stop
        return chunk_offsets, blocks

    def check_done(self) -> None:
        if self.next_request != self.n_requests:
            raise ValueError(f"the chunks stopped at request {self.next_request} of {self.n_requests}")


def request_chunks(access_chunks, n_requests: int, trace_offsets: np.ndarray | None = None):
    """The chunks of one call of ``access_chunks`` as (first request, int64 offsets, int32 or
    int64 ids) for the kernels, each checked by a ``RequestCursor``."""
    cursor = RequestCursor(n_requests, trace_offsets)
    for chunk in access_chunks():
        chunk_offsets, blocks = cursor.take(chunk)
        yield chunk[0], chunk_offsets, blocks
    cursor.check_done()
