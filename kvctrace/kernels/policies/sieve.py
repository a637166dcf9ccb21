"""SIEVE (Zhang et al., NSDI'24): one FIFO queue, a visited bit per block and a hand that
sweeps from the tail toward the head.

Follows libCacheSim's ``Sieve.c`` (the peer tests/test_replay_peer.py compares with):
* hit: the block's visited bit is set (the queue is not reordered);
* miss: the block enters at the head with the bit clear, after one eviction when the tier is
  full;
* eviction: the hand starts where it stopped last time (at the tail the first time, or after
  it ran off the head); it clears the bit of each visited block it passes, moving toward the
  head and wrapping to the tail, and evicts the first block whose bit is clear. The hand then
  rests on the evicted block's newer neighbour;
* a block taken out without eviction (an exclusive promotion) moves the hand on the same way
  when the hand rests on it.

An OWN-family policy: per block ``st[s, b, :]`` = links (lists.py) and the visited bit; per
tier ``sc[s, :]`` = head, tail, size and the hand (-1: start at the tail).
"""
from __future__ import annotations

from . import lists
from .spec import OWN, PolicySpec, hook

SPEC = PolicySpec("sieve", online=True, family=OWN,
                  description="FIFO with a visited bit and a sweeping hand (NSDI'24)")

PREV, NEXT, VISITED = 0, 1, 2
N_FIELDS = 3
HEAD, TAIL, SIZE, HAND = 0, 1, 2, 3
N_SCALARS = 4


@hook
def init_tier(st, sc, s, capacity):
    sc[s, HEAD] = -1
    sc[s, TAIL] = -1
    sc[s, SIZE] = 0
    sc[s, HAND] = -1


@hook
def on_hit(st, sc, s, b):
    st[s, b, VISITED] = 1


@hook
def _evict(st, sc, s):
    x = sc[s, HAND] if sc[s, HAND] >= 0 else sc[s, TAIL]
    while st[s, x, VISITED] != 0:
        st[s, x, VISITED] = 0
        x = st[s, x, PREV] if st[s, x, PREV] >= 0 else sc[s, TAIL]
    sc[s, HAND] = st[s, x, PREV]
    lists.unlink(st, sc, s, x, HEAD, TAIL, SIZE)
    return x


@hook
def insert(st, sc, s, b, capacity):
    """Insert ``b`` (not held); return the block evicted to make room, or -1."""
    victim = -1
    if sc[s, SIZE] >= capacity:
        victim = _evict(st, sc, s)
    lists.push_head(st, sc, s, b, HEAD, TAIL, SIZE)
    st[s, b, VISITED] = 0
    return victim


@hook
def remove(st, sc, s, b):
    if sc[s, HAND] == b:
        sc[s, HAND] = st[s, b, PREV]
    lists.unlink(st, sc, s, b, HEAD, TAIL, SIZE)
