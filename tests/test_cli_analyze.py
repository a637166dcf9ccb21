"""`kvctrace analyze`: console summary, summary.json, --json, --out, errors."""
from __future__ import annotations

import json
import pytest
from typer.testing import CliRunner

from kvctrace.cli import app

runner = CliRunner()

LINES = [
    {"timestamp": 0, "input_length": 1100, "output_length": 10, "hash_ids": [0, 1, 2]},
    {"timestamp": 1000, "input_length": 1200, "output_length": 20, "hash_ids": [0, 1, 3]},
    {"timestamp": 2500, "input_length": 600, "output_length": 5, "hash_ids": [4, 5]},
    {"timestamp": 4000, "input_length": 2000, "output_length": 7, "hash_ids": [0, 1, 3, 6]},
]


@pytest.fixture
def trace_file(tmp_path):
    path = tmp_path / "tiny_trace.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in LINES))
    return path


def invoke(*args):
    return runner.invoke(app, ["analyze"] + [str(a) for a in args])


def test_analyze_prints_summary_and_writes_json(trace_file, tmp_path):
    out = tmp_path / "out"
    res = invoke(trace_file, "--out", out)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    # 12 accesses, 7 distinct blocks: 5 hits
    assert summary["trace"]["requests"] == 4 and summary["trace"]["accesses"] == 12
    assert summary["reuse"]["ideal_hit_ratio_blocks"] == pytest.approx(5 / 12)
    # readable labels on the console (issue 9); summary.json keeps the key ideal_hit_ratio_blocks
    assert "hit ratio, unlimited cache (blocks)" in res.output and "0.4167" in res.output
    assert str(out / "summary.json") in res.output.replace("\n", "")


def test_analyze_json_stdout(trace_file, tmp_path):
    res = invoke(trace_file, "--out", tmp_path / "o", "--json")
    assert res.exit_code == 0
    start = res.stdout.index("{")
    summary = json.loads(res.stdout[start:res.stdout.rindex("}") + 1])
    assert summary["reuse"]["request_hit_rate_share_ge_0_5"] == pytest.approx(0.5)
    assert summary == json.loads((tmp_path / "o" / "summary.json").read_text())


def test_analyze_default_out_dir(trace_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke(trace_file)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "reports" / "tiny_trace" / "summary.json").is_file()


def test_analyze_missing_file_is_one_line_error(tmp_path):
    res = invoke(tmp_path / "nope.jsonl")
    assert res.exit_code == 1
    assert "error:" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "reports").exists()


def test_analyze_lengths_only_trace(tmp_path):
    path = tmp_path / "lengths.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:17:03.9799600,100,10\n2023-11-16 18:17:05.0000000,250,20\n")
    res = invoke(path, "--out", tmp_path / "o", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["reuse"]["available"] is False and "no block ids" in summary["reuse"]["reason"]
    assert summary["mrc"] is None and summary["workload"]["available"] is True
