"""The HTML workload report: compute → structure → render.

* compute: ``charts.py`` turns the analysis frames into Altair charts (pure functions);
* structure: ``build_sections`` arranges charts, facts and tables into ``Section`` objects
  (plain data: Vega-Lite specs as dicts, table cells as strings);
* render: ``render_html`` fills the Jinja2 template (autoescape on: trace fields are untrusted
  text) with the sections and the Vega JavaScript, inlined once for the whole page.

``write_report(result, out_dir)`` does all three and writes ``report.html``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

from ..analysis import registry
from ..formatting import format_value as fmt, format_window, plural
from . import charts
from .divergence_section import divergence_section
from .page import Section, Table, frame_table
from .page import figures as _figures
from .page import spec_json as _spec_json
from .recommendation import recommendation_parts
from .tiers_section import (calibration_parts, marginal_list, miss_parts, replay_tier_curves,
                            tier_ttft_vs_capacity)

REPORT_FILE = "report.html"


# ---------------------------------------------------------------- sections

def overview_section(result) -> Section:
    info = result.trace.info()
    reuse = result.reuse
    blocks = info["has_block_ids"]
    facts = [
        ("trace", Path(info["path"]).name, info["path"]),
        ("format", str(info["format"]), None),
        ("block size", f"{fmt(info['block_size'])} tokens" if blocks else "n/a (no block ids)", None),
        ("requests", fmt(info["requests"]), None),
        ("block accesses", fmt(info["accesses"]) if blocks else "n/a (no block ids)", None),
        ("unique blocks", fmt(info["unique_blocks"]) if blocks else "n/a (no block ids)", None),
        ("duration", fmt(info["duration_s"], unit="s"), None),
        ("ideal hit ratio (blocks)", fmt(reuse.ideal_hit_ratio_blocks, digits=4) if reuse else "n/a",
         "share of block accesses that an unlimited cache serves"),
        ("ideal hit ratio (tokens)", fmt(reuse.ideal_hit_ratio_tokens, digits=4) if reuse else "n/a",
         "token-weighted: a partial last block counts its real tokens"),
        ("rejected lines", fmt(info["rejected_lines"]), "lines not ingested (kept in the rejects table)"),
    ]
    notes = []
    if info.get("tokenizer"):  # a text trace: the tokenizer (bytes: an approximation) and the chat template
        facts += [("tokenizer", info["tokenizer"], "how the text became tokens (docs/text-inputs.md)"),
                  ("chat template", info["chat_template"], None),
                  ("non-text parts skipped", fmt(info["non_text_parts_skipped"]), "images, audio, files: not tokenized")]
        if "approximation" in info["tokenizer"]:
            notes.append("Tokens are the UTF-8 bytes of the text, an approximation of a real tokenizer "
                         "(pass --tokenizer with the model's tokenizer.json for exact tokens).")
    if not info["sorted_input"]:
        notes.append("The trace was not in timestamp order; requests were sorted by (timestamp, line).")
    if not blocks:
        cannot, applies = registry.no_block_ids_scope()
        notes.append(f"This trace has no block ids (lengths only): {cannot} cannot be measured; "
                     f"only {applies} apply.")
    for name, reason in sorted(result.unavailable.items()):
        if blocks or not registry.get(name).needs_block_ids:   # else the note above says why
            notes.append(f"{name}: {reason}")
    return Section("overview", "Overview", facts=facts, notes=notes)


def workload_section(result) -> Section:
    w = result.workload
    if w is None:
        return _unavailable(result, "workload", "workload", "Workload")
    s = w.summary()
    facts = [("mean arrival rate", f"{fmt(s.get('mean_rate_rps'), digits=3)} req/s", None),
             ("peak window", fmt(s.get("peak_window_requests")), f"requests in one {format_window(w.arrival_window_s)} window"),
             ("inter-arrival CV", fmt(s.get("interarrival_cv"), digits=2), "1 = Poisson, > 1 bursty"),
             ("simultaneous arrivals", fmt(s.get("interarrival_zero_gap_share"), unit="%"), "gaps of zero seconds"),
             ("input length p50 / p99", f"{fmt(s.get('input_len_p50'))} / {fmt(s.get('input_len_p99'))}", "tokens"),
             ("output length p50 / p99", f"{fmt(s.get('output_len_p50'))} / {fmt(s.get('output_len_p99'))}", "tokens")]
    if s.get("sessions") is not None:
        facts.append(("sessions", fmt(s.get("sessions")),
                      f"{fmt(s.get('multi_request_session_share'), unit='%')} with ≥ 2 requests"))
    if w.types is not None:
        facts.append(("request types", fmt(w.types.height), None))
    chart_list = [charts.arrival_rate(w.arrivals, w.arrival_window_s)]
    if w.length_quantiles.height:
        chart_list.append(charts.length_distribution(w.length_quantiles))
    if w.types is not None and w.types.height:
        chart_list.append(charts.request_types(w.types))
    if w.sessions is not None and w.sessions.height:
        chart_list.append(charts.session_sizes(w.sessions))
    tables = [frame_table(w.lengths, "Length statistics", "Input (prompt) and output lengths in tokens.",
                          {"field": "length", "requests": "requests", "mean": "mean", "std": "std", "min": "min",
                           "p50": "p50", "p90": "p90", "p99": "p99", "max": "max"})]
    if w.dispersion.height:
        tables.append(frame_table(w.dispersion, "Burstiness by window size",
                                  "Index of dispersion = variance / mean of requests per window (1 for a "
                                  "Poisson process, larger when arrivals bunch up).",
                                  {"window_s": "window (s)", "windows": "windows", "mean_requests": "mean requests",
                                   "index_of_dispersion": "index of dispersion", "peak_to_mean": "peak / mean"}))
    if w.types is not None and w.types.height:
        tables.append(frame_table(w.types, "Request types", "Requests and lengths (tokens) per request type.",
                                  {"type": "type", "requests": "requests", "share": "share",
                                   "mean_input_len": "mean input", "mean_output_len": "mean output"}, max_rows=20))
    if w.sessions is not None and w.sessions.height:
        tables.append(frame_table(w.sessions, "Longest sessions", "Sessions with the most requests.",
                                  {"session_id": "session", "requests": "requests", "span_s": "span (s)",
                                   "input_tokens": "input tokens", "output_tokens": "output tokens"}, max_rows=10))
    return Section("workload", "Workload", facts=facts, figures=_figures("workload", chart_list), tables=tables,
                   intro="When requests arrive and how long they are.")


def _unavailable(result, name: str, sid: str, title: str) -> Section:
    reason = result.unavailable.get(name, f"the {name} analysis was not run")
    return Section(sid, title, unavailable=f"Not measured: {reason}")


def reusability_section(result) -> Section:
    r = result.reuse
    if r is None:
        return _unavailable(result, "reuse", "reusability", "Reusability")
    s = r.request_hit_rate_shares
    facts = [
        ("ideal hit ratio, blocks", fmt(r.ideal_hit_ratio_blocks, digits=4), "unlimited cache, block-weighted"),
        ("ideal hit ratio, tokens", fmt(r.ideal_hit_ratio_tokens, digits=4), "unlimited cache, token-weighted"),
        ("ideal prefix hit ratio, blocks", fmt(r.ideal_prefix_hit_ratio_blocks, digits=4),
         "only the leading run of cached blocks counts"),
        ("mean per-request hit rate", fmt(r.request_hit_rate_mean, digits=4), None),
        ("requests with hit rate ≥ 0.5", fmt(s["ge_0_5"], unit="%"), None),
        ("requests with hit rate ≥ 0.8", fmt(s["ge_0_8"], unit="%"), None),
        ("requests with hit rate > 0.8", fmt(s["gt_0_8"], unit="%"), None),
        ("one-hit blocks", fmt(r.one_hit_block_share, unit="%"), "blocks accessed exactly once"),
    ]
    notes = []
    if not r.prefix_and_block_hits_agree:
        notes.append(f"Prefix and block hits differ on {r.requests_prefix_differs:,} requests: "
                     "the trace's block ids are not chained prefix ids.")
    figs = _figures("reusability", [charts.hit_rate_cdf(r.hit_rate_cdf, s), charts.block_id_vs_time(r.block_time),
                                    charts.reuse_over_time(r.windows)])
    return Section("reusability", "Reusability", facts=facts, figures=figs, notes=notes,
                   intro="How much of each request an unlimited cache could serve (paper Fig. 1).")


def reuse_distance_section(result) -> Section:
    r = result.reuse
    if r is None:
        return _unavailable(result, "reuse", "reuse-distance", "Reuse distance and miss-ratio curve")
    summary = r.summary()
    facts = [("reuse time p50", fmt(summary.get("reuse_time_s_p50"), unit="s"), None),
             ("reuse time p90", fmt(summary.get("reuse_time_s_p90"), unit="s"), None),
             ("reuse time p50 (requests)", fmt(summary.get("reuse_time_requests_p50")), None),
             ("first (cold) accesses", fmt(r.cold_accesses), None)]
    for cap in (1_000, 10_000, 100_000):
        if cap < r.n_unique_blocks:
            facts.append((f"LRU hit ratio at {cap:,} blocks", fmt(float(r.hit_ratio_at([cap])[0]), digits=4), None))
    for kind in ("fixed_rate", "fixed_size"):
        info = (r.shards_info or {}).get(kind)
        if info:
            facts.append((f"SHARDS {kind.replace('_', '-')} error", fmt(info.get("mae_linear"), digits=4),
                          "mean absolute error of the hit ratio against the exact curve"))
    figs = _figures("reuse-distance", [
        charts.miss_ratio_curve(r.mrc, r.shards),
        charts.reuse_distance_distribution(r.distance_counts, r.cold_accesses),
        charts.reuse_time_distribution(r.reuse_time_hist, "seconds"),
        charts.reuse_time_distribution(r.reuse_time_hist, "requests")])
    return Section("reuse-distance", "Reuse distance and miss-ratio curve", facts=facts, figures=figs,
                   intro="How far apart reuses are, and what an LRU cache of each size would hit.")


def access_section(result) -> Section:
    a = result.access
    if a is None:
        return _unavailable(result, "access", "access", "Access pattern")
    facts = [("sequential share, mean per request", fmt(a.sequential_share_mean_per_request, digits=4), None),
             ("sequential share, block-weighted", fmt(a.sequential_share_blocks, digits=4), None),
             ("runs test: share with p > 0.05", fmt(a.runs_test_share_p_gt_0_05, unit="%"),
              f"over {a.runs_test_requests_tested:,} requests tested"),
             ("point lookups", fmt(a.point_lookups), "isolated blocks"),
             ("range scans", fmt(a.range_scans), f"covering {a.range_scan_blocks:,} blocks")]
    chart_list = [charts.sequential_share_distribution(a.per_request), charts.run_length_distribution(a.run_lengths)]
    notes = []
    if a.runs_test_requests_tested:
        chart_list.append(charts.runs_test_pvalues(a.per_request))
    else:
        notes.append(f"No request has {a.runs_test_min_ids} or more non-sequential block ids (and a non-degenerate "
                     "order), so the runs test applies to none: block ids within requests are almost all sequential.")
    figs = _figures("access", chart_list)
    return Section("access", "Access pattern: sequential vs random", facts=facts, figures=figs, notes=notes,
                   intro="Whether a request's blocks form contiguous id ranges a range index can scan (paper Fig. 2).")


def zipf_line(hotness) -> dict | None:
    """The fitted Zipf line of ``HotnessResult``. The analysis reports the least-squares slope
    over ranks ``zipf_fit_ranks``; a least-squares line passes through the means, so the
    intercept is mean(ln accesses) + alpha * mean(ln rank) over those ranks (no refit)."""
    if hotness.zipf_alpha is None:
        return None
    lo, hi = (int(v) for v in hotness.zipf_fit_ranks)
    counts = hotness.block_accesses  # per block (the per_block frame without its block column)
    if hi < 2 or hi > counts.shape[0]:
        return None
    top = counts[counts >= 2]
    if top.shape[0] != hi:                      # fit range is not "blocks accessed twice or more"
        top = np.sort(counts)[::-1][:hi]
    mean_y = float(np.log(top.astype(np.float64)).mean())
    mean_x = math.lgamma(hi + 1) / hi           # mean of ln(1..hi)
    alpha = float(hotness.zipf_alpha)
    return {"alpha": alpha, "intercept": mean_y + alpha * mean_x, "rank_min": lo, "rank_max": hi}


def hotness_section(result) -> Section:
    h = result.hotness
    if h is None:
        return _unavailable(result, "hotness", "hotness", "Hotness")
    s = h.summary()
    facts = [("Gini coefficient", fmt(h.gini, digits=3), "0 = every block equally hot, 1 = one block takes all"),
             ("Zipf exponent", fmt(h.zipf_alpha, digits=3), f"fit over ranks {h.zipf_fit_ranks[0]:,}–{h.zipf_fit_ranks[1]:,}"),
             ("top 1% of blocks take", fmt(s.get("top_1pct_access_share"), unit="%"), "of accesses"),
             ("top 10% of blocks take", fmt(s.get("top_10pct_access_share"), unit="%"), "of accesses"),
             ("one-hit blocks", fmt(s.get("one_hit_block_share"), unit="%"), None),
             ("hot set for 80% of accesses", fmt(s.get("hot_set_blocks_80pct")), "blocks"),
             ("mean hot-set overlap", fmt(s.get("drift_jaccard_mean"), digits=3),
              f"Jaccard of top-{h.drift_top_k} between {format_window(h.drift_window_s)} windows")]
    chart_list = [charts.lorenz_curve(h.lorenz), charts.rank_frequency(h.rank_frequency, zipf_line(h))]
    notes = []
    if h.drift["jaccard_with_previous"].drop_nulls().len():
        chart_list.append(charts.hot_set_drift(h.drift, h.drift_top_k))
    else:
        notes.append(f"Hot-set drift needs two non-empty {format_window(h.drift_window_s)} windows; this trace has fewer.")
    chart_list.append(charts.heat_by_depth(h.heat_by_depth))
    figs = _figures("hotness", chart_list)
    tables = [frame_table(h.hot_sets.with_columns(pl.col("access_share_target") * 100), "Hot-set sizes",
                          "The fewest hottest blocks that together take the given share of accesses.",
                          {"access_share_target": "accesses covered (%)", "blocks": "blocks",
                           "block_share": "share of blocks"})]
    if h.heat_by_type is not None:
        tables.append(frame_table(h.heat_by_type, "Heat by request type",
                                  "Per request type: accesses, distinct blocks and the share of accesses "
                                  "that re-use a block seen earlier in the trace.",
                                  {"type": "type", "requests": "requests", "accesses": "accesses",
                                   "distinct_blocks": "distinct blocks", "reaccesses": "re-accesses",
                                   "reaccess_share": "re-access share"}))
    return Section("hotness", "Hotness", facts=facts, figures=figs, tables=tables, notes=notes,
                   intro="How unevenly accesses fall on blocks, and how the hot set moves.")


def prefix_section(result) -> Section:
    p = result.prefix
    if p is None:
        return _unavailable(result, "prefix", "prefix", "Prefix structure")
    g, t = p.groups_summary, p.tree
    facts = [("shared-prefix groups", fmt(g.get("shared_prefix_groups")), None),
             ("top-level groups", fmt(g.get("top_level_groups")), "distinct shared starting prefixes"),
             ("requests starting with a shared prefix", fmt(g.get("requests_starting_with_shared_prefix_share"), unit="%"), None),
             ("reusable prefix tokens", fmt(g.get("reusable_prefix_tokens_total")),
              f"{fmt(g.get('reusable_prefix_tokens_share_of_input'), unit='%')} of input tokens"),
             ("prefix-tree nodes", fmt(t.get("nodes")), f"{plural(t.get('roots') or 0, 'root')}, {plural(t.get('leaves') or 0, 'leaf', 'leaves')}"),
             ("max depth", fmt(t.get("max_depth")), "blocks"),
             ("mean fan-out of internal nodes", fmt(t.get("mean_fanout_internal"), digits=2), None)]
    if p.sessions:
        facts.append(("sessions", fmt(p.sessions.get("sessions")), None))
        facts.append(("reuse within the same session", fmt(p.sessions.get("reuse_within_session_share_by_first"), unit="%"),
                      "re-accesses whose block first appeared in the same session"))
    tables = [frame_table(p.groups, "Top shared-prefix groups",
                          "Maximal prefixes shared by at least two requests, most shared first; reusable "
                          "tokens = (requests − 1) × prefix tokens.",
                          {"prefix_blocks": "prefix blocks", "prefix_tokens": "prefix tokens",
                           "n_requests": "requests", "n_children": "branches", "reusable_tokens": "reusable tokens",
                           "exclusive_reusable_tokens": "reusable beyond enclosing group",
                           "first_req": "first request", "top_level": "top level"}, max_rows=20)]
    if p.session_sharing is not None:
        tables.append(frame_table(p.session_sharing, "Reuse within vs across sessions",
                                  "Re-accesses attributed to the session of the block's first (by_first) or "
                                  "previous (by_previous) access."))
    figs = _figures("prefix", [charts.prefix_tree_depth(p.depth_distribution),
                               charts.prefix_tree_fanout(p.fanout_distribution)])
    return Section("prefix", "Prefix structure", facts=facts, figures=figs, tables=tables,
                   intro="Which prefixes many requests share (system prompts, conversation histories).")


def quantile_cdf(values: np.ndarray, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(value, share of values <= value) at ``points`` evenly spaced quantiles, min and max included."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    probs = np.linspace(0.0, 1.0, points + 1)
    return np.quantile(values, probs), np.maximum(probs, 1.0 / values.shape[0])


def replay_latency_cdfs(runs: dict, column: str, points: int = 200) -> pl.DataFrame:
    """Long frame (index, value, cdf) of a per-request column of several replays, keyed by label."""
    frames = []
    for label, res in runs.items():
        value, cdf = quantile_cdf(res.requests[column].to_numpy(), points)
        frames.append(pl.DataFrame({"index": [str(label)] * value.shape[0], "value": value, "cdf": cdf}))
    return pl.concat(frames) if frames else pl.DataFrame(schema={"index": pl.String, "value": pl.Float64, "cdf": pl.Float64})


def comparable_index_runs(results) -> dict:
    """Index kind -> replay, all with the same tiers (names, policies, capacities, admission), so
    that their latency curves differ only by the index model: the tier setup replayed with the
    most distinct index kinds (the first such setup on ties; the first replay of each kind)."""
    groups: dict = {}
    for r in results:
        key = tuple(r.tiers.select("name", "policy", "capacity_blocks", "admit_min_accesses").iter_rows())
        groups.setdefault(key, {}).setdefault(r.config.index.kind, r)
    return max(groups.values(), key=len) if groups else {}


def replay_section(replay, recommendation=None, calibration=None) -> Section:
    """Replay results (a sequence of ``ReplayResult``, e.g. a ``ReplayStudy``): hit ratio and
    mean TTFT per tier vs that tier's capacity per policy (tiers_section.py), TTFT and
    metadata-time CDFs per index model (the first replay of each index kind), the miss taxonomy
    and the marginal value per tier, the recommendation with its reasons when given, and the
    index cost model next to a live Redis's measurements when a calibration is given."""
    results = list(replay or [])
    if not results and recommendation is None:
        return Section("replay", "Replay and recommendation", unavailable=(
            "Not run: no replay in this report. `kvctrace report TRACE|DB --replay` replays the trace through "
            "the cache tiers of a preset (or --config FILE) with every policy and index model; "
            "`--recommend` also sweeps configurations and adds the recommendation with its reasons."))
    figs, tables, facts, lists = [], [], [], []
    if results:
        curves = replay_tier_curves(results)
        tier_order = [t.name for t in results[0].config.tiers]
        if curves.height:
            figs += [charts.tier_hit_ratio_vs_capacity(curves, tier_order), tier_ttft_vs_capacity(curves, tier_order)]
        base = getattr(replay, "base", None) or results[0]
        miss_figs, miss_tables = miss_parts(base)
        figs += miss_figs
        tables += miss_tables
        if getattr(replay, "marginal", None):
            lists.append(marginal_list(replay.marginal))
        by_index = comparable_index_runs(results)
        figs.append(charts.latency_cdf(replay_latency_cdfs(by_index, "ttft_ms"), "ms",
                                       "Time to first token by index model", "time to first token"))
        figs.append(charts.latency_cdf(replay_latency_cdfs(by_index, "metadata_us"), "µs",
                                       "Metadata lookup time by index model", "metadata lookup time"))
        rows = []
        for label, r in by_index.items():
            s = r.summary()
            rows.append({"index": label, "config": r.config.name, "prefix hit ratio": s["prefix_hit_ratio"],
                         "TTFT p50 (ms)": s["ttft_ms"]["p50"], "TTFT p99 (ms)": s["ttft_ms"]["p99"],
                         "metadata p50 (µs)": s["metadata_us"]["p50"], "metadata p99 (µs)": s["metadata_us"]["p99"]})
        tables.append(frame_table(pl.DataFrame(rows), "Replays by index model",
                                  "The replays shown in the latency charts: the same tiers, one per metadata index model."))
        facts.append(("replays", fmt(len(results)), None))
    if calibration is not None:
        cal_facts, cal_tables = calibration_parts(calibration)
        facts += cal_facts
        tables += cal_tables
    if recommendation is not None:
        rec_facts, rec_figs, rec_tables, rec_lists = recommendation_parts(recommendation)
        facts = rec_facts + facts
        figs = rec_figs + figs
        tables = rec_tables + tables
        lists = rec_lists + lists
    return Section("replay", "Replay and recommendation", facts=facts, figures=_figures("replay", figs),
                   tables=tables, lists=lists,
                   intro="The trace replayed through emulated cache tiers and metadata indexes.")


