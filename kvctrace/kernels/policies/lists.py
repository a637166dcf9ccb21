"""Doubly linked lists in arrays (O(1) per operation), and the LIST family built on them.

A list's links are ``link[s, b, 0]`` (prev, toward the head) and ``link[s, b, 1]`` (next,
toward the tail), -1 at the ends; its head, tail and length are three columns of
``ends[s, :]``. The LIST family keeps each tier as one such list (``link`` int32,
``lends``): arrivals (misses, demotions, promotions) go to the head, the victim is the
tail, and the family's policies (lru.py, fifo.py) only say what a hit does. OWN-family
policies keep their queues with the same two functions in their own fields (``st``,
``sc``; e.g. s3fifo.py).
"""
from __future__ import annotations

import numpy as np

from .spec import hook

HEAD, TAIL, SIZE = 0, 1, 2  # the LIST family's columns of lends


@hook
def unlink(link, ends, s, b, head, tail, size):
    p = link[s, b, 0]
    nx = link[s, b, 1]
    if p >= 0:
        link[s, p, 1] = nx
    else:
        ends[s, head] = nx
    if nx >= 0:
        link[s, nx, 0] = p
    else:
        ends[s, tail] = p
    ends[s, size] -= 1


@hook
def push_head(link, ends, s, b, head, tail, size):
    h = ends[s, head]
    link[s, b, 0] = -1
    link[s, b, 1] = h
    if h >= 0:
        link[s, h, 0] = b
    else:
        ends[s, tail] = b
    ends[s, head] = b
    ends[s, size] += 1


# ----------------------------------------------------------------------------- LIST family

@hook
def move_to_head(link, lends, s, b):
    if lends[s, HEAD] != b:
        unlink(link, lends, s, b, HEAD, TAIL, SIZE)
        push_head(link, lends, s, b, HEAD, TAIL, SIZE)


@hook
def insert(link, lends, s, b, capacity):
    """Push ``b`` at the head; when the tier is full, first evict the tail and return it."""
    v = -1
    if lends[s, SIZE] >= capacity:
        v = np.int64(lends[s, TAIL])
        unlink(link, lends, s, v, HEAD, TAIL, SIZE)
    push_head(link, lends, s, b, HEAD, TAIL, SIZE)
    return v


@hook
def remove(link, lends, s, b):
    unlink(link, lends, s, b, HEAD, TAIL, SIZE)
