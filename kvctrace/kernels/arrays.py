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


def request_chunks(access_chunks, n_requests: int, trace_offsets: np.ndarray | None = None):
    """The chunks of one call of ``access_chunks`` as (first request, int64 offsets, int32 or
    int64 ids) for the kernels, each checked to be the next run of whole requests of a trace
    of ``n_requests`` (the kernels index per-request arrays by ``first request + r`` without
    bounds checks) and, given the trace's CSR ``trace_offsets`` (for kernels that index the
    chunk's ids by the trace's access numbers), to hold exactly its requests' accesses; and
    all of them to cover it: a ValueError otherwise."""
    expected = 0
    for first, chunk_offsets, chunk_blocks in access_chunks():
        chunk_offsets, chunk_blocks = offsets(chunk_offsets), ids(chunk_blocks)
        n = chunk_offsets.shape[0] - 1
        if (first != expected or n < 0 or expected + n > n_requests or chunk_offsets[0] != 0
                or chunk_offsets[-1] != chunk_blocks.shape[0]
                or (trace_offsets is not None
                    and chunk_blocks.shape[0] != trace_offsets[first + n] - trace_offsets[first])):
            raise ValueError("the access chunks do not describe the trace's requests in order, as CSR chunks")
        expected += n
        yield first, chunk_offsets, chunk_blocks
    if expected != n_requests:
        raise ValueError(f"the access chunks cover {expected} requests of {n_requests}")
