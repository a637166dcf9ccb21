"""The report as a reader sees it (issue 9): curves that coincide are said to, legends and
figures are not cut, log axes label only powers of ten, axes end at the data, and the prose
has no glitches ("1 roots", "176.85 s windows")."""
from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from kvctrace import Trace
from kvctrace.analysis import analyze
from kvctrace.report import charts
from kvctrace.report.build import hotness_section, prefix_section, write_report

from .report_support import chromium_or_skip, generated_trace, open_conversation, replay_runs, visit_report


def rows(spec) -> list:
    return [r for values in spec.get("datasets", {}).values() for r in values]


def main_encoding(spec) -> dict:
    """The encoding of the layer that carries the tooltips (the data layer)."""
    layers = spec.get("layer") or [spec.get("spec", spec)]
    return next(layer["encoding"] for layer in layers if "tooltip" in layer.get("encoding", {}))


# ---- coinciding curves -------------------------------------------------------------------------

def test_identical_block_and_prefix_cdfs_are_one_line_said_identical():
    cdf = pl.DataFrame({"reading": ["block"] * 3 + ["prefix"] * 3, "hit_rate": [0.0, 0.5, 1.0] * 2,
                        "cdf": [0.2, 0.6, 1.0] * 2})
    spec = charts.hit_rate_cdf(cdf).to_dict()
    assert {r["reading"] for r in rows(spec) if "reading" in r} == {"block = prefix (identical)"}
    apart = cdf.with_columns(pl.when(pl.col("reading") == "prefix").then(pl.col("cdf") * 0.5).otherwise(pl.col("cdf")))
    spec = charts.hit_rate_cdf(apart).to_dict()
    assert {r["reading"] for r in rows(spec) if "reading" in r} == {"block", "prefix"}


def test_identical_reuse_over_time_readings_are_one_line_said_identical():
    windows = pl.DataFrame({"t_start": [0.0, 10.0, 20.0], "t_end": [10.0, 20.0, 30.0], "requests": [3, 4, 5],
                            "accesses": [9, 12, 15], "hit_ratio": [0.1, 0.4, 0.5], "prefix_hit_ratio": [0.1, 0.4, 0.5]})
    spec = charts.reuse_over_time(windows).to_dict()
    assert {r["reading"] for r in rows(spec)} == {"block = prefix (identical)"}


def _latency(values: dict) -> pl.DataFrame:
    probs = np.linspace(0, 1, 51)
    return pl.concat([pl.DataFrame({"index": [k] * probs.shape[0], "value": np.asarray(v, dtype=float), "cdf": probs})
                      for k, v in values.items()])


def test_coinciding_latency_curves_share_a_line_and_the_caption_says_so():
    base = np.geomspace(5, 5000, 51)
    cdf = _latency({"chime": base, "sherman": base, "rdma-hash": base * 1.0001, "redis-get": base * 3})
    spec = charts.latency_cdf(cdf, "ms", "TTFT", "time to first token").to_dict()
    labels = {r["index"] for r in rows(spec)}
    assert labels == {"chime ≈ sherman ≈ rdma-hash", "redis-get"}
    exact = charts.latency_cdf(_latency({"chime": base, "sherman": base}), "ms", "TTFT", "time to first token")
    assert {r["index"] for r in rows(exact.to_dict())} == {"chime = sherman (identical)"}
    assert "coincide" in spec["description"] and "rdma-hash" in spec["description"]
    assert "strokeDash" in main_encoding(spec)          # distinct lines stay visible where they cross


def test_distinct_latency_curves_keep_their_own_lines():
    base = np.geomspace(5, 5000, 51)
    spec = charts.latency_cdf(_latency({"a": base, "b": base * 2}), "ms", "TTFT", "time to first token").to_dict()
    assert {r["index"] for r in rows(spec)} == {"a", "b"} and "coincide" not in spec["description"]


# ---- axes --------------------------------------------------------------------------------------

def _is_power_of_ten(v) -> bool:
    return v == 0 or (v > 0 and abs(math.log10(v) - round(math.log10(v))) < 1e-9)


def test_fanout_chart_labels_powers_of_ten_only():
    fan = pl.DataFrame({"fanout": [0, 1, 2, 3, 5, 9, 7373], "nodes": [11905, 170000, 400, 90, 30, 4, 1]})
    y = main_encoding(charts.prefix_tree_fanout(fan).to_dict())["y"]
    assert y["axis"]["values"] and all(_is_power_of_ten(v) for v in y["axis"]["values"])


@pytest.fixture(scope="module")
def result():
    return analyze(generated_trace(300, types=["chat", "code"], sessions=[f"s{i}" for i in range(40)]))


def _scale(spec, channel="x"):
    return main_encoding(spec)[channel].get("scale", {})


