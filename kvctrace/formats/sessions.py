"""Separate conversations on one time line (``--session-start``, ``--seed``).

A reader of separate conversations (kv-cache-tester) gives every request its conversation
(``Columns.conversation``) and a time counted from that conversation's start;
``place_sessions`` shifts each conversation by its start time: ``zero`` (all at 0),
``stagger:S`` (conversation k starts at k*S s), ``poisson:R`` (starts form a Poisson process of
R conversations per second from 0, seeded by ``--seed``). Default: Poisson at ``(K - 1) / D``
for K conversations whose longest lasts D seconds, so the last one is expected to start when the
longest would end and the trace lasts about one to two times the longest conversation.
Conversations are started in input order."""
from __future__ import annotations

import numpy as np

from ..errors import TraceFormatError
from .common import Columns


def _session_spec(spec: str | None) -> tuple[str, float]:
    hint = "use zero, stagger:SECONDS or poisson:RATE_PER_S, e.g. poisson:0.05"
    if spec is None:
        return "default", 0.0
    kind, _, value = spec.strip().partition(":")
    if kind == "zero" and not value:
        return "zero", 0.0
    if kind in ("stagger", "poisson"):
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if number > 0 and np.isfinite(number) or (kind == "stagger" and number == 0):
            return kind, number
    raise TraceFormatError(f"cannot read --session-start {spec!r}", field="--session-start", hint=hint)


def session_starts(durations: np.ndarray, spec: str | None, seed: int = 0) -> np.ndarray:
    """Start time (s) of each conversation on the shared time line (see the module doc)."""
    kind, value = _session_spec(spec)
    k = durations.shape[0]
    if kind == "zero" or k == 0:
        return np.zeros(k)
    if kind == "stagger":
        return np.arange(k, dtype=np.float64) * value
    if kind == "default":
        longest = float(durations.max())
        if k == 1 or longest <= 0:
            return np.zeros(k)
        value = (k - 1) / longest
    gaps = np.random.default_rng(seed).exponential(1.0 / value, k - 1)
    return np.concatenate(([0.0], np.cumsum(gaps)))


def place_sessions(cols: Columns, spec: str | None, seed: int = 0) -> Columns:
    """Shift each conversation's requests by its start time (``cols.conversation`` says which
    conversation a request belongs to; its ``ts`` counts from that conversation's start)."""
    if cols.conversation is None:
        if spec is not None:
            raise TraceFormatError(f"--session-start applies to traces of separate conversations "
                                   f"(kv-cache-tester), not to a {cols.format} trace", field="--session-start",
                                   hint="drop --session-start")
        return cols
    conv = cols.conversation
    k = int(conv.max()) + 1 if conv.shape[0] else 0
    durations = np.zeros(k)
    np.maximum.at(durations, conv, cols.ts)
    cols.ts = cols.ts + session_starts(durations, spec, seed)[conv]
    return cols
