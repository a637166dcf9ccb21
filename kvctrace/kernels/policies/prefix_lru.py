"""Leaf-first prefix LRU, as radix-tree caches (SGLang RadixAttention, vLLM prefix caching)
evict: least recently used *request* first and, among the blocks one request touched, the
deepest block first.

On each access a block is stamped ``(request index, -position)`` (state.py: stamp);
the key is that stamp. With chained prefix ids a block's parent is accessed in every request
that accesses the block, at a shallower position, so the parent's stamp is always newer: the
block with the smallest key never has a cached child, i.e. only leaves are evicted and a
request's tail goes before its head (plain LRU would evict the head first, since it was
touched first). A HEAP-family policy (heap.py). Key = request << 24 | (2**24 - 1 - position)."""
from __future__ import annotations

from .spec import HEAP, PolicySpec, hook
from .state import stamp_key

SPEC = PolicySpec("prefix-lru", online=True, family=HEAP,
                  description="least recent request first, deepest block of a request first (radix-tree leaves)")


@hook
def key(bst, b):
    return stamp_key(bst, b)
