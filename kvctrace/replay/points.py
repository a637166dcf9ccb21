"""Replay and price a list of sweep points: the shared machinery of ``sweep`` and ``recommend``.

A *point* is (policy on every tier, top-tier admission threshold, capacity per tier in blocks).
Hit counts do not depend on the index model, so each point is replayed once and priced under
every index model asked for.

Work shared between points, and results kept exact:
* every point whose tiers are all LRU with admission 1 (exclusive hierarchy with promotion and
  demotion) comes from one stack-distance pass (kernels/stack_replay.py): the distances are
  computed once per trace and each such point costs a scan, not a replay;
* the other points run the engine's kernel, several at once in a Numba ``prange``
  (``workers="threads"``, shared read-only trace arrays) or a fork pool (``"processes"``),
  batched so that the replays running together keep their per-block state under
  ``STATE_BUDGET_BYTES`` (a heap or S3-FIFO replay of a 13M-block trace holds 1-2 GB);
* ``next_use`` (Belady's and prefix-LRU's input) is computed once per trace.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..kernels import policies
from .engine import HitCounts

CHUNK_BYTES = 256 * 2**20         # per-request hit arrays held at once during a sweep
STATE_BUDGET_BYTES = 2 * 2**30    # per-block replay state of the replays running at once


@dataclass(frozen=True)
class Point:
    policy: str
    admission: int
    caps: tuple[int, ...]

    @property
    def stack_exact(self) -> bool:
        """Replayed exactly from stack distances (all-LRU, admission 1)."""
        return self.policy == "lru" and self.admission == 1


@dataclass
class TraceArrays:
    """The trace's arrays a sweep reads, and the per-trace work the points share."""
    offsets: np.ndarray
    blocks: np.ndarray
    n_unique: int
    flags: tuple            # (inclusive, promote, demote)
    _next_use: np.ndarray | None = None
    _dist: np.ndarray | None = None

    @property
    def stack_ok(self) -> bool:
        """The hierarchy is one LRU stack (exclusive, promote and demote on)."""
        return self.flags == (False, True, True)

    def next_use(self) -> np.ndarray:
        if self._next_use is None:
            from ..kernels import replay as K
            self._next_use = K.next_use(self.blocks, np.int64(self.n_unique))
        return self._next_use

    def distances(self) -> np.ndarray:
        if self._dist is None:
            from ..kernels.reuse import stack_distances
            self._dist = stack_distances(self.blocks, self.n_unique)
        return self._dist


def state_bytes(n_unique: int, codes) -> int:
    """Per-block state one replay of tiers with policy ``codes`` allocates (kernels/replay.py
    ``_new_state``): 48 bytes of block fields, plus per tier 8 (LIST links), 24 (HEAP position
    and heap arrays) or 32 (OWN fields)."""
    per_tier = {"list": 8, "heap": 24, "own": 32}
    family = {p.code: p.family for p in map(policies.get, policies.names())}
    return int(n_unique) * (48 + sum(per_tier[family[int(c)]] for c in codes))


def batches(n_unique: int, codes: np.ndarray, budget: int = STATE_BUDGET_BYTES) -> list[np.ndarray]:
    """Row indices of ``codes`` in consecutive runs whose summed replay state stays under
    ``budget`` (a row over the budget runs by itself)."""
    out, cur, used = [], [], 0
    for i in range(codes.shape[0]):
        need = state_bytes(n_unique, codes[i])
        if cur and used + need > budget:
            out.append(np.array(cur, np.int64))
            cur, used = [], 0
        cur.append(i)
        used += need
    if cur:
        out.append(np.array(cur, np.int64))
    return out


