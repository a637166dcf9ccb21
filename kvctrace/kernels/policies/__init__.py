"""Eviction policies as plugins: one module per policy (its ``SPEC`` and its Numba hooks,
spec.py says which), and this registry, the one place that names them and gives them codes.

A policy's code is its position in ``MODULES``: the integer the replay kernels receive per
tier. The engine (kernels/replay.py) reaches the hooks through dispatch.py, which is generated
from ``MODULES`` (``python -m kvctrace.kernels.policies.codegen``; a test fails when it is
stale). Adding a policy: write its module, append it to ``MODULES``, regenerate dispatch.py,
and give it a naive twin in tests/naive/policies.py.

Numba caches a compiled kernel keyed on the source file of the kernel itself, not of the hooks
it inlines: after editing a policy module, delete the ``*.nbi`` / ``*.nbc`` files under
kvctrace/kernels/__pycache__ (or set NUMBA_CACHE_DIR to a fresh folder).
"""
from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

from ...errors import UnknownNameError
from . import belady, fifo, lfu, lru, prefix_lru, s3fifo, sieve
from .spec import FAMILY_NAMES, PolicySpec

MODULES: tuple[ModuleType, ...] = (lru, fifo, lfu, s3fifo, prefix_lru, belady, sieve)


class Policy(NamedTuple):
    """A registered policy: its spec, its code and its module."""
    name: str
    code: int
    online: bool
    family: str
    description: str
    module: ModuleType


def _register(modules) -> dict[str, Policy]:
    registry: dict[str, Policy] = {}
    for code, m in enumerate(modules):
        spec: PolicySpec = m.SPEC
        if spec.name in registry:
            raise ValueError(f"policy name '{spec.name}' registered twice")
        registry[spec.name] = Policy(spec.name, code, spec.online, FAMILY_NAMES[spec.family],
                                     spec.description, m)
    return registry


_REGISTRY = _register(MODULES)


def names() -> list[str]:
    """Every registered policy, in code order."""
    return list(_REGISTRY)


def online_names() -> list[str]:
    """The policies a real cache can run (the recommend sweep's default): all but the
    offline bounds that need the future."""
    return [n for n, p in _REGISTRY.items() if p.online]


def get(name: str) -> Policy:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(f"unknown policy '{name}'", field="policy",
                               hint="valid policies: " + ", ".join(_REGISTRY)) from None


def code(name: str) -> int:
    return get(name).code


__all__ = ["MODULES", "Policy", "PolicySpec", "names", "online_names", "get", "code"]
