"""analyze(): every analysis in one result, and the summary dict behind summary.json."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from kvctrace import Trace
from kvctrace.analysis import AnalysisResult, analyze, trace_name, write_summary
from kvctrace.results import ResultMixin

from . import naive

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

REQUIRED = {
    "trace": ["path", "format", "block_size", "requests", "accesses", "unique_blocks", "duration_s",
              "rejected_lines"],
    "reuse": ["ideal_hit_ratio_blocks", "ideal_hit_ratio_tokens", "request_hit_rate_share_ge_0_5",
              "request_hit_rate_share_ge_0_8", "one_hit_block_share"],
    "access": ["sequential_share_mean_per_request", "sequential_share_blocks", "runs_test_share_p_gt_0_05"],
    "hotness": ["zipf_alpha", "gini", "top_1pct_access_share", "top_10pct_access_share"],
}


def open_mooncake(name):
    path = DATASETS / "mooncake" / f"{name}.jsonl"
    if not path.exists():
        pytest.skip("shared datasets not available")
    from kvctrace import open_trace
    return open_trace(path)


def random_trace(seed=0, n_req=300):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 12, n_req)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    blocks = rng.zipf(1.4, offsets[-1]) % 400
    return Trace.from_arrays(offsets, blocks, ts=np.sort(rng.uniform(0, 600, n_req)), block_size=16)


@pytest.fixture(scope="module")
def conversation():
    return analyze(open_mooncake("conversation_trace"))


def test_summary_has_required_keys_and_is_strict_json(conversation):
    s = conversation.summary()
    for section, keys in REQUIRED.items():
        for key in keys:
            assert key in s[section], f"{section}.{key} missing"
    assert all(s[name]["available"] for name in ("reuse", "access", "hotness"))
    text = json.dumps(s, allow_nan=False)
    assert json.loads(text) == s
    assert json.loads(conversation.to_json()) == s


def test_summary_golden_conversation(conversation):
    s = conversation.summary()
    assert s["trace"]["requests"] == 12031
    assert s["trace"]["block_size"] == 512
    assert s["reuse"]["ideal_hit_ratio_blocks"] == pytest.approx(0.3664, abs=5e-5)
    assert s["reuse"]["request_hit_rate_share_ge_0_5"] == pytest.approx(0.42, abs=0.01)
    assert s["access"]["sequential_share_mean_per_request"] == pytest.approx(0.761, abs=5e-4)
    assert s["access"]["sequential_share_blocks"] == pytest.approx(0.935, abs=5e-4)
    # one-hit share is measured by reuse and hotness independently: they must agree
    assert s["reuse"]["one_hit_block_share"] == pytest.approx(s["hotness"]["one_hit_block_share"])


def test_summary_mrc_points(conversation):
    s = conversation.summary()
    mrc = s["mrc"]
    assert len(mrc) >= 51
    caps = [p["capacity_blocks"] for p in mrc]
    hr = [p["hit_ratio"] for p in mrc]
    assert caps == sorted(set(caps)) and caps[0] == 1
    assert all(a <= b for a, b in zip(hr, hr[1:]))
    assert hr[-1] == pytest.approx(s["reuse"]["ideal_hit_ratio_blocks"])  # the unlimited point
    # log-spaced: the grid reaches small and large capacities alike
    assert sum(c <= 100 for c in caps) >= 10 and caps[-1] >= s["trace"]["unique_blocks"]


def test_summary_mrc_equals_naive_lru():
    tr = random_trace(3)
    s = analyze(tr).summary()
    for point in s["mrc"][::7]:
        assert point["hit_ratio"] == pytest.approx(
            naive.naive_lru_hit_ratio(tr.blocks.tolist(), point["capacity_blocks"]))


def test_result_holds_every_result_object():
    res = analyze(random_trace(1))
    assert isinstance(res, AnalysisResult)
    assert res.reuse is not None and res.access is not None and res.hotness is not None
    assert res.reuse.mrc.height >= 51 and res.reuse.block_time.height <= 5000
    assert res.prefix is not None and res.workload is not None
    assert set(res.timings_s) == {"reuse", "access", "hotness", "prefix", "workload", "divergence"}


def test_lengths_only_trace_reports_reason_not_error():
    n = 5
    tr = Trace.from_arrays(np.zeros(n + 1, np.int64), np.zeros(0, np.int64), ts=np.arange(n, dtype=float),
                           input_len=np.full(n, 100), output_len=np.full(n, 10))
    tr.has_block_ids = False
    tr.format = "lengths"
    res = analyze(tr)
    s = res.summary()
    assert res.reuse is None and s["mrc"] is None
    for name in ("reuse", "access", "hotness", "prefix"):
        assert s[name]["available"] is False
        assert "no block ids" in s[name]["reason"]
    assert s["trace"]["requests"] == n and s["trace"]["has_block_ids"] is False
    assert s["workload"]["available"] is True
    assert res.workload is not None


def test_options_are_passed_through():
    res = analyze(random_trace(2), reuse_opts={"shards": False, "window_s": 30.0})
    assert res.reuse.shards is None and res.reuse.window_s == 30.0
    assert "shards" not in res.summary()["reuse"]


def test_write_summary(tmp_path):
    res = analyze(random_trace(4))
    path = write_summary(res, tmp_path / "out" / "x")
    assert path == tmp_path / "out" / "x" / "summary.json"
    assert json.loads(path.read_text()) == res.summary()


@pytest.mark.parametrize("path,name", [
    ("data/conversation_trace.jsonl", "conversation_trace"),
    ("t.jsonl.zst", "t"), ("a/b/trace.duckdb", "trace"), ("weird name!.csv", "weird_name"),
    ("x.parquet", "x"), (".jsonl", "trace")])
def test_trace_name(path, name):
    assert trace_name(path) == name


def test_registry_drives_run_order_summary_and_attributes(monkeypatch):
    from kvctrace.analysis import registry
    from kvctrace.results import Result
    order = []
    patched = tuple(dataclasses.replace(a, run=_recording(a.run, a.name, order)) for a in registry.ANALYSES)
    monkeypatch.setattr(registry, "ANALYSES", patched)
    res = analyze(random_trace(5))
    # largest temporaries first (peak memory), workload (keeps almost nothing) before all;
    # summary and console in registry order
    assert order == ["workload", "reuse", "prefix", "divergence", "hotness", "access"]
    assert list(res.summary())[2:] == ["reuse", "access", "hotness", "prefix", "workload", "divergence", "mrc"]
    for name in registry.names():
        assert isinstance(getattr(res, name), Result) and res.results[name] is getattr(res, name)
    with pytest.raises(AttributeError):
        res.no_such_analysis


def _recording(fn, name, order):
    def run(trace, **options):
        order.append(name)
        return fn(trace, **options)
    return run


@dataclasses.dataclass(frozen=True)
class _CountResult(ResultMixin):
    requests: int

    def summary(self) -> dict:
        return {"requests_counted": self.requests}


def test_a_new_analysis_is_one_registry_entry(monkeypatch, capsys):
    """A registered analysis is run, gets its summary section, its attribute, its options and
    its console rows without any other list being edited."""
    from kvctrace.analysis import registry
    from kvctrace.analysis.registry import Analysis
    from kvctrace.cli import _print_analysis
    seen = {}

    def analyze_count(trace, *, scale=1):
        seen["scale"] = scale
        return _CountResult(trace.n_requests * scale)
    entry = Analysis("count", "request count", analyze_count, needs_block_ids=True, headline=("requests_counted",),
                     report_sections=("count",), run_rank=9)
    monkeypatch.setattr(registry, "ANALYSES", registry.ANALYSES + (entry,))
    res = analyze(random_trace(6), count_opts={"scale": 2})
    assert seen == {"scale": 2} and res.count.requests == 2 * res.trace.n_requests
    assert res.summary()["count"] == {"available": True, "requests_counted": 600}
    with pytest.raises(TypeError, match="count_opts"):
        analyze(random_trace(6), cuont_opts={})
    lengths_only = Trace.from_arrays(np.zeros(4, np.int64), np.zeros(0, np.int64), ts=np.arange(3, dtype=float),
                                     input_len=np.full(3, 100), output_len=np.full(3, 10))
    lengths_only.has_block_ids = False
    s = analyze(lengths_only).summary()
    assert s["count"]["available"] is False and "only workload statistics apply" in s["count"]["reason"]
    _print_analysis(res.summary(), [])
    console = capsys.readouterr().out
    assert "requests_counted" in console and "600" in console
