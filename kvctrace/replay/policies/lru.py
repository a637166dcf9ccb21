"""LRU: evict the least recently used block.

A block becomes the most recent of a tier when it is accessed there *or* when it arrives in
the tier (a miss, a demotion from above, a promotion from below), as a real tier's LRU list
does (vLLM's and LMCache's offload tiers put an arriving block at the MRU end). Kept as a
doubly linked list in arrays (O(1) per operation, ``kernels/replay.py``). With every tier
admitting everything, an exclusive LRU hierarchy with promotion behaves as one LRU of the
summed size (a test checks this); the single-tier case has its own fast kernel.
"""
from __future__ import annotations

from . import PolicySpec

SPEC = PolicySpec("lru", 0, online=True, refresh_on_hit=True,
                  description="least recently used (or arrived) block first")
