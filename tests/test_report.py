"""The HTML report: structure, self-containment, chart conventions (title, labelled axes,
caption, at most 5,000 rows), size on the conversation trace, lengths-only traces, and
re-rendering from a .duckdb."""
from __future__ import annotations

import dataclasses
import json
import re

import altair as alt
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from kvctrace.analysis import analyze
from kvctrace.formatting import format_bytes
from kvctrace.report import charts
from kvctrace.report.assets import script_safe, vega_bundle
from kvctrace.report.build import build_sections, write_report, zipf_line

from .report_support import conversation_trace_path, generated_trace, open_conversation

SPEC_RE = re.compile(r'<script type="application/json" id="(spec-[^"]+)">(.*?)</script>', re.DOTALL)


@pytest.fixture(scope="module")
def generated_result():
    return analyze(generated_trace(300, types=["chat", "code"], sessions=[f"s{i}" for i in range(40)]))


def _all_charts(result):
    r, a, h, w = result.reuse, result.access, result.hotness, result.workload
    return {
        "hit_rate_cdf": charts.hit_rate_cdf(r.hit_rate_cdf, r.request_hit_rate_shares),
        "block_id_vs_time": charts.block_id_vs_time(r.block_time),
        "reuse_over_time": charts.reuse_over_time(r.windows),
        "reuse_distance": charts.reuse_distance_distribution(r.distance_counts, r.cold_accesses),
        "reuse_time_s": charts.reuse_time_distribution(r.reuse_time_hist, "seconds"),
        "reuse_time_req": charts.reuse_time_distribution(r.reuse_time_hist, "requests"),
        "mrc": charts.miss_ratio_curve(r.mrc, r.shards),
        "sequential": charts.sequential_share_distribution(a.per_request),
        "run_lengths": charts.run_length_distribution(a.run_lengths),
        "runs_test": charts.runs_test_pvalues(a.per_request),
        "lorenz": charts.lorenz_curve(h.lorenz),
        "rank_frequency": charts.rank_frequency(h.rank_frequency, zipf_line(h)),
        "drift": charts.hot_set_drift(h.drift, h.drift_top_k),
        "depth": charts.heat_by_depth(h.heat_by_depth),
        "arrivals": charts.arrival_rate(w.arrivals, w.arrival_window_s),
        "lengths": charts.length_distribution(w.length_quantiles),
        "types": charts.request_types(w.types),
        "sessions": charts.session_sizes(w.sessions),
        "prefix_depth": charts.prefix_tree_depth(result.prefix.depth_distribution),
        "prefix_fanout": charts.prefix_tree_fanout(result.prefix.fanout_distribution),
    }


def _encodings(spec):
    """Every encoding block of a (possibly layered) spec."""
    out = []
    if "encoding" in spec:
        out.append(spec["encoding"])
    for layer in spec.get("layer", []):
        out += _encodings(layer)
    return out


def test_every_chart_is_titled_labelled_captioned_and_valid(generated_result):
    for name, chart in _all_charts(generated_result).items():
        spec = chart.to_dict()             # validates against the Vega-Lite schema
        assert spec.get("title"), name
        caption = spec.get("description", "")
        assert len(caption) > 40 and caption.rstrip().endswith("."), (name, caption)
        titled = False
        for enc in _encodings(spec):
            for channel in ("x", "y"):
                ch = enc.get(channel)
                if isinstance(ch, dict) and "field" in ch and (ch.get("title") or (ch.get("axis") or {}).get("title")):
                    titled = True
        assert titled, f"{name}: x/y axes need titles with units"
        assert sum(len(rows) for rows in spec.get("datasets", {}).values()) <= charts.MAX_MARKS, name


def test_axis_titles_carry_units_on_the_main_layer(generated_result):
    for name, chart in _all_charts(generated_result).items():
        enc = _encodings(chart.to_dict())
        def title_of(ch):
            return ch.get("title") or (ch.get("axis") or {}).get("title") if isinstance(ch, dict) else None
        main = next(e for e in enc if title_of(e.get("x")))
        for channel in ("x", "y"):
            title = title_of(main[channel])
            assert re.search(r"\(|share|ratio|rank|requests|type|Jaccard", title), (name, channel, title)


