"""Runs of consecutive block ids inside requests, and the Wald–Wolfowitz runs test (Numba).

Definitions (docs/metrics.md, "Sequential vs random access"):

* A *run* is a maximal stretch of a request's blocks where each id is the previous id + 1
  (``blocks[i+1] == blocks[i] + 1``, dense first-appearance ids). Every block belongs to exactly
  one run; a run has length >= 1.
* A block is *sequential* when its run has length >= 2, otherwise it is *non-sequential*.
* Lookup plan (input to the replayer's index cost models): a run of length >= 2 is one range
  scan, a run of length 1 (a lone block) is one point lookup. So per request
  ``n_runs = n_point + n_range`` and ``n_point`` equals the number of non-sequential blocks.
* Runs test on a request's non-sequential ids, in position order: values above the request's
  median are "+", below are "-", values equal to the median are dropped (they are neither).
  ``R`` = number of runs of equal signs, ``n1``/``n2`` = counts of "+"/"-", ``N = n1 + n2``;
  ``mu = 2 n1 n2 / N + 1``, ``var = 2 n1 n2 (2 n1 n2 - N) / (N^2 (N - 1))``,
  ``z = (R - mu) / sqrt(var)``, two-sided ``p = erfc(|z| / sqrt 2)`` (normal approximation, no
  continuity correction). A second reading, ``ge_median``, splits at ``>= median`` vs
  ``< median`` instead of dropping ties (statsmodels ``runstest_1samp`` with
  ``cutoff="median", correction=False``); on chained traces a request's ids are distinct, so
  the readings differ only when an odd count puts one id exactly on the median.
  A request is *excluded* (status ``TOO_FEW``) when it has fewer than
  ``min_ids`` non-sequential ids, and (status ``DEGENERATE``) when after dropping median ties
  one side is empty or the variance is zero (e.g. n1 = n2 = 1).

``run_stats_and_test`` gives ``run_stats`` and ``runs_test`` of a trace read a chunk of whole
requests at a time (``Trace.access_chunks``, a store bigger than memory): the kernels write
each chunk's requests into the trace's per-request arrays, which is all the two functions do
with the whole arrays as one chunk.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numba as nb
import numpy as np

from .arrays import RequestCursor, ids, offsets as as_offsets
from .nrt import no_refcount

RUNS_TEST_TESTED = 0
RUNS_TEST_TOO_FEW = 1
RUNS_TEST_DEGENERATE = 2


@nb.njit(cache=True, nogil=True)
def _runs(offsets, blocks):
    n_req = offsets.shape[0] - 1
    n = blocks.shape[0]
    sequential = np.zeros(n, np.bool_)
    n_seq = np.zeros(n_req, np.int64)
    n_point = np.zeros(n_req, np.int64)
    n_range = np.zeros(n_req, np.int64)
    longest = np.zeros(n_req, np.int64)
    run_offsets = np.zeros(n_req + 1, np.int64)
    # Count the runs first (a run starts at each request's first block and at every break in
    # consecutive ids) so the run arrays are allocated at their size, not one slot per block.
    n_runs = 0
    for r in range(n_req):
        if offsets[r + 1] > offsets[r]:
            n_runs += 1
        for t in range(offsets[r] + 1, offsets[r + 1]):
            if blocks[t] != blocks[t - 1] + 1:
                n_runs += 1
    run_start = np.empty(n_runs, np.int64)
    run_len = np.empty(n_runs, np.int64)
    k = 0
    for r in range(n_req):
        s = offsets[r]
        e = offsets[r + 1]
        i = s
        while i < e:
            j = i + 1
            while j < e and blocks[j] == blocks[j - 1] + 1:
                j += 1
            length = j - i
            run_start[k] = i - s
            run_len[k] = length
            k += 1
            if length >= 2:
                n_range[r] += 1
                n_seq[r] += length
                for t in range(i, j):
                    sequential[t] = True
            else:
                n_point[r] += 1
            if length > longest[r]:
                longest[r] = length
            i = j
        run_offsets[r + 1] = k
    return sequential, n_seq, n_point, n_range, longest, run_offsets, run_start, run_len


@nb.njit(cache=True, nogil=True)
def _run_stats_into(offsets, blocks, first, per_req, by_length):
    """``_runs``'s per-request counts, into ``per_req[:, first + r]`` for request r of
    ``offsets``, and the runs per length, added to ``by_length``: no per-access flags or
    per-run arrays, and a trace can come a chunk of requests at a time."""
    for r in range(offsets.shape[0] - 1):
        e = offsets[r + 1]
        i = offsets[r]
        at = first + r
        while i < e:
            j = i + 1
            while j < e and blocks[j] == blocks[j - 1] + 1:
                j += 1
            length = j - i
            by_length[length] += 1
            if length >= 2:
                per_req[2, at] += 1
                per_req[0, at] += length
            else:
                per_req[1, at] += 1
            per_req[3, at] = max(per_req[3, at], length)
            i = j


@no_refcount
def _is_sequential(blocks, s, e, t, sequential):
    """Whether access t (of a request spanning s..e-1) is in a run of >= 2: from ``sequential``,
    or from its neighbours when that is empty."""
    if sequential.shape[0]:
        return sequential[t]
    return (t > s and blocks[t] == blocks[t - 1] + 1) or (t + 1 < e and blocks[t + 1] == blocks[t] + 1)


# _sign_runs and _wald_wolfowitz are called, not inlined: inlined twice into _runs_test they
# made LLVM compile its per-access loop ~9x slower (150 vs 17 ms on 5.75M accesses)
@nb.njit(cache=True, nogil=True)
def _sign_runs(buf, m, med, ties_upper):
    """(n1, n2, runs) of the signs of buf[:m] around med; a value equal to med is dropped, or
    counted as above when ties_upper."""
    n1 = 0
    n2 = 0
    runs = 0
    prev = -1
    for i in range(m):
        v = buf[i]
        if v > med or (ties_upper and v == med):
            c = 1
            n1 += 1
        elif v < med:
            c = 0
            n2 += 1
        else:
            continue
        if c != prev:
            runs += 1
            prev = c
    return n1, n2, runs


@nb.njit(cache=True, nogil=True)
def _wald_wolfowitz(n1, n2, runs):
    """(status, z, p) of the normal approximation."""
    if n1 == 0 or n2 == 0:
        return RUNS_TEST_DEGENERATE, np.nan, np.nan
    nn = float(n1 + n2)
    prod = 2.0 * n1 * n2
    mu = prod / nn + 1.0
    var = prod * (prod - nn) / (nn * nn * (nn - 1.0))
    if var <= 0.0:
        return RUNS_TEST_DEGENERATE, np.nan, np.nan
    zr = (runs - mu) / math.sqrt(var)
    return RUNS_TEST_TESTED, zr, math.erfc(abs(zr) / math.sqrt(2.0))


@nb.njit(cache=True, nogil=True)
def _runs_test_into(offsets, blocks, sequential, min_ids, first, out):
    """The runs test of request r of ``offsets`` into entry ``first + r`` of each array of
    ``out`` (a ``RunsTest`` from ``_no_runs_tested``), so that a trace can come a chunk of
    requests at a time."""
    max_len = 0
    for r in range(offsets.shape[0] - 1):
        if offsets[r + 1] - offsets[r] > max_len:
            max_len = offsets[r + 1] - offsets[r]
    buf = np.empty(max_len, np.float64)
    for r in range(offsets.shape[0] - 1):
        at = first + r
        m = 0
        for t in range(offsets[r], offsets[r + 1]):
            if not _is_sequential(blocks, offsets[r], offsets[r + 1], t, sequential):
                buf[m] = blocks[t]
                m += 1
        out.n_ids[at] = m
        if m < min_ids or m == 0:
            out.status[at] = RUNS_TEST_TOO_FEW
            out.status_ge_median[at] = RUNS_TEST_TOO_FEW
            continue
        med = np.median(buf[:m])
        n1, n2, runs = _sign_runs(buf, m, med, False)
        out.n_above[at] = n1
        out.n_below[at] = n2
        out.n_sign_runs[at] = runs
        st, zr, pr = _wald_wolfowitz(n1, n2, runs)
        out.status[at] = st
        out.z[at] = zr
        out.p[at] = pr
        n1, n2, runs = _sign_runs(buf, m, med, True)
        st, zr, pr = _wald_wolfowitz(n1, n2, runs)
        out.status_ge_median[at] = st
        out.p_ge_median[at] = pr


def _check_csr(offsets, blocks) -> tuple[np.ndarray, np.ndarray]:
    offsets, blocks = as_offsets(offsets), ids(blocks)
    if offsets.ndim != 1 or offsets.shape[0] < 1:
        raise ValueError("offsets must be a 1-d array of n_requests + 1 entries")
    if offsets[0] != 0 or offsets[-1] != blocks.shape[0] or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must start at 0, be non-decreasing and end at len(blocks)")
    return offsets, blocks


class Runs(NamedTuple):
    """Per-access and per-request run structure (see module docstring)."""
    sequential: np.ndarray   # bool per access: in a run of length >= 2
    n_sequential: np.ndarray  # int64 per request: sequential blocks
    n_point: np.ndarray      # int64 per request: runs of length 1 (point lookups)
    n_range: np.ndarray      # int64 per request: runs of length >= 2 (range scans)
    longest_run: np.ndarray  # int64 per request (0 for an empty request)
    run_offsets: np.ndarray  # int64 CSR over runs: request r owns runs run_offsets[r]:run_offsets[r+1]
    run_start: np.ndarray    # int64 per run: position of its first block in the request
    run_len: np.ndarray      # int64 per run

    @property
    def n_runs(self) -> np.ndarray:
        return self.n_point + self.n_range


def find_runs(offsets, blocks) -> Runs:
    """Split every request into maximal runs of consecutive ids."""
    offsets, blocks = _check_csr(offsets, blocks)
    return Runs(*_runs(offsets, blocks))


class LookupPlan(NamedTuple):
    """Index operations a request needs to look its blocks up, per request (int64 arrays)."""
    n_runs: np.ndarray        # n_point + n_range
    n_point: np.ndarray       # lone blocks: one point get() each
    n_range: np.ndarray       # runs of >= 2 consecutive ids: one range scan each
    n_range_blocks: np.ndarray  # blocks covered by the range scans (= sequential blocks)


class RunStats(NamedTuple):
    """``Runs`` without the per-access and per-run arrays: per request and per run length."""
    n_sequential: np.ndarray  # int32 per request: sequential blocks
    n_point: np.ndarray      # int32 per request: runs of length 1 (point lookups)
    n_range: np.ndarray      # int32 per request: runs of length >= 2 (range scans)
    longest_run: np.ndarray  # int32 per request (0 for an empty request)
    runs_by_length: np.ndarray  # int64: runs of each length (index = length)

    @property
    def n_runs(self) -> np.ndarray:
        return self.n_point + self.n_range


def _no_runs(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zeroed outputs of ``_run_stats_into`` for the requests of ``offsets``: the four
    per-request counts (int32: they sum to at most the accesses, fewer than 2**31) and the
    runs per length up to the longest request."""
    max_len = int(np.diff(offsets).max()) if offsets.shape[0] > 1 else 0
    return np.zeros((4, offsets.shape[0] - 1), np.int32), np.zeros(max_len + 1, np.int64)