def test_axes_end_at_the_data(result):
    r, h, w, p = result.reuse, result.hotness, result.workload, result.prefix
    for name, spec, channels in (
            ("arrivals", charts.arrival_rate(w.arrivals, w.arrival_window_s).to_dict(), "x"),
            ("block_id_vs_time", charts.block_id_vs_time(r.block_time).to_dict(), "xy"),
            ("reuse_over_time", charts.reuse_over_time(r.windows).to_dict(), "x"),
            ("drift", charts.hot_set_drift(h.drift, h.drift_top_k).to_dict(), "x"),
            ("heat_by_depth", charts.heat_by_depth(h.heat_by_depth).to_dict(), "xy"),
            ("prefix_depth", charts.prefix_tree_depth(p.depth_distribution).to_dict(), "x"),
            ("mrc", charts.miss_ratio_curve(r.mrc, r.shards).to_dict(), "x"),
            ("rank_frequency", charts.rank_frequency(h.rank_frequency).to_dict(), "xy")):
        for channel in channels:
            assert _scale(spec, channel).get("nice") is False, (name, channel)
    mrc = charts.miss_ratio_curve(r.mrc, r.shards).to_dict()
    assert _scale(mrc)["domain"][1] == pytest.approx(float(r.mrc["capacity_blocks"].max()))


def test_log_axes_label_only_powers_of_ten(result):
    r, h = result.reuse, result.hotness
    for spec, channel in ((charts.miss_ratio_curve(r.mrc, r.shards).to_dict(), "x"),
                          (charts.rank_frequency(h.rank_frequency).to_dict(), "x"),
                          (charts.heat_by_depth(h.heat_by_depth).to_dict(), "y")):
        axis = main_encoding(spec)[channel]["axis"]
        assert "round(log(datum.value)" in axis.get("labelExpr", ""), axis


def test_tier_chart_axes_end_at_the_data_and_label_powers_of_ten():
    curves = pl.DataFrame({"tier": ["hbm"] * 4 + ["dram"] * 4, "policy": ["lru", "lru", "fifo", "fifo"] * 2,
                           "capacity_blocks": [22, 1428, 22, 1428, 95, 6100, 95, 6100],
                           "prefix_hit_ratio": [0.02, 0.05, 0.02, 0.05, 0.01, 0.15, 0.02, 0.12],
                           "block_hit_ratio": [0.0] * 8})
    spec = charts.tier_hit_ratio_vs_capacity(curves, ["hbm", "dram"]).to_dict()
    x = spec["spec"]["encoding"]["x"]
    assert x["scale"].get("nice") is False and "round(log(datum.value)" in x["axis"]["labelExpr"]
    assert "hbm: fifo and lru coincide" in spec["description"]


# ---- text --------------------------------------------------------------------------------------

def test_counts_and_windows_read_as_prose():
    trace = Trace.from_arrays(np.array([0, 2, 4]), np.array([1, 2, 1, 3]), ts=np.array([0.0, 1.0]), block_size=16)
    res = analyze(trace)
    hints = {label: hint for label, _, hint in prefix_section(res).facts}
    assert hints["prefix-tree nodes"].startswith("1 root, ")
    odd = SimpleNamespace(hotness=dataclasses.replace(res.hotness, drift_window_s=176.85), unavailable={})
    hint = {label: hint for label, _, hint in hotness_section(odd).facts}["mean hot-set overlap"]
    assert "177-second windows" in hint and "176.85" not in hint
    caption = charts.arrival_rate(res.workload.arrivals, 17.685).to_dict()["description"]
    assert "17.7-second windows" in caption


# ---- in the browser ----------------------------------------------------------------------------

LAYOUT_PROBE = """() => {
  const problems = [];
  const visible = t => t.textContent.trim() !== '' && t.getAttribute('opacity') !== '0'
                       && getComputedStyle(t).opacity !== '0';
  document.querySelectorAll('div.vega-chart').forEach(el => {
    el.querySelectorAll('g.role-axis-label').forEach(g => {
      const boxes = Array.from(g.querySelectorAll('text')).filter(visible)
                         .map(t => [t.textContent, t.getBoundingClientRect()]);
      for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const [ta, a] = boxes[i], [tb, b] = boxes[j];
        if (a.left < b.right + 3 && b.left < a.right + 3 && a.top < b.bottom && b.top < a.bottom)
          problems.push(el.id + ' tick labels collide: ' + ta + ' / ' + tb);
      }
    });
    el.querySelectorAll('text').forEach(t => {
      if (visible(t) && t.textContent.includes('\\u2026')) problems.push(el.id + ' cut text: ' + t.textContent);
    });
  });
  document.querySelectorAll('figure').forEach(f => {
    if (f.scrollWidth > f.clientWidth + 1)
      problems.push('figure cut: ' + (f.querySelector('div.vega-chart') || {}).id + ' ' + f.scrollWidth + ' > ' + f.clientWidth);
  });
  return problems;
}"""


def test_generated_report_has_no_cut_legends_or_colliding_labels(tmp_path):
    chromium_or_skip()
    trace = generated_trace(400, types=["chat", "code", "agent"], sessions=[f"s{i}" for i in range(50)])
    path = write_report(analyze(trace), tmp_path / "out", replay=replay_runs(trace))
    assert visit_report(path, interact=lambda page: page.evaluate(LAYOUT_PROBE)).interaction == []


def test_conversation_report_has_no_cut_legends_or_colliding_labels(tmp_path):
    chromium_or_skip()
    trace = open_conversation()
    path = write_report(analyze(trace), tmp_path / "out", replay=replay_runs(trace))
    assert visit_report(path, interact=lambda page: page.evaluate(LAYOUT_PROBE)).interaction == []
