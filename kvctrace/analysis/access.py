"""Sequential vs random block access inside requests (paper Fig. 2).

Definitions are those of ``kvctrace.kernels.runs`` (docs/metrics.md "Sequential vs random access"):
a block is sequential when it lies in a run of >= 2 consecutive dense ids within its request.

Two readings of "sequential share", both reported:
* ``sequential_share_mean_per_request``: mean over requests (with >= 1 block) of
  sequential blocks / blocks in the request;
* ``sequential_share_blocks``: all sequential blocks / all block accesses (block-weighted).

Runs test: ``runs_test_share_p_gt_0_05`` = tested requests with p > 0.05 / tested requests.
Its denominator excludes requests with fewer than ``min_ids`` non-sequential ids and degenerate
ones (all ids on one side of the median, or zero variance); both counts are in the summary.
Median ties are dropped; the second reading ``..._ge_median`` splits at >= median instead
(statsmodels' ``runstest_1samp(cutoff="median", correction=False)``), with its own count of
tested requests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..errors import ConfigError, NoBlockIdsError
from ..kernels.runs import RUNS_TEST_DEGENERATE, RUNS_TEST_TESTED, RUNS_TEST_TOO_FEW, run_stats_and_test
from ..results import ResultMixin  # to_json() and the Jupyter rendering of summary()
from .columns import null_nan

RUNS_TEST_STATUS_NAMES = {RUNS_TEST_TESTED: "tested", RUNS_TEST_TOO_FEW: "too_few_ids",
                          RUNS_TEST_DEGENERATE: "degenerate"}


def require_block_ids(trace, analysis: str) -> None:
    """Raise NoBlockIdsError for lengths-only traces (shared by the block-level analyses)."""
    if not trace.has_block_ids:
        raise NoBlockIdsError(
            f"{analysis} needs block ids, and this trace has none (lengths only)",
            path=trace.path, hint="workload statistics (analyze_workload) still apply")


def _float_or_none(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


@dataclass(frozen=True)
class AccessResult(ResultMixin):
    """Per-request access pattern, run-length distribution and headline shares."""
    per_request: pl.DataFrame   # one row per request, see analyze_access
    run_lengths: pl.DataFrame   # run_length, runs, blocks, share_of_runs, share_of_blocks
    sequential_share_mean_per_request: float | None
    sequential_share_blocks: float | None
    runs_test_share_p_gt_0_05: float | None
    runs_test_requests_tested: int
    runs_test_requests_too_few_ids: int
    runs_test_requests_degenerate: int
    runs_test_min_ids: int
    runs_test_share_p_gt_0_05_ge_median: float | None   # second reading: split at >= median
    runs_test_requests_tested_ge_median: int
    requests_without_blocks: int
    point_lookups: int
    range_scans: int
    range_scan_blocks: int

    def summary(self) -> dict:
        return {
            "sequential_share_mean_per_request": self.sequential_share_mean_per_request,
            "sequential_share_blocks": self.sequential_share_blocks,
            "runs_test_share_p_gt_0_05": self.runs_test_share_p_gt_0_05,
            "runs_test_share_denominator": "requests tested (>= min_ids non-sequential ids, "
                                           "not degenerate)",
            "runs_test_requests_tested": self.runs_test_requests_tested,
            "runs_test_requests_too_few_ids": self.runs_test_requests_too_few_ids,
            "runs_test_requests_degenerate": self.runs_test_requests_degenerate,
            "runs_test_min_ids": self.runs_test_min_ids,
            "runs_test_share_p_gt_0_05_ge_median": self.runs_test_share_p_gt_0_05_ge_median,
            "runs_test_requests_tested_ge_median": self.runs_test_requests_tested_ge_median,
            "requests_without_blocks": self.requests_without_blocks,
            "point_lookups": self.point_lookups,
            "range_scans": self.range_scans,
            "range_scan_blocks": self.range_scan_blocks,
            "mean_runs_per_request": _float_or_none(self.per_request["n_runs"].mean())
            if self.per_request.height else None,
        }


def analyze_access(trace, *, min_ids: int = 4) -> AccessResult:
    """Sequential vs random access for every request of ``trace``.

    The block ids are read a chunk of whole requests at a time (``trace.access_chunks()``),
    so a store opened in chunks is analyzed without holding its accesses.

    ``min_ids``: a request enters the runs test only with at least this many non-sequential
    ids (default 4: below that, dropping the median tie leaves at most n1 = n2 = 1, whose
    variance is zero, so no test is possible anyway).

    ``per_request`` columns: req_id, n_blocks, n_sequential, sequential_share (null for empty
    requests), n_runs, n_point, n_range, longest_run, n_nonsequential, runs_test_runs,
    runs_test_z, runs_test_p (null unless tested), runs_test_status.
    """
    require_block_ids(trace, "the access-pattern analysis")
    if int(min_ids) < 2:
        raise ConfigError(f"min_ids={min_ids} is too small", field="min_ids",
                          hint="a runs test needs at least 2 ids; the default is 4")
    # per request, so one pass over the ids a chunk of requests at a time: a store bigger
    # than memory streams through, a trace in memory is one chunk of its arrays
    runs, test = run_stats_and_test(trace.access_chunks(), trace.offsets, min_ids=int(min_ids))
    req_id, n_blocks = trace.request_columns()  # shared with the other per-request frames
    nonempty = n_blocks > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(nonempty, runs.n_sequential / np.maximum(n_blocks, 1), np.nan)

    # an Enum column: one byte per request, where strings take 16 and more
    status_names = [RUNS_TEST_STATUS_NAMES[i] for i in range(3)]
    per_request = pl.DataFrame({
        "req_id": req_id,
        "n_blocks": n_blocks,
        "n_sequential": runs.n_sequential,
        "sequential_share": null_nan(share),
        "n_runs": runs.n_runs,
        "n_point": runs.n_point,
        "n_range": runs.n_range,
        "longest_run": runs.longest_run,
        "n_nonsequential": test.n_ids,
        "runs_test_runs": test.n_sign_runs,
        "runs_test_z": null_nan(test.z),
        "runs_test_p": null_nan(test.p),
        "runs_test_status": pl.Series(status_names, dtype=pl.Enum(status_names)).gather(test.status),
        "runs_test_p_ge_median": null_nan(test.p_ge_median),
    })

    by_length = runs.runs_by_length
    lengths = np.flatnonzero(by_length)
    counts = by_length[lengths]
    total_runs = max(int(counts.sum()), 1)
    total_blocks = max(int((lengths * counts).sum()), 1)
    run_lengths = pl.DataFrame({"run_length": lengths.astype(np.int64),
                                "runs": counts.astype(np.int64),
                                "blocks": (lengths * counts).astype(np.int64)}).with_columns(
        share_of_runs=pl.col("runs") / total_runs,
        share_of_blocks=pl.col("blocks") / total_blocks)

    tested = test.status == RUNS_TEST_TESTED
    n_tested = int(tested.sum())
    tested_ge = test.status_ge_median == RUNS_TEST_TESTED
    n_tested_ge = int(tested_ge.sum())
    n_acc = int(n_blocks.sum())
    return AccessResult(
        per_request=per_request,
        run_lengths=run_lengths,
        sequential_share_mean_per_request=float(share[nonempty].mean()) if nonempty.any() else None,
        sequential_share_blocks=float(runs.n_sequential.sum() / n_acc) if n_acc else None,
        runs_test_share_p_gt_0_05=float((test.p[tested] > 0.05).mean()) if n_tested else None,
        runs_test_requests_tested=n_tested,
        runs_test_requests_too_few_ids=int((test.status == RUNS_TEST_TOO_FEW).sum()),
        runs_test_requests_degenerate=int((test.status == RUNS_TEST_DEGENERATE).sum()),
        runs_test_min_ids=int(min_ids),
        runs_test_share_p_gt_0_05_ge_median=(
            float((test.p_ge_median[tested_ge] > 0.05).mean()) if n_tested_ge else None),
        runs_test_requests_tested_ge_median=n_tested_ge,
        requests_without_blocks=int((~nonempty).sum()),
        point_lookups=int(runs.n_point.sum()),
        range_scans=int(runs.n_range.sum()),
        range_scan_blocks=int(runs.n_sequential.sum()),
    )
