"""FIFO: evict the block that arrived in the tier first; hits do not reorder.

A block demoted or promoted into a tier joins that tier's queue as a new arrival. A
LIST-family policy (lists.py)."""
from __future__ import annotations

from .spec import LIST, PolicySpec, hook

SPEC = PolicySpec("fifo", online=True, family=LIST,
                  description="first arrived block first; hits do not reorder")


@hook
def on_hit(link, lends, s, b):
    pass
