"""Bad options and unwritable outputs give one line on stderr and exit code 1, never a traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

LINES = [
    {"timestamp": 0, "input_length": 1100, "output_length": 10, "hash_ids": [0, 1, 2]},
    {"timestamp": 1000, "input_length": 1200, "output_length": 20, "hash_ids": [0, 1, 3]},
]


@pytest.fixture
def trace_file(tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in LINES))
    return path


def run_cli(*args):
    # A real process: what a user sees, including anything printed on the way out.
    return subprocess.run([sys.executable, "-m", "kvctrace", *map(str, args)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("args, expected", [
    (["recommend", "{trace}", "--fractions", "a"], "field 'fractions'"),
    (["recommend", "{trace}", "--admission", "x"], "field 'admission'"),
    (["recommend", "{trace}", "--objective", "speed"], "valid objectives: cost, mean-ttft"),
    (["recommend", "{trace}", "--tie-tolerance", "-0.1"], "field 'tie_tolerance'"),
    (["replay", "{trace}", "--policy", "nosuch", "--capacity-blocks", "10"], "valid policies: lru"),
    (["replay", "{trace}", "--preset", "nosuch"], "nosuch"),
    (["analyze", "{trace}", "--format", "nosuch"], "nosuch"),
    (["analyze", "{trace}", "--out", "{unwritable}"], "{unwritable}"),
    (["synth", "{unwritable}/x.jsonl"], "{unwritable}"),
])
def test_one_line_error_and_exit_1(trace_file, tmp_path, args, expected):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    unwritable = blocker / "sub"  # a folder cannot be made inside a file
    fill = dict(trace=trace_file, unwritable=unwritable)
    res = run_cli(*[a.format(**fill) for a in args])
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert expected.format(**fill) in lines[0]
