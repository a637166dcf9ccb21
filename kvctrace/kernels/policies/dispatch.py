"""Policy dispatch for the replay engine (kernels/replay.py): for each policy-specific
operation of a family (spec.py), one branch per policy of that family, selected by the tier's
policy code. GENERATED from the registry (__init__.py) by
``python -m kvctrace.kernels.policies.codegen``; do not edit (a test fails when stale)."""
from __future__ import annotations

from . import belady, fifo, lfu, lru, prefix_lru, s3fifo, sieve
from .spec import hook

N_POLICIES = 7
OWN_FIELDS = 4  # per-block fields of the OWN-family policies (the largest; state.py)
OWN_SCALARS = 14  # per-tier int64 scalars of the OWN-family policies (the largest)


@hook
def family(code):
    if code == 0 or code == 1:  # lru, fifo
        return 0  # list
    elif code == 2 or code == 4 or code == 5:  # lfu, prefix-lru, belady
        return 1  # heap
    elif code == 3 or code == 6:  # s3fifo, sieve
        return 2  # own
    return -1


@hook
def list_on_hit(code, link, lends, s, b):
    if code == 0:  # lru
        lru.on_hit(link, lends, s, b)
    elif code == 1:  # fifo
        fifo.on_hit(link, lends, s, b)


@hook
def heap_key(code, bst, b):
    if code == 2:  # lfu
        return lfu.key(bst, b)
    elif code == 4:  # prefix-lru
        return prefix_lru.key(bst, b)
    elif code == 5:  # belady
        return belady.key(bst, b)
    return -1


@hook
def own_init_tier(code, st, sc, s, capacity):
    if code == 3:  # s3fifo
        s3fifo.init_tier(st, sc, s, capacity)
    elif code == 6:  # sieve
        sieve.init_tier(st, sc, s, capacity)


@hook
def own_on_hit(code, st, sc, s, b):
    if code == 3:  # s3fifo
        s3fifo.on_hit(st, sc, s, b)
    elif code == 6:  # sieve
        sieve.on_hit(st, sc, s, b)


@hook
def own_insert(code, st, sc, s, b, capacity):
    if code == 3:  # s3fifo
        return s3fifo.insert(st, sc, s, b, capacity)
    elif code == 6:  # sieve
        return sieve.insert(st, sc, s, b, capacity)
    return -1


@hook
def own_remove(code, st, sc, s, b):
    if code == 3:  # s3fifo
        s3fifo.remove(st, sc, s, b)
    elif code == 6:  # sieve
        sieve.remove(st, sc, s, b)
