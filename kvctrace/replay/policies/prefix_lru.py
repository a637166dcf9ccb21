"""Leaf-first prefix LRU, as radix-tree caches (SGLang RadixAttention, vLLM prefix caching)
evict: least recently used *request* first and, among the blocks one request touched, the
deepest block first.

On each access a block is stamped ``(request index, -position)``; the key orders by that
stamp. With chained prefix ids a block's parent is accessed in every request that accesses
the block, at a shallower position, so the parent's stamp is always newer: the block with the
smallest key never has a cached child, i.e. only leaves are evicted and a request's tail goes
before its head (plain LRU would evict the head first, since it was touched first).
Key = request << 24 | (2**24 - 1 - position)."""
from __future__ import annotations

import numba as nb
import numpy as np

from . import PolicySpec

SPEC = PolicySpec("prefix-lru", 4, online=True, refresh_on_hit=True,
                  description="least recent request first, deepest block of a request first (radix-tree leaves)")

POS_BITS = 24
MAX_POS = (1 << POS_BITS) - 1


@nb.njit(cache=True, inline="always")
def stamp_of(r, pos):
    p = pos if pos < MAX_POS else MAX_POS
    return (np.int64(r) << np.int64(POS_BITS)) | np.int64(MAX_POS - p)


@nb.njit(cache=True, inline="always")
def key(stamp):
    return stamp
