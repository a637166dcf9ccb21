"""Replay configurations on an engine (kvctrace/engines): the sweep's kernel one configuration
per Ray task, and the replay study one ``replay`` per task.

Both put the trace's arrays into Ray's object store once per trace (``put_once``; workers read
them zero-copy) and run one task per replay configuration rather than per batch: the replays
of one grid differ several-fold in cost (a heap policy or four tiers against a one-tier FIFO),
so one-config tasks let Ray balance them across workers, and a task's overhead (about a
millisecond) is small against a replay of a real trace (tens of milliseconds on the smallest
Mooncake trace, seconds on a fleet's). Results are gathered in input order.

Bit-for-bit equality with the local engine holds by construction: a task calls the same
kernel (the sweep's, passed by name) or the same ``replay`` function on the same arrays, for
one configuration; each configuration's replay is independent of the others and
deterministic.
"""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np

from ..engines import check_engine, map_ordered
from ..trace import Trace
from .engine import HitCounts, replay


def kernel_ref(kernel) -> tuple[str, str]:
    """(module, name) of a Numba kernel: workers import it by name, which loads its compiled
    code from the Numba cache (a pickled dispatcher would be rebuilt from its source)."""
    fn = getattr(kernel, "py_func", kernel)
    return fn.__module__, fn.__name__


def _resolve(ref: tuple[str, str]):
    module, name = ref
    return getattr(importlib.import_module(module), name)


def _grid_task(offsets, blocks, next_use, ref, n_unique, caps, codes, admit, flags):
    """Hit counts of one sweep configuration (rows of length one): the sweep's kernel on it."""
    out = HitCounts.empty(offsets.shape[0] - 1, caps.shape[1], configs=(1,))
    _resolve(ref)(offsets, blocks, np.int64(n_unique), next_use, caps, codes, admit, *flags, *out.arrays())
    return out.arrays()


def replay_grid(kernel, offsets, blocks, n_unique, next_use, caps, codes, admit, flags, outputs) -> None:
    """What ``kernel(offsets, blocks, n_unique, next_use, caps, codes, admit, *flags,
    *outputs)`` computes for the rows of ``caps``/``codes``/``admit`` (one configuration per
    row), as one Ray task per row; fills ``outputs`` (leading axis: the rows)."""
    from ..engines.ray_engine import put_once
    # next_use is a function of the block ids: keyed by them, it too goes in once per trace
    shared = (put_once("offsets", offsets), put_once("blocks", blocks), put_once("next_use", blocks, lambda: next_use))
    ref = kernel_ref(kernel)
    payloads = [(ref, int(n_unique), caps[c:c + 1], codes[c:c + 1], admit[c:c + 1], tuple(flags))
                for c in range(caps.shape[0])]
    for c, arrays in enumerate(map_ordered("ray", _grid_task, payloads, shared=shared)):
        for dst, src in zip(outputs, arrays):
            dst[c] = src[0]


# The Trace fields a replay reads as arrays; the database connection stays with the driver.
_ARRAY_FIELDS = ("offsets", "blocks", "ts", "input_len", "output_len")


def _replay_task(offsets, blocks, ts, input_len, output_len, config, facts: dict):
    trace = Trace(con=None, offsets=offsets, blocks=blocks, ts=ts, input_len=input_len,
                  output_len=output_len, **facts)
    return replay(trace, config)


def replay_many(trace: Trace, configs, engine: str = "local") -> list:
    """``[replay(trace, c) for c in configs]``, on ``engine`` (results in the same order)."""
    if check_engine(engine) == "local":
        return [replay(trace, c) for c in configs]
    from ..engines.ray_engine import put_once
    shared = tuple(put_once(name, getattr(trace, name)) for name in _ARRAY_FIELDS)
    facts = {f.name: getattr(trace, f.name) for f in dataclasses.fields(Trace)
             if f.name not in _ARRAY_FIELDS + ("con",)}
    return map_ordered(engine, _replay_task, [(c, facts) for c in configs], shared=shared)