def test_downsampling_keeps_ends_and_says_so():
    frame = pl.DataFrame({"block_share": np.linspace(0, 1, 20_001), "access_share": np.linspace(0, 1, 20_001) ** 3})
    spec = charts.lorenz_curve(frame).to_dict()
    rows = [r for rows in spec["datasets"].values() for r in rows if "block_share" in r and len(rows) > 2]
    assert len(rows) <= charts.MAX_MARKS
    assert rows[0]["block_share"] == 0.0 and rows[-1]["block_share"] == 1.0
    assert "Downsampled to" in spec["description"] and "20,001" in spec["description"]
    assert charts.evenly(frame, 10).height == 10


def test_log2_bins_count_every_value():
    values = np.array([0, 0, 1, 2, 3, 4, 7, 8, 1000])
    bins = charts.log2_bins(values)
    assert bins["count"].sum() == values.shape[0]
    assert bins["lo"].to_list()[:5] == [0, 1, 2, 4, 8]
    assert bins.filter(pl.col("lo") == 2)["count"][0] == 2      # 2 and 3
    assert bins.filter(pl.col("lo") == 512)["count"][0] == 1


def test_zipf_line_matches_the_analysis_slope(generated_result):
    h = generated_result.hotness
    line = zipf_line(h)
    assert line["alpha"] == pytest.approx(h.zipf_alpha, rel=1e-9)
    assert line["rank_max"] == h.zipf_fit_ranks[1]
    counts = np.sort(h.per_block["accesses"].to_numpy())[::-1][:line["rank_max"]]
    slope, intercept = np.polyfit(np.log(np.arange(1, counts.shape[0] + 1)), np.log(counts), 1)
    assert line["alpha"] == pytest.approx(-slope, rel=1e-9)
    assert line["intercept"] == pytest.approx(intercept, rel=1e-9)


def test_report_is_one_self_contained_file(generated_result, tmp_path):
    path = write_report(generated_result, tmp_path / "out")
    assert path.name == "report.html" and path.parent == tmp_path / "out"
    html = path.read_text(encoding="utf-8")
    assert html.count("window.vegaEmbed=") == 1          # the libraries, inlined once
    assert html.count(vega_bundle()[:200]) == 1
    page = html.replace(script_safe(vega_bundle()), "")   # the page around the library code
    assert len(page) < len(html)
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page, flags=re.IGNORECASE)
    assert not re.search(r"<script[^>]*\bsrc=", page, flags=re.IGNORECASE)
    assert not re.search(r"@import|@font-face|url\(|https?://(?!vega\.github\.io/schema/)", page, flags=re.IGNORECASE)
    containers = re.findall(r'class="vega-chart" id="chart-([^"]+)" data-spec="spec-([^"]+)"', html)
    specs = dict(SPEC_RE.findall(html))
    assert len(containers) >= 15 and all(a == b for a, b in containers)
    assert set(specs) == {f"spec-{b}" for _, b in containers}
    for text in specs.values():
        spec = json.loads(text)
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    summary = json.loads(re.search(r'id="kvctrace-summary">(.*?)</script>', html, re.DOTALL).group(1))
    assert summary == json.loads(json.dumps(generated_result.summary()))
    for section in ("overview", "workload", "reusability", "reuse-distance", "access", "hotness", "prefix"):
        assert f'<section id="{section}">' in html


def test_sections_hold_the_analysis_figures(generated_result):
    sections = {s.id: s for s in build_sections(generated_result)}
    facts = dict((label, value) for label, value, _ in sections["overview"].facts)
    tr = generated_result.trace
    assert facts["requests"] == f"{tr.n_requests:,}"
    assert facts["unique blocks"] == f"{tr.n_unique_blocks:,}"
    assert facts["ideal hit ratio (blocks)"] == f"{generated_result.reuse.ideal_hit_ratio_blocks:.4f}"
    groups = next(t for t in sections["prefix"].tables if t.title == "Top shared-prefix groups")
    top = generated_result.prefix.groups.row(0, named=True)
    assert groups.rows[0][2] == f"{top['n_requests']:,}"


def test_every_registered_analysis_has_its_report_sections(generated_result):
    from kvctrace.analysis.registry import ANALYSES
    from kvctrace.report.build import ANALYSIS_SECTIONS
    named = [sid for analysis in ANALYSES for sid in analysis.report_sections]
    assert len(named) == len(set(named))
    assert sorted(named) == sorted(ANALYSIS_SECTIONS)    # every id has a builder, every builder an analysis
    ids = [s.id for s in build_sections(generated_result)]
    assert ids == ["overview", *ANALYSIS_SECTIONS, "replay"]