def _kernel_rows(ta: TraceArrays, caps, codes, admit, workers: str, engine: str) -> HitCounts:
    """Hit counts for rows of caps/codes/admit with the engine's kernel (leading config axis)."""
    from ..kernels import replay as K
    R, T = caps.shape
    out = HitCounts.empty(ta.offsets.shape[0] - 1, T, configs=(R,))
    nu = ta.next_use()
    if engine == "ray":  # one Ray task per config, the same kernel (replay/distributed.py)
        from .distributed import replay_grid
        replay_grid(K.replay_tiers_many, ta.offsets, ta.blocks, ta.n_unique, nu, caps, codes, admit, ta.flags,
                    out.arrays())
        return out
    if workers == "processes" and R > 1:
        _run_processes(ta, nu, caps, codes, admit, out)
        return out
    K.replay_tiers_many(ta.offsets, ta.blocks, np.int64(ta.n_unique), nu, caps, codes, admit, *ta.flags,
                        *out.arrays())
    return out


def _process_chunk(payload):
    from ..kernels import replay as K
    offsets, blocks, n_unique, nu, caps, codes, admit, flags = payload
    R, T = caps.shape
    res = HitCounts.empty(offsets.shape[0] - 1, T, configs=(R,)).arrays()
    for c in range(R):
        K.replay_tiers(offsets, blocks, np.int64(n_unique), nu, caps[c], codes[c], admit[c], *flags,
                       *(a[c] for a in res))
    return res


def _run_processes(ta: TraceArrays, nu, caps, codes, admit, out: HitCounts):
    """Same as the prange kernel, with a fork-based process pool (one chunk per core)."""
    import multiprocessing as mp
    n = min(os.cpu_count() or 1, caps.shape[0])
    chunks = np.array_split(np.arange(caps.shape[0]), n)
    payloads = [(ta.offsets, ta.blocks, ta.n_unique, nu, caps[ix], codes[ix], admit[ix], ta.flags) for ix in chunks]
    with mp.get_context("fork").Pool(n) as pool:
        for ix, res in zip(chunks, pool.map(_process_chunk, payloads)):
            for dst, src in zip(out.arrays(), res):
                dst[ix] = src


def _stack_rows(ta: TraceArrays, caps: np.ndarray) -> HitCounts:
    from ..kernels.stack_replay import cumulative, lru_tiers_from_distances
    R, T = caps.shape
    out = HitCounts.empty(ta.offsets.shape[0] - 1, T, configs=(R,))
    lru_tiers_from_distances(ta.offsets, ta.blocks, ta.distances(), cumulative(caps), *out.arrays())
    return out


def point_arrays(points: list[Point]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(caps, policy codes, admission thresholds) of ``points``, one row each."""
    T = len(points[0].caps)
    caps = np.array([p.caps for p in points], np.int64).reshape(len(points), T)
    codes = np.array([[policies.get(p.policy).code] * T for p in points], np.int64).reshape(len(points), T)
    admit = np.ones((len(points), T), np.int64)
    admit[:, 0] = [p.admission for p in points]
    return caps, codes, admit


def replay_points(ta: TraceArrays, points: list[Point], workers: str = "threads", engine: str = "local",
                  on_done=None):
    """Yield (start index, HitCounts of ``points[start:start+n]``) in order, every point exact:
    stack-distance points on the local engine through one scan each, the others through the
    engine's kernel in memory-bounded batches. ``on_done(n)`` is told after each batch."""
    n_req = ta.offsets.shape[0] - 1
    per_cfg = max(n_req * (len(points[0].caps) * 8 + 9), 1) if points else 1
    chunk = max(int(CHUNK_BYTES // per_cfg), os.cpu_count() or 1)
    stack = ta.stack_ok and engine == "local"
    i = 0
    while i < len(points):
        fast = stack and points[i].stack_exact
        j = i
        while j < len(points) and j - i < chunk and (stack and points[j].stack_exact) == fast:
            j += 1
        caps, codes, admit = point_arrays(points[i:j])
        if fast:
            yield i, _stack_rows(ta, caps)
            if on_done:
                on_done(j - i)
        else:
            for rows in batches(ta.n_unique, codes):
                yield i + int(rows[0]), _kernel_rows(ta, caps[rows], codes[rows], admit[rows], workers, engine)
                if on_done:
                    on_done(len(rows))
        i = j
