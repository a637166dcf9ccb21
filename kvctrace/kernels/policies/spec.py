"""What a policy module declares, and the hooks its family asks of it.

Every policy is one module of this package defining ``SPEC`` (a :class:`PolicySpec`) and the
Numba hooks of its *family*, the data structure the engine keeps its tiers in (state.py):

* ``LIST`` (a doubly linked list, arrivals at the head, the victim is the tail; lists.py):
  ``on_hit(link, lends, s, b)``: what a hit does to the order (LRU: move to the head; FIFO:
  nothing).
* ``HEAP`` (an indexed min-heap, the victim is the smallest key; heap.py):
  ``key(bst, b) -> int64``: the priority of block ``b`` from its per-block state, computed
  when the block enters the tier and again on every hit; unique per block.
* ``OWN`` (the policy's own per-block fields ``st`` and per-tier scalars ``sc``):
  ``N_FIELDS``, ``N_SCALARS`` and every hook itself: ``init_tier(st, sc, s, capacity)``,
  ``on_hit(st, sc, s, b)``, ``insert(st, sc, s, b, capacity) -> victim or -1`` (``b`` is not
  held; when the tier is full, evict one block and return it), ``remove(st, sc, s, b)`` (take
  a held block out without evicting: an exclusive promotion moved it up).

``s`` is the tier's slot in its family's arrays. The engine (kernels/replay.py) does each
family's structure work and reaches the hooks through dispatch.py, generated from the registry
(__init__.py). Hooks are plain functions of the arrays they need (not of a tuple of all of
them), decorated ``@hook``: kernels/nrt.py's ``no_refcount``, compiled without Numba's
reference counting, which a call LLVM does not inline would otherwise pay on every array
argument (nrt.py says why). Numba's own ``inline="always"`` counts them too, at each call
inside the loop: on these calls it made the engine about twice as slow.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..nrt import no_refcount as hook  # noqa: F401 - the decorator policy modules use

LIST, HEAP, OWN = 0, 1, 2
FAMILY_NAMES = {LIST: "list", HEAP: "heap", OWN: "own"}


@dataclass(frozen=True)
class PolicySpec:
    name: str
    online: bool        # False: needs the future (Belady), so not a deployable choice
    family: int         # LIST, HEAP or OWN
    description: str
