"""Replay and price a list of sweep points: the shared machinery of ``sweep`` and ``recommend``.

A *point* is (policy on every tier, top-tier admission threshold, capacity per tier in blocks).
Hit counts do not depend on the index model, so each point is replayed once and priced under
every index model asked for.

Work shared between points, and results kept exact:
* every point whose tiers are all LRU with admission 1 (exclusive hierarchy with promotion and
  demotion) comes from one stack-distance pass (kernels/stack_replay.py): the distances are
  computed once per trace and each such point costs a scan, not a replay (on the driver, also
  when the engine is Ray: the scan is cheaper than shipping a task);
* the other points run the engine's kernel, several at once in a Numba ``prange``
  (``workers="threads"``, shared read-only trace arrays) or a fork pool (``"processes"``),
  batched so that the replays running together keep their per-block state under
  ``STATE_BUDGET_BYTES`` (a replay of a 13M-block trace holds 0.5-1 GB);
* ``next_use`` (Belady's and prefix-LRU's input) is computed once per trace.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..kernels import policies
from ..kernels.policies import dispatch
from ..kernels.policies.state import B_FIELDS, HEAP_FIELDS, LIST_FIELDS, row_itemsize
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
        """Index of each access's next access to its block (``kernels.replay.next_use_for_rows``:
        int32 when every value fits, and the engine's per-block rows with it)."""
        if self._next_use is None:
            from ..kernels import replay as K
            self._next_use = K.next_use_for_rows(self.blocks, self.n_unique)
        return self._next_use

    def distances(self) -> np.ndarray:
        if self._dist is None:
            from ..kernels.reuse import stack_distances
            self._dist = stack_distances(self.blocks, self.n_unique)
        return self._dist

    def drop_distances(self) -> None:
        """Free the stack distances (4 bytes per access) once no stack-distance point is left."""
        self._dist = None


def state_bytes(n_unique: int, codes, caps, itemsize: int) -> int:
    """Bytes one replay of tiers with policy ``codes`` and capacities ``caps`` allocates
    (kernels/replay.py ``_new_state``): one row of ``itemsize``-byte fields per block, its
    block fields plus per tier the fields of the tier's family (kernels/policies/state.py),
    and for HEAP tiers their heaps (16 bytes per slot, sized by the largest HEAP tier)."""
    family = {p.code: p.family for p in map(policies.get, policies.names())}
    fams = [family[int(c)] for c in codes]
    fields = {"list": LIST_FIELDS, "heap": HEAP_FIELDS, "own": dispatch.OWN_FIELDS}
    per_block = itemsize * (B_FIELDS + sum(fields[f] for f in fams))
    heaps = [min(int(c), int(n_unique)) for f, c in zip(fams, caps) if f == "heap"]
    return int(n_unique) * per_block + (16 * len(heaps) * max(heaps) if heaps else 0)


def batches(need: list[int], at_once: int, budget: int | None = None) -> list[np.ndarray]:
    """Indices of ``need`` (the state bytes of each replay) in groups, each group run by
    ``at_once`` threads or processes taking one replay at a time, so that at most
    ``at_once`` of a group's replays hold their state together: a group's ``at_once`` largest
    needs stay under ``budget`` (a replay over it runs alone). Replays are taken largest
    first, each into the first group it fits (first-fit decreasing): small replays share a
    group, and large ones do not wait for each other in one."""
    budget = STATE_BUDGET_BYTES if budget is None else budget
    groups: list[list[int]] = []
    used: list[int] = []     # the sum of each group's ``at_once`` largest needs
    for i in sorted(range(len(need)), key=lambda i: (-need[i], i)):
        # taken largest first: a group with ``at_once`` members already has its largest ones
        g = next((k for k in range(len(groups))
                  if len(groups[k]) >= at_once or used[k] + need[i] <= budget), None)
        if g is None:
            groups.append([])
            used.append(0)
            g = len(groups) - 1
        if len(groups[g]) < at_once:
            used[g] += need[i]
        groups[g].append(i)
    return [np.array(sorted(g), np.int64) for g in groups]


def _at_once(workers: str, engine: str) -> int:
    """How many replays the engine runs together: Numba's threads, else one per core."""
    if workers == "threads" and engine == "local":
        import numba
        return numba.get_num_threads()
    return os.cpu_count() or 1


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
    import numba
    # one config per scheduling chunk: configs differ several-fold in cost, and a static split
    # of the prange would leave one thread waiting for the other (identical results either way)
    with numba.parallel_chunksize(1):
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
                  on_done=None, last_stack: bool = False):
    """Yield (indices into ``points``, HitCounts of those points) until every point is done,
    each exact: stack-distance points through one scan each (here, whatever the engine), the others
    through the engine's kernel in memory-bounded groups (``batches``). ``on_done(n)`` is told
    after each group; ``last_stack``: no stack-distance point comes after these, so the
    distances are freed before the engine's replays."""
    if not points:
        return
    n_req = ta.offsets.shape[0] - 1
    chunk = max(int(CHUNK_BYTES // max(n_req * (len(points[0].caps) * 8 + 9), 1)), os.cpu_count() or 1)
    stack = ta.stack_ok      # (on any engine: a scan of arrays already here, cheaper than shipping a task)
    fast = [i for i, p in enumerate(points) if stack and p.stack_exact]
    slow = [i for i, p in enumerate(points) if not (stack and p.stack_exact)]
    for lo in range(0, len(fast), chunk):
        idx = np.array(fast[lo:lo + chunk], np.int64)
        yield idx, _stack_rows(ta, point_arrays([points[i] for i in idx])[0])
        if on_done:
            on_done(idx.shape[0])
    if last_stack:
        ta.drop_distances()
    for lo in range(0, len(slow), chunk):
        part = np.array(slow[lo:lo + chunk], np.int64)
        caps, codes, admit = point_arrays([points[i] for i in part])
        itemsize = row_itemsize(ta.blocks.shape[0])
        need = [state_bytes(ta.n_unique, codes[i], caps[i], itemsize) for i in range(part.shape[0])]
        for rows in batches(need, _at_once(workers, engine)):
            yield part[rows], _kernel_rows(ta, caps[rows], codes[rows], admit[rows], workers, engine)
            if on_done:
                on_done(rows.shape[0])
