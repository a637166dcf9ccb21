"""The generated report in a real headless Chromium, with the network blocked: every chart is
drawn (an SVG per container), nothing is logged as an error, and no request leaves the file."""
from __future__ import annotations

import pytest

from kvctrace.analysis import analyze
from kvctrace.report.build import write_report

from .report_support import chromium_or_skip, generated_trace, open_conversation, replay_runs, visit_report


def _assert_clean_render(visit, n_expected):
    assert len(visit.charts) == n_expected
    for chart in visit.charts:
        assert chart["rendered"] == "ok", chart
        assert chart["svg"] + chart["canvas"] >= 1, chart
        assert chart["marks"] >= 1, f"{chart['id']} drew no marks"
    errors = [text for kind, text in visit.console if kind in ("error", "warning")]
    assert errors == []
    assert visit.page_errors == []
    assert visit.blocked == []


def test_network_blocker_records_requests(tmp_path):
    """The harness itself: a page that tries to fetch from the network is caught."""
    chromium_or_skip()
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">'
                    '<script>window.kvctraceRendered = Promise.resolve(0);</script></body></html>')
    visit = visit_report(page)
    assert any("example.invalid" in url for url in visit.blocked)


def test_generated_trace_report_renders_offline(tmp_path):
    chromium_or_skip()
    trace = generated_trace(400, types=["chat", "code", "agent"], sessions=[f"s{i}" for i in range(50)])
    path = write_report(analyze(trace), tmp_path / "out", replay=replay_runs(trace))
    html = path.read_text(encoding="utf-8")
    n_charts = html.count('class="vega-chart"')
    assert n_charts >= 20 and 'id="chart-replay-0"' in html
    visit = visit_report(path, screenshot=tmp_path / "report.png")
    _assert_clean_render(visit, n_charts)
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_report_with_recommendation_renders_offline(tmp_path):
    chromium_or_skip()
    sweep_mod = pytest.importorskip("kvctrace.replay.sweep")
    from kvctrace.replay import load_preset
    trace = generated_trace(200, types=["chat"], sessions=["a", "b", "c"])
    base = load_preset("h100-llama3-8b")
    bb = base.block_bytes(trace.block_size)
    budgets = {t.name: int(trace.n_unique_blocks * f) * bb for t, f in zip(base.tiers, (0.05, 0.2, 0.5))}
    rec = sweep_mod.recommend(trace, base, budgets=budgets, grid=sweep_mod.Grid(
        policies=("lru", "s3fifo"), admission=(1,), fractions=(0.5, 1.0), indexes=("redis-mget", "chime")))
    path = write_report(analyze(trace), tmp_path / "out", replay=replay_runs(trace), recommendation=rec)
    n_charts = path.read_text(encoding="utf-8").count('class="vega-chart"')
    visit = visit_report(path, screenshot=tmp_path / "recommendation.png")
    _assert_clean_render(visit, n_charts)


def test_conversation_trace_report_renders_offline(tmp_path):
    chromium_or_skip()
    path = write_report(analyze(open_conversation()), tmp_path / "out")
    n_charts = path.read_text(encoding="utf-8").count('class="vega-chart"')
    visit = visit_report(path, screenshot=tmp_path / "conversation.png")
    _assert_clean_render(visit, n_charts)


def test_tiny_traces_render_without_warnings(tmp_path):
    """Edge cases: one request of one block (no reuse at all), and two identical requests at the
    same instant; charts with nothing to draw are replaced by a sentence, the rest draw cleanly."""
    import numpy as np

    from kvctrace import Trace
    chromium_or_skip()
    for name, offsets, blocks in (("single", [0, 1], [5]), ("twins", [0, 2, 4], [1, 2, 1, 2])):
        trace = Trace.from_arrays(np.array(offsets), np.array(blocks), ts=np.zeros(len(offsets) - 1), block_size=16)
        path = write_report(analyze(trace), tmp_path / name)
        html = path.read_text(encoding="utf-8")
        if name == "single":
            assert "Reuse distance distribution: nothing to draw" in html
        visit = visit_report(path)
        _assert_clean_render(visit, html.count('class="vega-chart"'))
