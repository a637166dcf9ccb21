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

from dataclasses import dataclass, field
from typing import Callable

from .access import analyze_access
from .divergence import analyze_divergence
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
    temporary arrays run first, while few results are held, which lowers peak memory (workload
    keeps almost nothing, so it goes first of all; docs/architecture.md "Memory" has the sizes).
    ``sentence``: a summary key holding a sentence the console prints in full after the
    tables (empty: none).
    ``labels``: how the console names each headline key (summary.json keeps the keys).
    ``beside``: run on a thread beside the others (``analyze``): only for an analysis whose
    work releases the GIL (DuckDB queries, Numba kernels without Python in their loops), that
    keeps little memory, and that uses the trace's DuckDB connection only under
    ``Trace.sql_lock``."""
    name: str
    title: str
    run: Callable
    needs_block_ids: bool
    headline: tuple[str, ...]
    report_sections: tuple[str, ...]
    run_rank: int
    sentence: str = ""
    labels: dict = field(default_factory=dict, compare=False)
    beside: bool = False


# In summary.json and console order.
ANALYSES: tuple[Analysis, ...] = (
    Analysis(
        "reuse", "reuse", analyze_reuse, needs_block_ids=True,
        headline=("ideal_hit_ratio_blocks", "ideal_hit_ratio_tokens", "ideal_prefix_hit_ratio_blocks",
                  "request_hit_rate_mean", "request_hit_rate_share_ge_0_5", "request_hit_rate_share_ge_0_8",
                  "request_hit_rate_share_gt_0_8", "prefix_and_block_hits_agree", "one_hit_block_share",
                  "reuse_time_s_p50", "reuse_time_requests_p50", "shards.fixed_rate.mae_linear",
                  "shards.fixed_size.mae_linear"),
        report_sections=("reusability", "reuse-distance"), run_rank=1,
        labels={"ideal_hit_ratio_blocks": "hit ratio, unlimited cache (blocks)",
                "ideal_hit_ratio_tokens": "hit ratio, unlimited cache (tokens)",
                "ideal_prefix_hit_ratio_blocks": "prefix hit ratio, unlimited cache (blocks)",
                "request_hit_rate_mean": "mean per-request hit rate",
                "request_hit_rate_share_ge_0_5": "requests with hit rate ≥ 0.5",
                "request_hit_rate_share_ge_0_8": "requests with hit rate ≥ 0.8",
                "request_hit_rate_share_gt_0_8": "requests with hit rate > 0.8",
                "prefix_and_block_hits_agree": "prefix and block hits agree",
                "one_hit_block_share": "blocks accessed only once",
                "reuse_time_s_p50": "median reuse time",
                "reuse_time_requests_p50": "median reuse time (requests)",
                "shards.fixed_rate.mae_linear": "SHARDS fixed-rate error (MAE)",
                "shards.fixed_size.mae_linear": "SHARDS fixed-size error (MAE)"}),
    Analysis(
        "access", "access pattern", analyze_access, needs_block_ids=True,
        headline=("sequential_share_mean_per_request", "sequential_share_blocks", "runs_test_share_p_gt_0_05",
                  "runs_test_requests_tested", "point_lookups", "range_scans", "mean_runs_per_request"),
        report_sections=("access",), run_rank=5,
        labels={"sequential_share_mean_per_request": "sequential share, mean per request",
                "sequential_share_blocks": "sequential share of all blocks",
                "runs_test_share_p_gt_0_05": "runs test: random-looking (p > 0.05)",
                "runs_test_requests_tested": "runs test: requests tested",
                "point_lookups": "point lookups (isolated blocks)",
                "range_scans": "range scans (runs of ≥ 2 blocks)",
                "mean_runs_per_request": "mean runs per request"}),
    Analysis(
        "hotness", "hotness", analyze_hotness, needs_block_ids=True,
        headline=("gini", "zipf_alpha", "top_1pct_access_share", "top_10pct_access_share",
                  "one_hit_block_share", "hot_set_block_share_80pct", "hot_set_block_share_99pct",
                  "drift_jaccard_mean"),
        report_sections=("hotness",), run_rank=4,
        labels={"gini": "Gini coefficient of block heat", "zipf_alpha": "Zipf exponent",
                "top_1pct_access_share": "accesses to the hottest 1% of blocks",
                "top_10pct_access_share": "accesses to the hottest 10% of blocks",
                "one_hit_block_share": "blocks accessed only once",
                "hot_set_block_share_80pct": "blocks taking 80% of accesses",
                "hot_set_block_share_99pct": "blocks taking 99% of accesses",
                "drift_jaccard_mean": "hot-set overlap between windows"}),
    Analysis(
        "prefix", "prefix structure", analyze_prefix, needs_block_ids=True,
        headline=("tree.nodes", "tree.max_depth", "tree.mean_depth", "tree.max_fanout",
                  "groups.shared_prefix_groups", "groups.largest_group_requests",
                  "groups.largest_group_prefix_tokens", "groups.reusable_prefix_tokens_share_of_input"),
        report_sections=("prefix",), run_rank=2,
        labels={"tree.nodes": "prefix-tree nodes (distinct blocks)", "tree.max_depth": "deepest prefix (blocks)",
                "tree.mean_depth": "mean prefix depth (blocks)", "tree.max_fanout": "largest fan-out",
                "groups.shared_prefix_groups": "shared-prefix groups",
                "groups.largest_group_requests": "requests in the largest group",
                "groups.largest_group_prefix_tokens": "largest group's prefix (tokens)",
                "groups.reusable_prefix_tokens_share_of_input": "input tokens in shared prefixes"}),
    Analysis(
        "workload", "workload statistics", analyze_workload, needs_block_ids=False,
        headline=("mean_rate_rps", "peak_window_requests", "interarrival_cv", "index_of_dispersion",
                  "input_len_mean", "input_len_p50", "input_len_p99", "output_len_mean", "output_len_p50"),
        report_sections=("workload",), run_rank=0, beside=True,
        labels={"mean_rate_rps": "mean arrival rate (requests/s)", "peak_window_requests": "peak requests per window",
                "interarrival_cv": "inter-arrival CV (1 = Poisson)", "index_of_dispersion": "index of dispersion",
                "input_len_mean": "mean input length (tokens)", "input_len_p50": "median input length (tokens)",
                "input_len_p99": "p99 input length (tokens)", "output_len_mean": "mean output length (tokens)",
                "output_len_p50": "median output length (tokens)"}),
    Analysis(
        "divergence", "prefix divergence", analyze_divergence, needs_block_ids=True,
        headline=("level", "requests", "requests_diverging", "requests_sharing_nothing",
                  "shared_tokens_share_of_input", "tokens_lost_total", "divergence_block_p50"),
        report_sections=("divergence",), run_rank=3, sentence="headline",
        labels={"level": "level (token-exact or block)", "requests": "requests compared",
                "requests_diverging": "requests diverging", "requests_sharing_nothing": "requests sharing nothing",
                "shared_tokens_share_of_input": "shared prefix (share of input tokens)",
                "tokens_lost_total": "tokens after divergence (prefilled again)",
                "divergence_block_p50": "median divergence block"}),
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
