"""LRU: evict the block whose last access is oldest.

Key = global index of the block's last access. A block demoted to a lower tier keeps its
recency, so an exclusive LRU hierarchy with promotion behaves as one LRU of the summed size.
The single-tier case has a dedicated linked-list kernel (``kernels/replay.py: _lru_one_tier``).
"""
from __future__ import annotations

import numba as nb

from . import PolicySpec

SPEC = PolicySpec("lru", 0, online=True, refresh_on_hit=True,
                  description="least recently used block first")


@nb.njit(cache=True, inline="always")
def key(b, ins_seq, last_t, freq, stamp, next_use):
    return last_t[b]
