"""FIFO: evict the block that arrived in the tier first; hits do not reorder.

A block demoted or promoted into a tier joins that tier's queue as a new arrival. Kept as a
linked list in arrays (O(1) per operation, ``kernels/replay.py``)."""
from __future__ import annotations

from . import PolicySpec

SPEC = PolicySpec("fifo", 1, online=True, refresh_on_hit=False,
                  description="first arrived block first; hits do not reorder")
