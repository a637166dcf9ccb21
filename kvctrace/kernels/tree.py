"""Store kernels (Numba): reorder and trim CSR request lists, expand CSR to access rows, and
fill the prefix tree (the ``blocks`` table) in one pass over the accesses.

Kernels take and return numpy arrays only; the wrappers check shapes. References live in
``tests/naive.py`` (section "store / prefix tree") and are compared by hypothesis in
``tests/test_store.py``."""
from __future__ import annotations

import numba as nb
import numpy as np

from .arrays import ids


@nb.njit(cache=True)
def _gather_csr(values, offsets, order):
    n = order.shape[0]
    out_off = np.zeros(n + 1, np.int64)
    for i in range(n):
        r = order[i]
        out_off[i + 1] = out_off[i] + offsets[r + 1] - offsets[r]
    out = np.empty(out_off[n], values.dtype)
    for i in range(n):
        r = order[i]
        start = offsets[r]
        dst = out_off[i]
        for j in range(offsets[r + 1] - start):
            out[dst + j] = values[start + j]
    return out, out_off


@nb.njit(cache=True)
def _truncate_csr(values, offsets, keep):
    n = offsets.shape[0] - 1
    out_off = np.zeros(n + 1, np.int64)
    for r in range(n):
        out_off[r + 1] = out_off[r] + min(keep[r], offsets[r + 1] - offsets[r])
    out = np.empty(out_off[n], values.dtype)
    for r in range(n):
        start = offsets[r]
        dst = out_off[r]
        for j in range(out_off[r + 1] - dst):
            out[dst + j] = values[start + j]
    return out, out_off


@nb.njit(cache=True)
def _access_rows(offsets):
    n = offsets.shape[0] - 1
    req = np.empty(offsets[n], np.int64)
    pos = np.empty(offsets[n], np.int32)  # positions in one request fit in 32 bits
    for r in range(n):
        for i in range(offsets[r], offsets[r + 1]):
            req[i] = r
            pos[i] = i - offsets[r]
    return req, pos


@nb.njit(cache=True)
def _prefix_tree(dense, offsets, n_unique, input_len, block_size, with_first_access):
    """For each dense block id, where it first appears: request, position (= depth), the block
    before it there (parent, -1 at depth 0), its token count, and the access index (to look up
    its raw hash). Dense ids are first-appearance ordered, so a new block is id == seen."""
    first_req = np.empty(n_unique, np.int32)  # int32: the wrapper checks the ranges fit
    parent = np.empty(n_unique, np.int32)
    depth = np.empty(n_unique, np.int32)
    tokens = np.empty(n_unique, np.int32)
    first_access = np.empty(n_unique if with_first_access else 0, np.int64)
    seen = 0
    for r in range(offsets.shape[0] - 1):
        start = offsets[r]
        for i in range(start, offsets[r + 1]):
            b = dense[i]
            if b == seen:
                p = i - start
                first_req[b] = r
                depth[b] = p
                parent[b] = dense[i - 1] if p > 0 else -1
                t = input_len[r] - p * block_size
                tokens[b] = min(max(t, 0), block_size)
                if with_first_access:
                    first_access[b] = i
                seen += 1
    return first_req, parent, depth, tokens, first_access


@nb.njit(cache=True)
def _first_values(dense, values, n_unique):
    out = np.empty(n_unique, values.dtype)
    seen = 0
    for i in range(dense.shape[0]):
        if dense[i] == seen:  # first-appearance ids: a new id is the next one
            out[seen] = values[i]
            seen += 1
    return out


def gather_csr(values: np.ndarray, offsets: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR lists of requests ``order[0], order[1], ...`` (reorders requests)."""
    offsets = np.ascontiguousarray(offsets, np.int64)
    return _gather_csr(np.ascontiguousarray(values), offsets, np.ascontiguousarray(order, np.int64))


def truncate_csr(values: np.ndarray, offsets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``keep[r]`` items of each request's list."""
    offsets = np.ascontiguousarray(offsets, np.int64)
    if keep.shape[0] != offsets.shape[0] - 1:
        raise ValueError("keep needs one count per request")
    return _truncate_csr(np.ascontiguousarray(values), offsets, np.ascontiguousarray(keep, np.int64))


def access_rows(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(req_id, pos) of every access of a CSR layout."""
    return _access_rows(np.ascontiguousarray(offsets, np.int64))


def prefix_tree(dense: np.ndarray, offsets: np.ndarray, n_unique: int, input_len: np.ndarray,
                block_size: int, with_first_access: bool = True) -> tuple[np.ndarray, ...]:
    """(first_req, parent_block, depth, tokens, first_access) per dense block id; all int32
    (parent_block -1 at depth 0) but first_access (int64, an access index; empty when
    ``with_first_access`` is False, which saves 8 bytes per block)."""
    dense = ids(dense)
    offsets = np.ascontiguousarray(offsets, np.int64)
    if offsets.shape[0] < 1 or offsets[-1] != dense.shape[0] or input_len.shape[0] != offsets.shape[0] - 1:
        raise ValueError("dense/offsets/input_len do not describe one CSR trace")
    if max(int(n_unique), offsets.shape[0], int(block_size)) >= np.iinfo(np.int32).max:
        raise ValueError("prefix_tree returns int32 ids: too many blocks or requests")
    return _prefix_tree(dense, offsets, np.int64(n_unique), np.ascontiguousarray(input_len, np.int64),
                        np.int64(block_size), bool(with_first_access))


def first_values(dense: np.ndarray, values: np.ndarray, n_unique: int) -> np.ndarray:
    """``out[b]`` = ``values[i]`` at the first access ``i`` of dense id ``b`` (e.g. the raw id
    each dense id stands for), in one sequential pass."""
    dense = ids(dense)
    values = np.ascontiguousarray(values)
    if dense.shape[0] != values.shape[0]:
        raise ValueError("dense and values need one entry per access")
    return _first_values(dense, values, np.int64(n_unique))
