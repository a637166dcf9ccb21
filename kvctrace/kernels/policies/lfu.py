"""LFU (in-cache): evict the block with the fewest accesses since it entered the cache,
ties broken by least recent access.

The count restarts at 1 when a block re-enters the hierarchy after leaving every tier, and
travels with the block when it is demoted or promoted. A HEAP-family policy (heap.py).
Key = count << 40 | last access index (traces up to 2**40 accesses; counts saturate at 2**22)."""
from __future__ import annotations

import numpy as np

from .spec import HEAP, PolicySpec, hook
from .state import B_FREQ, B_LAST

SPEC = PolicySpec("lfu", online=True, family=HEAP,
                  description="fewest accesses since entering the cache first (ties: LRU)")

MAX_COUNT = (1 << 22) - 1


@hook
def key(bst, b):
    f = bst[b, B_FREQ]
    if f > MAX_COUNT:
        f = MAX_COUNT
    return (np.int64(f) << np.int64(40)) | np.int64(bst[b, B_LAST])
