"""Chained prefix hashing, rechaining, coarsening and dense-id mapping (Numba).

The hash is documented so ids are reproducible on every run and machine (never Python
``hash()``):

* ``fmix64(z)`` is the SplitMix64 / MurmurHash3 64-bit finalizer
  (``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31``).
* ``combine(h, x) = fmix64(h ^ fmix64(x + 0x9E3779B97F4A7C15))``: all arithmetic mod 2**64.
* content hash of a token block: ``c = CONTENT_SEED; c = combine(c, t)`` for each token ``t``,
  then ``c = combine(c, n_tokens)`` so a partial block never equals a full one.
* chained prefix id: ``h_{-1} = CHAIN_SEED``, ``h_i = combine(h_{i-1}, c_i)``; ``h_i`` names
  block ``i`` together with its whole prefix. Rechaining (Bailian) applies the same chain to
  per-block content hashes given by the trace.
* coarsening by ``k``: the coarse block ``j`` covers fine blocks ``jk .. jk+k-1``; since a
  chained id names its whole prefix, the coarse id is the chained id of the group's last fine
  block. Its prefix-equivalence classes equal those of hashing at ``k`` times the block size.
"""
from __future__ import annotations

import numba as nb
import numpy as np

CHAIN_SEED = np.uint64(0x6B76637472616365)    # "kvctrace"
CONTENT_SEED = np.uint64(0x626C6F636B733136)  # "blocks16"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


@nb.njit(cache=True, inline="always")
def fmix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@nb.njit(cache=True, inline="always")
def combine(h, x):
    return fmix64(h ^ fmix64(x + _GOLDEN))


@nb.njit(cache=True)
def _hash_token_blocks(tokens, offsets, block_size, include_partial):
    n_req = offsets.shape[0] - 1
    out_off = np.zeros(n_req + 1, np.int64)
    for r in range(n_req):
        n = offsets[r + 1] - offsets[r]
        nb_ = n // block_size
        if include_partial and n % block_size:
            nb_ += 1
        out_off[r + 1] = out_off[r] + nb_
    out = np.empty(out_off[n_req], np.uint64)
    for r in range(n_req):
        start = offsets[r]
        end = offsets[r + 1]
        h = CHAIN_SEED
        for b in range(out_off[r + 1] - out_off[r]):
            lo = start + b * block_size
            hi = min(lo + block_size, end)
            c = CONTENT_SEED
            for i in range(lo, hi):
                c = combine(c, np.uint64(tokens[i]))
            c = combine(c, np.uint64(hi - lo))
            h = combine(h, c)
            out[out_off[r] + b] = h
    return out, out_off


@nb.njit(cache=True)
def _rechain(content, offsets):
    out = np.empty(content.shape[0], np.uint64)
    for r in range(offsets.shape[0] - 1):
        h = CHAIN_SEED
        for i in range(offsets[r], offsets[r + 1]):
            h = combine(h, np.uint64(content[i]))
            out[i] = h
    return out


@nb.njit(cache=True)
def _coarsen(chained, offsets, k, include_partial):
    n_req = offsets.shape[0] - 1
    out_off = np.zeros(n_req + 1, np.int64)
    for r in range(n_req):
        n = offsets[r + 1] - offsets[r]
        m = n // k
        if include_partial and n % k:
            m += 1
        out_off[r + 1] = out_off[r] + m
    out = np.empty(out_off[n_req], chained.dtype)
    for r in range(n_req):
        start = offsets[r]
        n = offsets[r + 1] - start
        for j in range(out_off[r + 1] - out_off[r]):
            last = min((j + 1) * k, n) - 1
            out[out_off[r] + j] = chained[start + last]
    return out, out_off


