"""Run every analysis on a trace and build the summary (the body of ``summary.json``).

``analyze(trace)`` returns an ``AnalysisResult`` holding every result object (for charts,
reports and notebooks); ``AnalysisResult.summary()`` is a JSON-able dict with one section per
analysis. A lengths-only trace (no block ids) gets the trace and workload sections, and each
block-level section says why it could not be measured instead of failing.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__
from ..errors import NoBlockIdsError
from ..memory import release_freed_memory
from ..progress import check_interrupt
from ..results import ResultMixin, jsonable
from ..trace import Trace
from . import registry

# summary.json's ``trace`` section: these facts of ``Trace.info()``, in this order.
TRACE_KEYS = ("path", "format", "block_size", "requests", "accesses", "unique_blocks", "duration_s",
              "rejected_lines", "has_block_ids", "sorted_input")
TEXT_KEYS = ("tokenizer", "chat_template", "non_text_parts_skipped", "message_start_fallbacks")


@dataclass(frozen=True)
class AnalysisResult(ResultMixin):
    """Every analysis of one trace: ``results`` maps an analysis name (``registry.names()``) to
    its result, also read as an attribute (``result.reuse``). A section is ``None`` when it
    could not be measured; the reason is in ``unavailable[section]``."""
    trace: Trace = field(repr=False)
    results: dict = field(repr=False, default_factory=dict)
    unavailable: dict = field(default_factory=dict)
    timings_s: dict = field(default_factory=dict)  # wall time per analysis (not in summary)

    def __getattr__(self, name: str):
        # only reached when normal lookup fails; __dict__ is read directly so that copying or
        # unpickling (before ``results`` is set) cannot recurse
        if name in registry.names():
            return self.__dict__.get("results", {}).get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def summary(self) -> dict:
        """JSON-able summary: ``trace``, one section per analysis (``reuse``, ``access``,
        ``hotness``, ``prefix``, ``workload``) and ``mrc`` (a missing section is
        ``{"available": false, "reason": ...}``; ``mrc`` is then ``null``)."""
        info = self.trace.info()
        # text traces add their facts (tokenizer, labelled an approximation for bytes; template)
        out: dict = {"kvctrace_version": __version__, "trace": {key: info[key] for key in TRACE_KEYS}
                     | {key: info[key] for key in TEXT_KEYS if key in info}}
        for name in registry.names():
            res = self.results.get(name)
            if res is not None:
                out[name] = {"available": True, **res.summary()}
            else:
                out[name] = {"available": False, "reason": self.unavailable.get(name, "not run")}
        out["mrc"] = self.reuse.mrc_points() if self.reuse is not None else None
        return jsonable(out)


def analyze(trace: Trace, **options) -> AnalysisResult:
    """Run every registered analysis on ``trace``; ``<name>_opts`` (e.g. ``reuse_opts={"shards":
    False}``) are the keyword options of analysis ``name``.

    Block-level analyses on a trace without block ids are recorded as unavailable with the
    reason, not raised."""
    known = {f"{name}_opts" for name in registry.names()}
    for key in options:
        if key not in known:
            raise TypeError(f"analyze() got an unexpected keyword argument {key!r}; "
                            f"options: {', '.join(sorted(known))}")
    results: dict = {}
    unavailable: dict = {}
    timings: dict = {}
    _, applies = registry.no_block_ids_scope()

    def run(analysis) -> None:
        name = analysis.name
        if analysis.needs_block_ids and not trace.has_block_ids:
            unavailable[name] = (f"the trace has no block ids (format {trace.format}): {name} "
                                 f"cannot be measured; only {applies} apply")
            return
        start = time.perf_counter()
        try:
            results[name] = analysis.run(trace, **(options.get(f"{name}_opts") or {}))
        except NoBlockIdsError as err:
            unavailable[name] = err.message
        timings[name] = time.perf_counter() - start

    # The workload statistics (DuckDB queries on one thread) run beside the Numba analyses, on
    # the other core; results are the same as one after another (each is deterministic).
    beside = _Beside([a for a in registry.run_order() if a.beside], run)
    try:
        for analysis in registry.run_order():
            if not analysis.beside:
                check_interrupt()  # Ctrl-C stops a CLI command between analyses (progress.interruptible)
                run(analysis)
    finally:
        beside.wait()  # never leave a thread inside DuckDB (an exception or Ctrl-C included)
    if beside.error is not None:
        raise beside.error
    release_freed_memory()  # the SQL statistics' DuckDB buffers: not held under the report
    return AnalysisResult(trace=trace, results=results, unavailable=unavailable, timings_s=timings)


class _Beside:
    """Analyses ``run`` in order on a thread of their own; after ``wait``, ``error`` is what
    the one that failed raised (the caller raises it), or None."""

    def __init__(self, analyses: list, run):
        self.error: BaseException | None = None

        def body() -> None:
            try:
                for analysis in analyses:
                    run(analysis)
            except BaseException as err:  # noqa: BLE001 - raised in the caller's thread
                self.error = err
        self._thread = threading.Thread(target=body, name="kvctrace-analyses-beside", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        self._thread.join()


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
