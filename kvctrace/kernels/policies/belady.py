"""Belady/OPT (MIN): evict the block whose next access is farthest in the future.

Offline upper bound: the next-use index of every access is precomputed from the whole
sequence (``kernels/replay.py: next_use``). With every miss inserted, no policy has more
block hits on one tier (Belady 1966). A HEAP-family policy (heap.py). Key = -(next use); a
block never used again gets next use ``n + last access`` so those go first, most recent
first (the choice among them changes no hit count)."""
from __future__ import annotations

import numpy as np

from .spec import HEAP, PolicySpec, hook
from .state import B_NEXT

SPEC = PolicySpec("belady", online=False, family=HEAP,
                  description="offline optimum: farthest next use first (upper bound)")


@hook
def key(bst, b):
    return -np.int64(bst[b, B_NEXT])
