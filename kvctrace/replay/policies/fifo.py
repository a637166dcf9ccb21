"""FIFO: evict the block that entered the tier first; hits do not reorder.

Key = a counter taken when the block enters the tier (a demoted block joins the lower tier's
queue at its tail, as a new arrival)."""
from __future__ import annotations

import numba as nb

from . import PolicySpec

SPEC = PolicySpec("fifo", 1, online=True, refresh_on_hit=False,
                  description="first inserted block first; hits do not reorder")


@nb.njit(cache=True, inline="always")
def key(b, ins_seq, last_t, freq, stamp, next_use):
    return ins_seq
