"""Workload statistics: the SQL queries against tests/naive.py on random arrival processes,
a hand-checked trace, the Mooncake conversation trace and a lengths-only Azure trace."""
from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvctrace.analysis.workload import analyze_workload, default_window_s
from kvctrace.errors import ConfigError
from kvctrace.trace import Trace

from . import naive
from .test_access import CONVERSATION, DATASETS, mooncake_trace

AZURE_CONV = DATASETS / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv"


def lengths_trace(ts, input_len, output_len, **kw) -> Trace:
    """A trace without block ids (as a lengths-only format gives)."""
    n = len(ts)
    trace = Trace.from_arrays(np.zeros(n + 1, np.int64), np.zeros(0, np.int64), ts=ts,
                              input_len=np.asarray(input_len), output_len=np.asarray(output_len),
                              format="lengths", **kw)
    trace.has_block_ids = False
    return trace


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=60),
       st.sampled_from([0.5, 1.0, 7.0, 20.0]), st.data())
def test_workload_matches_naive(gaps, window_s, data):
    ts = np.cumsum([0.0] + gaps[1:])
    n = len(ts)
    lens = data.draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n))
    outs = data.draw(st.lists(st.integers(0, 2_000), min_size=n, max_size=n))
    trace = lengths_trace(ts, lens, outs)
    res = analyze_workload(trace, window_s=window_s, dispersion_windows_s=(window_s,))
    assert res.arrivals["requests"].to_list() == naive.naive_window_counts(trace.ts, window_s)
    if trace.ts[-1] / window_s >= 2:
        row = res.dispersion.row(0, named=True)
        want = naive.naive_index_of_dispersion(trace.ts, window_s)
        if want is None:
            assert row["index_of_dispersion"] is None
        else:
            assert row["index_of_dispersion"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    else:
        assert res.dispersion.height == 0
    stats = {row["field"]: row for row in res.lengths.iter_rows(named=True)}
    for field, values in (("input_len", lens), ("output_len", outs)):
        for q in (0.5, 0.9, 0.99):
            assert stats[field][f"p{round(q * 100)}"] == pytest.approx(
                naive.naive_quantile_linear(values, q))
        assert stats[field]["mean"] == pytest.approx(sum(values) / n)
    gaps_ = np.diff(trace.ts)
    if gaps_.mean() > 0:
        assert res.interarrival["cv"] == pytest.approx(gaps_.std() / gaps_.mean(), rel=1e-6)
    json.dumps(res.summary())


def test_hand_checked_trace():
    ts = [0.0, 0.0, 1.0, 3.0, 3.5, 7.0]
    trace = lengths_trace(ts, [10, 20, 30, 40, 50, 60], [1, 2, 3, 4, 5, 6],
                          session_id=["a", "a", "b", None, "a", "b"],
                          type=["chat", "chat", "api", "chat", None, None])
    res = analyze_workload(trace, window_s=2.0, dispersion_windows_s=(2.0, 5.0))
    assert res.arrivals["requests"].to_list() == [3, 2, 0, 1]
    assert res.arrivals["complete"].to_list() == [True, True, True, False]
    # complete windows of 2 s: counts 3, 2, 0 -> mean 5/3, variance 14/9, IoD 14/15
    disp = {row["window_s"]: row for row in res.dispersion.iter_rows(named=True)}
    assert disp[2.0]["windows"] == 3
    assert disp[2.0]["index_of_dispersion"] == pytest.approx(14 / 15)
    assert 5.0 not in disp            # 7 s / 5 s leaves one complete window only
    # gaps 0, 1, 2, 0.5, 3.5: mean 1.4, population variance 1.54
    assert res.interarrival["mean_s"] == pytest.approx(1.4)
    assert res.interarrival["cv"] == pytest.approx(math.sqrt(1.54) / 1.4)
    assert res.interarrival["zero_gap_share"] == pytest.approx(0.2)
    s = res.summary()
    assert s["sessions"] == 2 and s["session_requests_max"] == 3
    assert s["types"] == {"chat": 3, "api": 1}
    assert res.sessions.to_dicts()[0] == {
        "session_id": "a", "requests": 3, "first_ts": 0.0, "last_ts": 3.5, "span_s": 3.5,
        "input_tokens": 80, "output_tokens": 8}
    assert s["input_len_p50"] == pytest.approx(35.0) and s["max_turn"] is None


def test_default_window_and_bad_options():
    assert default_window_s(3537.0) == 30.0
    assert default_window_s(10.0) == 1.0
    assert default_window_s(10 * 86400.0) == 10 * 86400.0 / 200
    trace = lengths_trace([0.0, 1.0], [1, 2], [1, 1])
    with pytest.raises(ConfigError):
        analyze_workload(trace, window_s=0)
    with pytest.raises(ConfigError):
        analyze_workload(trace, dispersion_windows_s=(-1.0,))


@pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets not present")
def test_golden_conversation_workload():
    s = analyze_workload(mooncake_trace(CONVERSATION)).summary()
    assert s["requests"] == 12031 and s["duration_s"] == pytest.approx(3536.999)
    assert s["input_tokens"] == 144793823 and s["output_tokens"] == 4122048
    assert s["input_len_p50"] == 6909.0 and s["input_len_max"] == 126195
    assert s["interarrival_cv"] == pytest.approx(3.03374, abs=1e-5)
    # timestamps are quantised to about 3 s: most consecutive requests tie
    assert s["interarrival_zero_gap_share"] == pytest.approx(0.90200, abs=1e-5)
    assert s["index_of_dispersion"]["60s"] == pytest.approx(2.89497, abs=1e-5)


@pytest.mark.skipif(not AZURE_CONV.exists(), reason="shared datasets not present")
def test_lengths_only_azure_trace():
    df = pl.read_csv(AZURE_CONV)
    t = df["TIMESTAMP"].str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="ns")
    ts = ((t - t[0]).dt.total_nanoseconds() / 1e9).to_numpy()
    trace = lengths_trace(ts, df["ContextTokens"].to_numpy(), df["GeneratedTokens"].to_numpy())
    s = analyze_workload(trace).summary()
    assert s["requests"] == 19366
    assert s["input_len_mean"] == pytest.approx(float(df["ContextTokens"].mean()))
    assert s["output_len_p50"] == pytest.approx(float(df["GeneratedTokens"].median()))
    assert s["interarrival_cv"] > 1        # bursty arrivals
    json.dumps(s)