def test_lengths_only_trace_says_reuse_cannot_be_measured(tmp_path):
    trace = generated_trace(50)
    trace = dataclasses.replace(trace, has_block_ids=False, blocks=np.zeros(0, np.int64),
                                offsets=np.zeros(trace.n_requests + 1, np.int64), n_unique_blocks=0)
    result = analyze(trace)
    html = write_report(result, tmp_path).read_text(encoding="utf-8")
    assert html.count("Not measured:") == 6       # reusability, reuse distance, access, hotness, prefix, divergence
    assert html.count("Not run:") == 1            # replay
    assert "no block ids" in html
    assert 'id="chart-workload-0"' in html


def test_script_safe_neutralises_closing_tags():
    assert "</script" not in script_safe('x = "</script><script>alert(1)</SCRIPT>"').lower()


def test_conversation_report_size_and_marks(tmp_path):
    result = analyze(open_conversation())
    path = write_report(result, tmp_path)
    html = path.read_text(encoding="utf-8")
    assert path.stat().st_size < 3_000_000
    for _, text in SPEC_RE.findall(html):
        assert sum(len(rows) for rows in json.loads(text).get("datasets", {}).values()) <= charts.MAX_MARKS
    assert f"{result.reuse.ideal_hit_ratio_blocks:.4f}" == "0.3664" and ">0.3664<" in html


def _specs_and_summary(html: str):
    summary = json.loads(re.search(r'id="kvctrace-summary">(.*?)</script>', html, re.DOTALL).group(1))
    return dict(SPEC_RE.findall(html)), summary


