"""Run every analysis on a trace and build the summary (the body of ``summary.json``).

``analyze(trace)`` returns an ``AnalysisResult`` holding every result object (for charts,
reports and notebooks); ``AnalysisResult.summary()`` is a JSON-able dict with one section per
analysis. A lengths-only trace (no block ids) gets the trace and workload sections, and each
block-level section says why it could not be measured instead of failing.
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import NoBlockIdsError
from ..formats.prompts import text_facts
from ..store import release_freed_memory
from ..trace import Trace
from .access import AccessResult, analyze_access
from .hotness import HotnessResult, analyze_hotness
from .reuse import ReuseResult, analyze_reuse

from .prefix import PrefixResult, analyze_prefix

from .workload import WorkloadResult, analyze_workload
from ..report.html_repr import SummaryHtmlMixin  # Jupyter rendering of summary()

BLOCK_LEVEL = ("reuse", "access", "hotness", "prefix")


@dataclass(frozen=True)
class AnalysisResult(SummaryHtmlMixin):
    """Every analysis of one trace. A section is ``None`` when it could not be measured; the
    reason is in ``unavailable[section]``."""
    trace: Trace = field(repr=False)
    reuse: ReuseResult | None = field(repr=False, default=None)
    access: AccessResult | None = field(repr=False, default=None)
    hotness: HotnessResult | None = field(repr=False, default=None)
    prefix: PrefixResult | None = field(repr=False, default=None)
    workload: WorkloadResult | None = field(repr=False, default=None)
    unavailable: dict = field(default_factory=dict)
    timings_s: dict = field(default_factory=dict)  # wall time per analysis (not in summary)

    def summary(self) -> dict:
        """JSON-able summary: ``trace``, ``reuse``, ``mrc``, ``access``, ``hotness``,
        ``prefix``, ``workload`` (a missing section is ``{"available": false, "reason": ...}``;
        ``mrc`` is then ``null``)."""
        tr = self.trace
        out: dict = {
            "kvctrace_version": __version__,
            "trace": {
                "path": str(tr.path), "format": tr.format, "block_size": int(tr.block_size),
                "requests": tr.n_requests, "accesses": tr.n_accesses,
                "unique_blocks": int(tr.n_unique_blocks), "duration_s": tr.duration_s,
                "rejected_lines": int(tr.rejected_lines), "has_block_ids": bool(tr.has_block_ids),
                "sorted_input": bool(tr.sorted_input), **text_facts(tr.meta),
            },
        }
        for name in ("reuse", "access", "hotness", "prefix", "workload"):
            res = getattr(self, name)
            if res is not None:
                out[name] = {"available": True, **res.summary()}
            else:
                out[name] = {"available": False, "reason": self.unavailable.get(name, "not run")}
        out["mrc"] = self.reuse.mrc_points() if self.reuse is not None else None
        return _jsonable(out)

    def to_json(self) -> str:
        return json.dumps(self.summary(), indent=2, allow_nan=False)


def analyze(trace: Trace, *, reuse_opts: dict | None = None, access_opts: dict | None = None,
            hotness_opts: dict | None = None, prefix_opts: dict | None = None,
            workload_opts: dict | None = None) -> AnalysisResult:
    """Run every analysis on ``trace`` (each with its own keyword options).

    Block-level analyses on a trace without block ids are recorded as unavailable with the
    reason, not raised."""
    # Run order: the analyses with the largest temporary arrays first (prefix tree, stack
    # distances), while few results are held yet; it lowers peak memory, not the results.
    runs = {"prefix": (analyze_prefix, prefix_opts), "reuse": (analyze_reuse, reuse_opts),
            "hotness": (analyze_hotness, hotness_opts), "access": (analyze_access, access_opts),
            "workload": (analyze_workload, workload_opts)}
    results: dict = {}
    unavailable: dict = {}
    timings: dict = {}
    for name, (fn, opts) in runs.items():
        if name in BLOCK_LEVEL and not trace.has_block_ids:
            unavailable[name] = (f"the trace has no block ids (format {trace.format}): {name} "
                                 "cannot be measured; only workload statistics apply")
            continue
        start = time.perf_counter()
        try:
            results[name] = fn(trace, **(opts or {}))
        except NoBlockIdsError as err:
            unavailable[name] = err.message
        timings[name] = time.perf_counter() - start
    release_freed_memory()  # the SQL statistics' DuckDB buffers: not held under the report
    return AnalysisResult(trace=trace, unavailable=unavailable, timings_s=timings, **results)


def trace_name(path) -> str:
    """Folder name for a trace's reports: the file name without its extensions
    (``conversation_trace.jsonl.zst`` -> ``conversation_trace``), made filesystem-safe."""
    name = Path(str(path)).name
    name = re.sub(r"(\.(jsonl|json|csv|parquet|duckdb|gz|zst))+$", "", name, flags=re.IGNORECASE)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return name or "trace"


def write_summary(result: AnalysisResult, out_dir) -> Path:
    """Write ``summary.json`` into ``out_dir`` (created if needed) and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.json"
    path.write_text(result.to_json() + "\n", encoding="utf-8")
    return path


def _jsonable(value):
    """numpy scalars to Python, NaN/inf to None, tuples to lists (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"summary value of type {type(value).__name__} is not JSON-able: {value!r}")
