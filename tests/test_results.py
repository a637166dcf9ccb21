"""The result protocol (summary / to_json / _repr_html_) and the one value formatter shared by
the console, the notebook renderings and the report."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from kvctrace.formatting import format_value
from kvctrace.results import Result, ResultMixin, dict_html, jsonable


@pytest.mark.parametrize("value, text", [
    (None, "n/a"), (float("nan"), "n/a"), (float("inf"), "n/a"), (np.float64("nan"), "n/a"),
    (True, "yes"), (np.bool_(False), "no"),
    (0, "0"), (12031, "12,031"), (np.int64(-40118), "-40,118"),
    (0.0, "0"), (10508.0, "10,508"), (79.0, "79"), (13619.3, "13,619"), (123456.78, "123,457"),
    (999.96, "1,000"), (354.62, "354.6"), (445.02, "445"), (26.867, "26.87"), (2.7077, "2.708"), (0.50684, "0.5068"), (0.05, "0.05"),
    (0.145, "0.145"), (0.09606, "0.0961"), (0.004413, "0.0044"), (0.000123456, "0.000123"),
    (-0.25, "-0.25"), (np.float32(0.5), "0.5"),
    ([1, 2, 3], "[3 items]"), ("lru", "lru"),
])
def test_format_value_general(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize("value, options, text", [
    (0.36642, {"digits": 4}, "0.3664"), (0.5, {"digits": 4}, "0.5000"), (2.9632, {"digits": 3}, "2.963"),
    (1234.5678, {"digits": 1}, "1,234.6"), (None, {"digits": 4}, "n/a"),
    (0.4037, {"unit": "%"}, "40.4%"), (0.002, {"unit": "%"}, "0.2%"), (0.4037, {"unit": "%", "digits": 2}, "40.37%"),
    (26.867, {"unit": "s"}, "26.9 s"), (101.0, {"unit": "s"}, "1.7 min (101 s)"),
    (1012.4, {"unit": "s"}, "16.9 min (1,012 s)"), (7200.0, {"unit": "s"}, "2.00 h (7,200 s)"),
    (float("nan"), {"unit": "s"}, "n/a"),
    (None, {"missing": ""}, ""), (float("nan"), {"missing": ""}, ""),
])
def test_format_value_options(value, options, text):
    assert format_value(value, **options) == text


def test_format_value_rejects_unknown_units():
    with pytest.raises(ValueError, match="unknown unit"):
        format_value(1.0, unit="ms")


def test_jsonable_is_strict_json():
    raw = {"a": np.int32(3), "b": np.float64(0.25), "c": float("nan"), "d": (1, np.inf), "e": np.bool_(True),
           "f": {"g": None, 7: "x"}}
    out = jsonable(raw)
    assert out == {"a": 3, "b": 0.25, "c": None, "d": [1, None], "e": True, "f": {"g": None, "7": "x"}}
    assert type(out["a"]) is int and type(out["b"]) is float and type(out["e"]) is bool
    json.dumps(out, allow_nan=False)
    with pytest.raises(TypeError, match="not JSON-able"):
        jsonable({"x": object()})


@dataclasses.dataclass(frozen=True)
class _Toy(ResultMixin):
    value: float

    def summary(self) -> dict:
        return {"ratio": np.float64(self.value), "missing": math.nan, "nested": {"name": "<b>x</b>", "n": 1200}}


def test_mixin_gives_strict_json_and_escaped_html():
    toy = _Toy(0.25)
    assert isinstance(toy, Result)
    assert json.loads(toy.to_json()) == {"ratio": 0.25, "missing": None, "nested": {"name": "<b>x</b>", "n": 1200}}
    html = toy._repr_html_()
    assert html.startswith("<style>") and "<strong>_Toy</strong>" in html
    assert "<td class='v'>0.25</td>" in html and "<td class='v'>n/a</td>" in html
    assert "<details><summary>nested</summary>" in html and "<td class='v'>1,200</td>" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x" not in html


def test_dict_html_folds_nested_sections():
    html = dict_html("T", {"top": 1, "a": {"b": {"c": 0.5}}}, open_sections=True)
    assert "<details open><summary>a</summary>" in html and "<strong>a.b</strong>" in html
    assert html.count("<style>") == 1


def test_every_result_class_follows_the_protocol():
    from kvctrace.analysis import AnalysisResult
    from kvctrace.analysis.access import AccessResult
    from kvctrace.analysis.hotness import HotnessResult
    from kvctrace.analysis.prefix import PrefixResult
    from kvctrace.analysis.reuse import ReuseResult
    from kvctrace.analysis.workload import WorkloadResult
    from kvctrace.replay import Recommendation, ReplayResult, SweepResult
    classes = [AnalysisResult, AccessResult, HotnessResult, PrefixResult, ReuseResult, WorkloadResult,
               ReplayResult, SweepResult, Recommendation]
    for cls in classes:
        assert issubclass(cls, ResultMixin), cls
        for name in ("summary", "to_json", "_repr_html_"):
            assert callable(getattr(cls, name, None)), (cls, name)
