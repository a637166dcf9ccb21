"""LFU (in-cache): evict the block with the fewest accesses since it entered the cache,
ties broken by least recent access.

The count restarts at 1 when a block re-enters the hierarchy after leaving every tier, and
travels with the block when it is demoted or promoted. Key = count << 40 | last access index
(traces up to 2**40 accesses; counts saturate at 2**22)."""
from __future__ import annotations

import numba as nb
import numpy as np

from . import PolicySpec

SPEC = PolicySpec("lfu", 2, online=True, refresh_on_hit=True,
                  description="fewest accesses since entering the cache first (ties: LRU)")


@nb.njit(cache=True, inline="always")
def key(freq, last_t):
    f = freq
    if f > 4194303:
        f = 4194303
    return (np.int64(f) << np.int64(40)) | last_t
