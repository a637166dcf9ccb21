"""The HTML workload report and the charts behind it (the same charts notebooks display).

``write_report(result, out_dir)`` writes a self-contained ``report.html``; ``charts`` holds the
pure ``frame -> alt.Chart`` functions. Imported lazily, so that importing ``kvctrace.report``
does not pull in Altair and Jinja2 until a chart or a report is asked for.
"""
from __future__ import annotations

_BUILD = ("write_report", "build_sections", "render_html", "zipf_line", "comparable_index_runs",
          "replay_latency_cdfs", "replay_tier_curves", "quantile_cdf")
__all__ = [*_BUILD, "charts"]


def __getattr__(name):
    if name in _BUILD:
        from . import build
        return getattr(build, name)
    if name == "charts":
        import importlib
        return importlib.import_module(f"{__name__}.charts")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
