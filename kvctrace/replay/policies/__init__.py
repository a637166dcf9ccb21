"""Eviction policies, one module each, behind a registry.

Each module defines ``SPEC`` (name, integer code used by the Numba engine, whether it is an
online policy, a one-line description) and its Numba pieces. LRU and FIFO are *list*
policies (a linked list in arrays, in the engine). LFU, prefix-LRU and Belady are *priority*
policies: the engine keeps the tier in an indexed min-heap and evicts the block with the
smallest key, which the policy computes from per-block state (``key(...)``) when a block
enters a tier and on every hit. S3-FIFO is a queue policy with its own kernels
(``s3fifo.py``). ``get(name)`` raises UnknownNameError listing the valid names.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import UnknownNameError


@dataclass(frozen=True)
class PolicySpec:
    name: str
    code: int
    online: bool
    refresh_on_hit: bool
    description: str


from . import belady, fifo, lfu, lru, prefix_lru, s3fifo  # noqa: E402

_REGISTRY: dict[str, PolicySpec] = {m.SPEC.name: m.SPEC for m in (lru, fifo, lfu, s3fifo, prefix_lru, belady)}

# Codes, shared with kernels/replay.py.
LRU, FIFO, LFU, S3FIFO, PREFIX_LRU, BELADY = (lru.SPEC.code, fifo.SPEC.code, lfu.SPEC.code,
                                              s3fifo.SPEC.code, prefix_lru.SPEC.code, belady.SPEC.code)


def names() -> list[str]:
    return list(_REGISTRY)


def online_names() -> list[str]:
    return [n for n, s in _REGISTRY.items() if s.online]


def get(name: str) -> PolicySpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(f"unknown policy '{name}'", field="policy",
                               hint="valid policies: " + ", ".join(_REGISTRY)) from None


__all__ = ["PolicySpec", "names", "online_names", "get"]
