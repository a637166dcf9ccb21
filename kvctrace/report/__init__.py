"""The HTML workload report and the charts behind it (the same charts notebooks display).

``write_report(result, out_dir)`` writes a self-contained ``report.html``; ``charts`` holds the
pure ``frame -> alt.Chart`` functions. Imported lazily so that ``kvctrace.report.html_repr``
(used by result objects for Jupyter) does not pull in Altair.
"""
from __future__ import annotations

__all__ = ["write_report", "build_sections", "render_html", "charts"]


def __getattr__(name):
    if name in ("write_report", "build_sections", "render_html"):
        from . import build
        return getattr(build, name)
    if name == "charts":
        import importlib
        return importlib.import_module(f"{__name__}.charts")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
