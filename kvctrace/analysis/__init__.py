"""Workload characterization: one public function per analysis, each over a ``Trace``,
returning a frozen result with polars frames and a JSON-able ``summary()``; ``analyze`` runs
them all (the list is ``registry.ANALYSES``). Notebooks call these same names."""
from __future__ import annotations

from .access import AccessResult, analyze_access
from .divergence import DivergenceResult, analyze_divergence
from .hotness import HotnessResult, analyze_hotness
from .prefix import PrefixResult, analyze_prefix
from .registry import ANALYSES, Analysis
from .reuse import ReuseResult, analyze_reuse, exact_mrc
from .summary import AnalysisResult, analyze, trace_name, write_summary
from .workload import WorkloadResult, analyze_workload

__all__ = ["analyze", "AnalysisResult", "write_summary", "trace_name", "ANALYSES", "Analysis",
           "analyze_reuse", "ReuseResult", "exact_mrc",
           "analyze_access", "AccessResult", "analyze_hotness", "HotnessResult",
           "analyze_prefix", "PrefixResult", "analyze_workload", "WorkloadResult",
           "analyze_divergence", "DivergenceResult"]