@pytest.mark.parametrize("offsets,blocks", [([0], []), ([0, 0, 0], []), ([0, 1], [5])])
def test_tiny_traces_give_json_summaries_in_every_analysis(offsets, blocks):
    from kvctrace.analysis.access import analyze_access
    from kvctrace.analysis.hotness import analyze_hotness
    from kvctrace.analysis.prefix import analyze_prefix
    trace = Trace.from_arrays(np.array(offsets), np.array(blocks, np.int64))
    for analysis in (analyze_access, analyze_hotness, analyze_prefix, analyze_workload):
        summary = analysis(trace).summary()
        json.dumps(summary, allow_nan=False)
    assert analyze_workload(trace).summary()["requests"] == len(offsets) - 1


@pytest.mark.skipif(not AZURE_CONV.exists(), reason="shared datasets not present")
def test_lengths_only_azure_through_open_trace():
    from kvctrace import open_trace, store
    if not hasattr(store, "open_trace"):
        pytest.skip("kvctrace.open_trace not implemented yet")
    trace = open_trace(AZURE_CONV)
    assert not trace.has_block_ids
    s = analyze_workload(trace).summary()
    df = pl.read_csv(AZURE_CONV)
    assert s["requests"] == df.height
    assert s["input_tokens"] == int(df["ContextTokens"].sum())
    assert s["output_len_p99"] == pytest.approx(float(df["GeneratedTokens"].quantile(0.99, "linear")))