def test_report_from_duckdb_matches_analyze(tmp_path):
    """`kvctrace analyze --db` then `kvctrace report DB`: the same figures, without re-ingesting."""
    from kvctrace.cli import app
    try:
        from kvctrace.store import open_trace  # noqa: F401
    except ImportError:
        pytest.skip("ingest into a .duckdb is not available yet")
    src = conversation_trace_path()
    db = tmp_path / "conversation.duckdb"
    runner = CliRunner()
    first = runner.invoke(app, ["analyze", str(src), "--db", str(db), "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "a" / "report.html").exists() and (tmp_path / "a" / "summary.json").exists()
    second = runner.invoke(app, ["report", str(db), "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert str(tmp_path / "b" / "report.html") in second.output
    specs_a, summary_a = _specs_and_summary((tmp_path / "a" / "report.html").read_text(encoding="utf-8"))
    specs_b, summary_b = _specs_and_summary((tmp_path / "b" / "report.html").read_text(encoding="utf-8"))
    assert specs_a == specs_b
    summary_a["trace"].pop("path"), summary_b["trace"].pop("path")
    assert summary_a == summary_b


def test_jupyter_reprs_show_figures_escaped(generated_result):
    from .report_support import generated_trace as make
    trace = make(30, path="<b>evil</b>.jsonl")
    html = trace._repr_html_()
    assert "&lt;b&gt;evil&lt;/b&gt;.jsonl" in html and "<b>evil" not in html
    assert f"<td class='v'>{trace.n_requests:,}</td>" in html
    full = generated_result._repr_html_()
    assert "<details" in full and "ideal_hit_ratio_blocks" in full
    for part in ("reuse", "access", "hotness", "prefix", "workload"):
        rendered = getattr(generated_result, part)._repr_html_()
        assert rendered.startswith("<style>") and "<table>" in rendered
    value = generated_result.reuse.summary()["ideal_hit_ratio_blocks"]
    assert f"{value:.4f}".rstrip("0") in generated_result.reuse._repr_html_()


def test_replay_section_compares_index_models_on_the_same_tiers(tmp_path):
    from kvctrace.report.build import comparable_index_runs, replay_latency_cdfs, replay_tier_curves
    from .report_support import replay_runs
    trace = generated_trace(200)
    runs = replay_runs(trace)
    chosen = comparable_index_runs(runs)
    assert set(chosen) == {"redis-mget", "redis-get", "sherman", "chime"}
    setups = {tuple(r.tiers["capacity_blocks"].to_list()) + tuple(r.tiers["policy"].to_list()) for r in chosen.values()}
    assert len(setups) == 1
    curves = replay_tier_curves(runs)
    # one curve per policy and tier: that tier at each scale, the other two kept
    assert curves.height == 2 * 3 * 3
    assert curves.group_by("tier", "policy").len()["len"].to_list() == [3] * 6
    for (tier, policy), g in curves.group_by("tier", "policy"):
        assert g["fixed"].n_unique() == 1 and tier not in g["fixed"][0]
    cdf = replay_latency_cdfs(chosen, "ttft_ms")
    for label, r in chosen.items():
        part = cdf.filter(pl.col("index") == label)
        assert part["value"].max() == pytest.approx(r.requests["ttft_ms"].max())
        assert part["value"].min() == pytest.approx(r.requests["ttft_ms"].min())
        assert part["cdf"].is_sorted() and part["cdf"][-1] == 1.0
    result = analyze(trace)
    sections = {s.id: s for s in build_sections(result, replay=runs)}
    replay_sec = sections["replay"]
    assert [f.title for f in replay_sec.figures] == [
        "Hit ratio per tier vs that tier's capacity", "Mean TTFT vs one tier's capacity", "Misses by cause, per tier",
        "Time to first token by index model", "Metadata lookup time by index model"]
    misses = next(t for t in replay_sec.tables if t.title == "Misses by cause")
    assert [row[0] for row in misses.rows] == ["hbm", "dram", "nvme"]
    for fig in replay_sec.figures:
        assert len(fig.caption) > 40
    assert "--replay" in {s.id: s for s in build_sections(result)}["replay"].unavailable


def test_replay_study_varies_one_tier_at_a_time_and_the_index():
    from kvctrace.replay import load_preset
    from kvctrace.replay.study import replay_study
    from kvctrace.report.build import replay_tier_curves
    trace = generated_trace(120)
    base = load_preset("h100-llama3-8b")
    study = replay_study(trace, base, policies=("lru", "fifo"), scales=(0.5, 1.0, 2.0), index_kinds=("sherman", "chime"))
    T = len(base.tiers)
    assert len(study) == 2 * (1 + T * 2) + 2 + 1 + T
    caps = base.capacities(trace.block_size)
    for i, policy in enumerate(("lru", "fifo")):
        runs = study.results[i * (1 + 2 * T):(i + 1) * (1 + 2 * T)]
        assert all(r.tiers["policy"].to_list() == [policy] * T for r in runs)
        assert runs[0].tiers["capacity_blocks"].to_list() == caps
        expected = [[max(1, round(c * s)) if j == k else c for j, c in enumerate(caps)] for k in range(T) for s in (0.5, 2.0)]
        assert [r.tiers["capacity_blocks"].to_list() for r in runs[1:]] == expected
    assert [r.config.index.kind for r in study.results[2 * (1 + 2 * T):][:2]] == ["sherman", "chime"]
    assert study.base.config == base and study.base.tiers["capacity_blocks"].to_list() == caps
    # each curve: one tier at 0.5, 1 and 2 times its capacity, the others as configured (the
    # preset's own policy, lru, also at the marginal step)
    curves = replay_tier_curves(study)
    points = {(tier, policy): n for tier, policy, n in curves.group_by("tier", "policy").len().iter_rows()}
    assert points == {**{(t.name, "fifo"): 3 for t in base.tiers}, **{(t.name, "lru"): 4 for t in base.tiers}}
    # the marginal value of each tier: the config vs that tier one step larger
    assert [m.tier for m in study.marginal] == [t.name for t in base.tiers]
    grown = study.results[-T:]
    for k, (m, r) in enumerate(zip(study.marginal, grown)):
        assert r.tiers["capacity_blocks"].to_list() == [c + m.step_blocks if j == k else c for j, c in enumerate(caps)]
        assert m.prefix_hits_added == int(r.tiers["prefix_hits"].sum() - study.base.tiers["prefix_hits"].sum())
        assert m.sentence().startswith(f"The next {format_bytes(m.step_bytes)} of {m.tier} (")


def test_marginal_steps_are_round_and_about_a_quarter_of_the_tier():
    from kvctrace.replay.study import marginal_step_bytes
    GB, MB = 10**9, 10**6
    assert [marginal_step_bytes(c, 64 * MB) // GB for c in (48 * GB, 256 * GB, 3_840 * GB, 30_000 * GB)] == [8, 64, 512, 4000]
    assert marginal_step_bytes(2 * GB, 64 * MB) == GB // 2          # below 1 GB: powers of two of a GB
    assert marginal_step_bytes(0, 168 * MB) >= 168 * MB              # no capacity: at least a block


def test_recommendation_section_shows_the_pick_its_reasons_and_the_sweep(tmp_path):
    sweep_mod = pytest.importorskip("kvctrace.replay.sweep")
    from kvctrace.replay import load_preset
    trace = generated_trace(200)
    base = load_preset("h100-llama3-8b")
    bb = base.block_bytes(trace.block_size)
    budgets = {t.name: int(trace.n_unique_blocks * f) * bb for t, f in zip(base.tiers, (0.05, 0.2, 0.5))}
    grid = sweep_mod.Grid(policies=("lru", "fifo"), admission=(1, 2), fractions=(0.5, 1.0), indexes=("redis-mget", "sherman"))
    rec = sweep_mod.recommend(trace, base, budgets=budgets, grid=grid)
    sections = {s.id: s for s in build_sections(analyze(trace), recommendation=rec)}
    sec = sections["replay"]
    facts = {label: value for label, value, _ in sec.facts}
    assert facts["recommended index"] == rec.row["index"] and facts["recommended policy"] == rec.row["policy"]
    assert sec.lists == [{"title": "Why this configuration", "items": list(rec.reasons)}] and rec.reasons
    assert sec.figures[0].title == "Cost frontier: memory $ vs prefill GPU time saved"   # the default objective: cost
    hints = {label: hint for label, _, hint in sec.facts}
    assert hints["ties"] == rec.sweep.tie and facts["ties"].endswith(("tie", "no tie"))
    ranked = next(t for t in sec.tables if t.title == "Best configurations")
    assert len(ranked.rows) == min(10, rec.sweep.table.height) and ranked.rows[0][0] == "1"
    front = next(t for t in sec.tables if t.title == "Cost frontier")
    assert len(front.rows) == rec.sweep.frontier.height
    by_ttft = sweep_mod.recommend(trace, base, budgets=budgets, grid=grid, objective="p99-ttft")
    titles = [f.title for f in build_sections(analyze(trace), recommendation=by_ttft)[-1].figures]
    assert titles[:2] == ["Cost frontier: memory $ vs prefill GPU time saved", "Sweep: objective vs memory"]
    html = write_report(analyze(trace), tmp_path, recommendation=rec).read_text(encoding="utf-8")
    assert "Why this configuration" in html and 'id="chart-replay-0"' in html


def test_report_command_writes_the_report_and_adds_replays_on_request(tmp_path):
    from kvctrace.cli import app
    from kvctrace.synth import write_trace
    src = write_trace(tmp_path / "tiny.jsonl", "mooncake", n_requests=150, seed=3)
    runner = CliRunner()
    plain = runner.invoke(app, ["report", str(src), "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0, plain.output
    assert plain.output.strip() == f"wrote {tmp_path / 'plain' / 'report.html'}"
    html = (tmp_path / "plain" / "report.html").read_text(encoding="utf-8")
    assert '<section id="reusability">' in html and "no replay in this report" in html
    replayed = runner.invoke(app, ["report", str(src), "--out", str(tmp_path / "replayed"), "--replay"])
    assert replayed.exit_code == 0, replayed.output
    html = (tmp_path / "replayed" / "report.html").read_text(encoding="utf-8")
    assert '<section id="replay">' in html and "Time to first token by index model" in html
    bad = runner.invoke(app, ["report", str(src), "--preset", "no-such-preset"])
    assert bad.exit_code == 1 and "no-such-preset" in bad.output


def test_access_section_without_testable_requests_says_so_instead_of_an_empty_chart():
    from kvctrace import Trace
    offsets = np.arange(0, 41, 4)                    # ten requests of four fresh, consecutive blocks
    trace = Trace.from_arrays(offsets, np.arange(40), ts=np.arange(10.0), block_size=16)
    sec = {s.id: s for s in build_sections(analyze(trace))}["access"]
    assert [f.title for f in sec.figures] == ["Sequential share per request", "Run-length distribution"]
    assert any("runs test applies to none" in n for n in sec.notes)