def run_stats(offsets, blocks) -> RunStats:
    """``find_runs``'s per-request counts and the runs per length, in memory per request."""
    offsets, blocks = _check_csr(offsets, blocks)
    per_req, by_length = _no_runs(offsets)
    _run_stats_into(offsets, blocks, 0, per_req, by_length)
    return RunStats(*per_req, by_length)


def request_lookup_plan(offsets, blocks) -> LookupPlan:
    """Point lookups vs range scans per request: a run of >= 2 consecutive ids is one range
    scan, a lone block is one point lookup. For per-run lengths use ``find_runs``."""
    runs = find_runs(offsets, blocks)
    return LookupPlan(runs.n_runs, runs.n_point, runs.n_range, runs.n_sequential)


class RunsTest(NamedTuple):
    """Wald–Wolfowitz runs test per request on its non-sequential ids (module docstring);
    the counts are int32."""
    n_ids: np.ndarray        # non-sequential ids in the request
    n_above: np.ndarray      # n1: ids above the median
    n_below: np.ndarray      # n2: ids below the median
    n_sign_runs: np.ndarray  # R
    z: np.ndarray            # NaN unless status == RUNS_TEST_TESTED
    p: np.ndarray            # two-sided p-value, NaN unless tested
    status: np.ndarray       # int8: RUNS_TEST_TESTED / _TOO_FEW / _DEGENERATE
    # second reading: ids >= median count as above (statsmodels runstest_1samp with
    # cutoff="median", correction=False); same min_ids rule
    p_ge_median: np.ndarray
    status_ge_median: np.ndarray


