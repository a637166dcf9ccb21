"""LRU: evict the least recently used block.

A block becomes the most recent of a tier when it is accessed there *or* when it arrives in
the tier (a miss, a demotion from above, a promotion from below), as a real tier's LRU list
does (vLLM's and LMCache's offload tiers put an arriving block at the MRU end). A LIST-family
policy (lists.py). With every tier admitting everything, an exclusive LRU hierarchy with
promotion behaves as one LRU of the summed size (a test checks this); the single-tier case
has its own fast kernel (kernels/replay.py: lru_one_tier).
"""
from __future__ import annotations

from . import lists
from .spec import LIST, PolicySpec, hook

SPEC = PolicySpec("lru", online=True, family=LIST,
                  description="least recently used (or arrived) block first")


@hook
def on_hit(link, lends, s, b):
    lists.move_to_head(link, lends, s, b)