# The sections that draw the analyses, by id, in page order. Every id an analysis names in
# kvctrace.analysis.registry has its builder here (tests/test_report.py checks both ways).
ANALYSIS_SECTIONS = {"workload": workload_section, "reusability": reusability_section,
                     "reuse-distance": reuse_distance_section, "access": access_section,
                     "hotness": hotness_section, "prefix": prefix_section, "divergence": divergence_section}


def build_sections(result, replay=None, recommendation=None, calibration=None) -> list:
    """The report's sections, in page order, as plain data (structure stage)."""
    return ([overview_section(result)] + [build(result) for build in ANALYSIS_SECTIONS.values()]
            + [replay_section(replay, recommendation, calibration)])


# ---------------------------------------------------------------- render

def _environment():
    from jinja2 import Environment, PackageLoader, select_autoescape
    return Environment(loader=PackageLoader("kvctrace.report", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def render_html(sections: list, title: str, summary: dict | None = None) -> str:
    """The complete self-contained page (render stage)."""
    from markupsafe import Markup

    from .._version import __version__
    from .assets import script_safe, vega_bundle
    template = _environment().get_template("report.html.j2")
    summary_json = _spec_json(summary) if summary is not None else None
    return template.render(
        title=title, sections=sections, version=__version__,
        vega_js=Markup(script_safe(vega_bundle())),
        summary_json=Markup(summary_json) if summary_json else None)


def write_report(result, out_dir, replay=None, recommendation=None, calibration=None) -> Path:
    """Write ``report.html`` for an ``AnalysisResult`` (plus replay results, a recommendation
    and a Redis calibration when given) into ``out_dir`` and return its path."""
    sections = build_sections(result, replay=replay, recommendation=recommendation, calibration=calibration)
    name = Path(str(result.trace.path)).name
    html = render_html(sections, title=f"kvctrace report: {name}", summary=result.summary())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / REPORT_FILE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