def runs_test(offsets, blocks, sequential=None, *, min_ids: int = 10) -> RunsTest:
    """Runs test for every request; ``sequential`` (per access, as ``find_runs`` gives it) is
    read off the neighbouring ids if absent (no per-access array)."""
    offsets, blocks = _check_csr(offsets, blocks)
    _check_min_ids(min_ids)
    sequential = np.zeros(0, np.bool_) if sequential is None else np.ascontiguousarray(sequential, dtype=np.bool_)
    if sequential.shape[0] not in (0, blocks.shape[0]):
        raise ValueError("sequential needs one flag per access")
    test = _no_runs_tested(offsets.shape[0] - 1)
    _runs_test_into(offsets, blocks, sequential, int(min_ids), 0, test)
    return test


def _check_min_ids(min_ids: int) -> None:
    if min_ids < 2:
        raise ValueError("min_ids must be >= 2: a runs test needs at least two values")


def _no_runs_tested(n_requests: int) -> RunsTest:
    """``_runs_test_into``'s outputs before any request is tested: counts 0, z and p NaN."""
    counts = [np.zeros(n_requests, np.int32) for _ in range(4)]
    z, p, p_ge = (np.full(n_requests, np.nan) for _ in range(3))
    return RunsTest(*counts, z, p, np.zeros(n_requests, np.int8), p_ge, np.zeros(n_requests, np.int8))


def run_stats_and_test(chunks: Iterable[tuple], offsets, *, min_ids: int = 10) -> tuple[RunStats, RunsTest]:
    """``run_stats`` and ``runs_test`` (the sequential flags read off the neighbouring ids)
    of the trace with CSR ``offsets`` whose block ids come as ``chunks`` of whole requests
    ((first request, offsets, ids) each: ``Trace.access_chunks``): in one pass over them, each chunk's results written in place
    into the per-request arrays, so nothing per access outlives a chunk. Identical to the two
    functions on the whole arrays (a trace in memory is one chunk)."""
    _check_min_ids(min_ids)
    requests = RequestCursor(trace_offsets=offsets)
    per_req, by_length = _no_runs(requests.offsets)
    test = _no_runs_tested(requests.n_requests)
    no_flags = np.zeros(0, np.bool_)
    for chunk in chunks:
        first = requests.next_request
        chunk_offsets, blocks = requests.take(chunk)
        _run_stats_into(chunk_offsets, blocks, first, per_req, by_length)
        _runs_test_into(chunk_offsets, blocks, no_flags, int(min_ids), first, test)
    requests.check_done()
    return RunStats(*per_req, by_length), test
