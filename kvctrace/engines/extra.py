"""The optional Ray extra: its one import, and the one-line error when it is missing.

Its own module so that both ``engines`` and ``engines.ray_engine`` use it without importing
each other."""
from __future__ import annotations

import importlib

from ..errors import KvctraceError


class MissingExtraError(KvctraceError):
    """An optional dependency (an extra) that a requested feature needs is not installed."""


def _import_ray():
    """Import Ray (the one import of it in kvctrace; tests replace this to simulate its absence)."""
    return importlib.import_module("ray")


def require_ray():
    """The ``ray`` module, or ``MissingExtraError`` when the extra is not installed."""
    try:
        return _import_ray()
    except ImportError:
        raise MissingExtraError("--engine ray needs the 'ray' extra",
                                hint="pip install 'kvctrace[ray]'") from None
