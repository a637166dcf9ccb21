"""The analyses, listed once. The summary (``analyze``, ``AnalysisResult.summary()``), the
console output of ``kvctrace analyze`` and the HTML report all read this list.

A new analysis is one module here (``analyze_x(trace, **options)`` returning a result that
inherits ``kvctrace.results.ResultMixin`` and defines ``summary()``), one ``Analysis`` entry in
``ANALYSES``, its report section builder(s) in ``kvctrace/report/build.py``
(``ANALYSIS_SECTIONS``) and its test.

The report sits above the analyses, so an entry names its report sections by id and the report
maps the ids to builders (a test checks that every id has a builder and every builder an entry).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .access import analyze_access
from .hotness import analyze_hotness
from .prefix import analyze_prefix
from .reuse import analyze_reuse
from .workload import analyze_workload


@dataclass(frozen=True)
class Analysis:
    """One analysis of a trace.

    ``name``: its section in summary.json, its attribute of ``AnalysisResult`` and the
    ``<name>_opts`` keyword of ``analyze``. ``title``: how prose names it ("access pattern").
    ``run(trace, **options)``: the analysis. ``needs_block_ids``: on a trace without block ids
    (lengths only) it is not run and its section says why. ``headline``: the dotted summary keys
    the console prints (empty: every scalar; everything is in summary.json either way).
    ``report_sections``: ids of the report sections that draw it, in page order.
    ``run_rank``: position in the run order (lower first): the analyses with the largest
    temporary arrays run first, while few results are held, which lowers peak memory."""
    name: str
    title: str
    run: Callable
    needs_block_ids: bool
    headline: tuple[str, ...]
    report_sections: tuple[str, ...]
    run_rank: int


# In summary.json and console order.
ANALYSES: tuple[Analysis, ...] = (
    Analysis(
        "reuse", "reuse", analyze_reuse, needs_block_ids=True,
        headline=("ideal_hit_ratio_blocks", "ideal_hit_ratio_tokens", "ideal_prefix_hit_ratio_blocks",
                  "request_hit_rate_mean", "request_hit_rate_share_ge_0_5", "request_hit_rate_share_ge_0_8",
                  "request_hit_rate_share_gt_0_8", "prefix_and_block_hits_agree", "one_hit_block_share",
                  "reuse_time_s_p50", "reuse_time_requests_p50", "shards.fixed_rate.mae_linear",
                  "shards.fixed_size.mae_linear"),
        report_sections=("reusability", "reuse-distance"), run_rank=1),
    Analysis(
        "access", "access pattern", analyze_access, needs_block_ids=True,
        headline=("sequential_share_mean_per_request", "sequential_share_blocks", "runs_test_share_p_gt_0_05",
                  "runs_test_requests_tested", "point_lookups", "range_scans", "mean_runs_per_request"),
        report_sections=("access",), run_rank=3),
    Analysis(
        "hotness", "hotness", analyze_hotness, needs_block_ids=True,
        headline=("gini", "zipf_alpha", "top_1pct_access_share", "top_10pct_access_share",
                  "one_hit_block_share", "hot_set_block_share_80pct", "hot_set_block_share_99pct",
                  "drift_jaccard_mean"),
        report_sections=("hotness",), run_rank=2),
    Analysis(
        "prefix", "prefix structure", analyze_prefix, needs_block_ids=True,
        headline=("tree.nodes", "tree.max_depth", "tree.mean_depth", "tree.max_fanout",
                  "groups.shared_prefix_groups", "groups.largest_group_requests",
                  "groups.largest_group_prefix_tokens", "groups.reusable_prefix_tokens_share_of_input"),
        report_sections=("prefix",), run_rank=0),
    Analysis(
        "workload", "workload statistics", analyze_workload, needs_block_ids=False,
        headline=("mean_rate_rps", "peak_window_requests", "interarrival_cv", "index_of_dispersion",
                  "input_len_mean", "input_len_p50", "input_len_p99", "output_len_mean", "output_len_p50"),
        report_sections=("workload",), run_rank=4),
)


def names() -> tuple[str, ...]:
    """The analysis names in summary order."""
    return tuple(a.name for a in ANALYSES)


def get(name: str) -> Analysis:
    """The registered analysis called ``name`` (KeyError naming the valid ones otherwise)."""
    for analysis in ANALYSES:
        if analysis.name == name:
            return analysis
    raise KeyError(f"no analysis {name!r}; registered: {', '.join(names())}")


def run_order() -> tuple[Analysis, ...]:
    """The analyses in the order ``analyze`` runs them (``run_rank``)."""
    return tuple(sorted(ANALYSES, key=lambda a: a.run_rank))


def _join_titles(analyses) -> str:
    """The titles of ``analyses`` for prose: ``a, b and c``."""
    titles = [a.title for a in analyses]
    return "".join(titles) if len(titles) < 2 else ", ".join(titles[:-1]) + " and " + titles[-1]


def no_block_ids_scope() -> tuple[str, str]:
    """(what cannot be measured, what still applies) on a trace without block ids, as prose."""
    return (_join_titles(a for a in ANALYSES if a.needs_block_ids),
            _join_titles(a for a in ANALYSES if not a.needs_block_ids))
