"""`kvctrace ingest` and `kvctrace info` as a user runs them (subprocesses, cwd outside the
repo): JSON facts, the readable table, db files, and one-line errors with exit code 1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
CONVERSATION = DATASETS / "mooncake" / "conversation_trace.jsonl"
AZURE_CODE = DATASETS / "azure-llm-2023" / "AzureLLMInferenceTrace_code.csv"
GOOD = '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}'
INFO_KEYS = {"format", "block_size", "requests", "accesses", "unique_blocks", "duration_s", "rejected_lines",
             "sorted_input"}


def kvctrace(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", "from kvctrace.cli import app; app()", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets not available")
def test_info_json_on_the_conversation_trace(tmp_path):
    res = kvctrace("info", CONVERSATION, "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # no progress display when stderr is not a terminal
    facts = json.loads(res.stdout)
    assert INFO_KEYS <= facts.keys()
    assert (facts["format"], facts["block_size"], facts["requests"], facts["accesses"], facts["unique_blocks"]) == \
        ("mooncake", 512, 12_031, 288_500, 182_790)
    assert facts["rejected_lines"] == 0 and facts["sorted_input"] is True
    assert facts["duration_s"] == pytest.approx(3536.999)


@pytest.mark.skipif(not AZURE_CODE.exists(), reason="shared datasets not available")
def test_ingest_db_then_info_on_the_db(tmp_path):
    res = kvctrace("ingest", AZURE_CODE, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    db = tmp_path / "AzureLLMInferenceTrace_code.duckdb"
    assert db.exists() and "8,819 requests" in res.stdout and "no block ids" in res.stdout
    res = kvctrace("info", db, "--json", cwd=tmp_path)
    facts = json.loads(res.stdout)
    assert facts["format"] == "lengths" and facts["requests"] == 8_819 and facts["has_block_ids"] is False
    res = kvctrace("info", db, cwd=tmp_path)  # readable table
    assert res.returncode == 0 and "requests" in res.stdout and "8,819" in res.stdout
    assert "n/a (no block ids)" in res.stdout


def test_ingest_with_explicit_db_and_options(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(GOOD.replace('"timestamp": 0', f'"timestamp": {i}') + "\n" for i in range(5)))
    res = kvctrace("ingest", trace, "--db", tmp_path / "out.duckdb", "--coarsen", "2", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    facts = json.loads(res.stdout)
    assert facts["block_size"] == 1024 and facts["coarsen"] == 2 and facts["accesses"] == 5
    assert facts["db"].endswith("out.duckdb") and (tmp_path / "out.duckdb").exists()


@pytest.mark.parametrize("content, words", [
    (f"{GOOD}\n{{\"timestamp\": 1,\n", "line 2: malformed JSON"),
    (f"{GOOD}\n" + GOOD.replace("600", '"600"') + "\n", "line 2, field 'input_length'"),
    (f"{GOOD}\n" + GOOD.replace("600", "1100") + "\n", "line 2, field 'hash_ids'"),
    ("", "empty file"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path, content, words):
    trace = tmp_path / "bad.jsonl"
    trace.write_text(content)
    for command in ("info", "ingest"):
        res = kvctrace(command, trace, cwd=tmp_path)
        assert res.returncode == 1
        assert res.stdout == ""
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], res.stderr
        assert "Traceback" not in res.stderr and "hint:" in lines[0]
        assert str(trace) in lines[0]


def test_skip_bad_lines_reports_the_count(tmp_path):
    trace = tmp_path / "bad.jsonl"
    trace.write_text(f"{GOOD}\nnot json\n{GOOD}\n")
    res = kvctrace("info", trace, "--skip-bad-lines", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["rejected_lines"] == 1
    res = kvctrace("info", trace, "--skip-bad-lines", cwd=tmp_path)
    assert "rejected lines" in res.stdout and "1 lines were rejected" in res.stderr


def test_unsorted_input_is_reported(tmp_path):
    trace = tmp_path / "u.jsonl"
    trace.write_text(GOOD.replace('"timestamp": 0', '"timestamp": 9') + "\n" + GOOD + "\n")
    facts = json.loads(kvctrace("info", trace, "--json", cwd=tmp_path).stdout)
    assert facts["sorted_input"] is False and facts["requests"] == 2
    res = kvctrace("info", trace, cwd=tmp_path)
    assert "requests were sorted" in res.stdout


def test_missing_file_and_not_a_kvctrace_db(tmp_path):
    res = kvctrace("info", tmp_path / "nope.jsonl", cwd=tmp_path)
    assert res.returncode == 1 and "no such file" in res.stderr and "Traceback" not in res.stderr
    import duckdb
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute("CREATE TABLE t(a INT)")
    con.close()
    res = kvctrace("info", tmp_path / "x.duckdb", cwd=tmp_path)
    assert res.returncode == 1 and "not a kvctrace database" in res.stderr