@nb.njit(cache=True)
def _dense_ids_hashed(keys):
    """First-appearance dense ids with an open-addressing (linear probing) table.

    Key and value sit side by side in one array so a probe touches one cache line."""
    n = keys.shape[0]
    cap = 16
    while cap < 2 * n:
        cap *= 2
    mask = np.uint64(cap - 1)
    table = np.empty(2 * cap, np.uint64)
    empty = np.uint64(0xFFFFFFFFFFFFFFFF)
    for s in range(cap):
        table[2 * s + 1] = empty
    out = np.empty(n, np.int64)
    next_id = 0
    for i in range(n):
        key = keys[i]
        slot = fmix64(key) & mask
        while True:
            j = np.int64(slot) * 2
            v = table[j + 1]
            if v == empty:
                table[j] = key
                table[j + 1] = np.uint64(next_id)
                out[i] = next_id
                next_id += 1
                break
            if table[j] == key:
                out[i] = np.int64(v)
                break
            slot = (slot + np.uint64(1)) & mask
    return out, next_id


@nb.njit(cache=True)
def _dense_ids_direct(keys, max_key):
    """Same mapping for small non-negative integer ids (e.g. Mooncake's renumbered ids):
    a direct-address array replaces the hash table."""
    lut = np.full(max_key + 1, -1, np.int64)
    out = np.empty(keys.shape[0], np.int64)
    next_id = 0
    for i in range(keys.shape[0]):
        k = keys[i]
        v = lut[k]
        if v < 0:
            v = next_id
            lut[k] = v
            next_id += 1
        out[i] = v
    return out, next_id


@nb.njit(cache=True)
def _min_max(keys):
    lo = keys[0]
    hi = keys[0]
    for i in range(keys.shape[0]):
        k = keys[i]
        if k < lo:
            lo = k
        if k > hi:
            hi = k
    return lo, hi


def _check_csr(values: np.ndarray, offsets: np.ndarray) -> None:
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0 or offsets[-1] != values.shape[0]:
        raise ValueError("offsets must start at 0 and end at len(values)")


def hash_token_blocks(tokens: np.ndarray, offsets: np.ndarray, block_size: int,
                      partial: str = "include") -> tuple[np.ndarray, np.ndarray]:
    """Chained prefix ids (uint64) of fixed-size token blocks, CSR in and out.

    ``partial='include'`` keeps the last partial block (Mooncake); ``'drop'`` drops it (vLLM).
    """
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    if partial not in ("include", "drop"):
        raise ValueError("partial must be 'include' or 'drop'")
    tokens = np.ascontiguousarray(tokens, dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    _check_csr(tokens, offsets)
    return _hash_token_blocks(tokens, offsets, np.int64(block_size), partial == "include")


def rechain(content_hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Turn per-block content hashes (not chained, e.g. Bailian) into chained prefix ids."""
    content = np.ascontiguousarray(content_hashes).astype(np.uint64, copy=False) \
        if content_hashes.dtype != np.int64 else content_hashes.view(np.uint64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    _check_csr(content, offsets)
    return _rechain(np.ascontiguousarray(content), offsets)


def coarsen(chained: np.ndarray, offsets: np.ndarray, k: int,
            partial: str = "include") -> tuple[np.ndarray, np.ndarray]:
    """Re-block chained ids at ``k`` times the block size (ids of each group's last block)."""
    if k < 1:
        raise ValueError("coarsen factor must be >= 1")
    if partial not in ("include", "drop"):
        raise ValueError("partial must be 'include' or 'drop'")
    chained = np.ascontiguousarray(chained)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    _check_csr(chained, offsets)
    return _coarsen(chained, offsets, np.int64(k), partial == "include")


def dense_ids(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Map ids (any 64-bit integers) to 0, 1, 2, ... in order of first appearance."""
    keys = np.ascontiguousarray(keys)
    if keys.shape[0] == 0:
        return np.empty(0, np.int64), 0
    if keys.dtype.kind in "iu" and keys.dtype.itemsize <= 8:
        lo, hi = _min_max(keys)
        if lo >= 0 and hi < 4 * keys.shape[0] + 1024:
            ids, n = _dense_ids_direct(keys.astype(np.int64, copy=False), np.int64(hi))
            return ids, int(n)
    if keys.dtype == np.int64:
        keys = keys.view(np.uint64)
    elif keys.dtype != np.uint64:
        keys = keys.astype(np.uint64)
    ids, n = _dense_ids_hashed(keys)
    return ids, int(n)
