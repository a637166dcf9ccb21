"""The command line as a new user meets it (issue 9, "Command line and output"): --version and
-h, help that shows flags as flags and TRACE in the usage, strict JSON everywhere, one rule for
output folders, tables that fit 80 columns, readable summaries, clear replay-config errors."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kvctrace._version import __version__
from kvctrace.cli import app

runner = CliRunner()
NARROW = {"COLUMNS": "80"}
LINES = [
    {"timestamp": 0, "input_length": 1100, "output_length": 10, "hash_ids": [0, 1, 2]},
    {"timestamp": 1000, "input_length": 1200, "output_length": 20, "hash_ids": [0, 1, 3]},
    {"timestamp": 2500, "input_length": 600, "output_length": 5, "hash_ids": [4, 5]},
    {"timestamp": 4000, "input_length": 2000, "output_length": 7, "hash_ids": [0, 1, 3, 6]},
    {"timestamp": 3536999, "input_length": 1800, "output_length": 9, "hash_ids": [0, 1, 2, 7]},
]


def write_trace(path: Path, lines=LINES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


@pytest.fixture
def trace_file(tmp_path):
    return write_trace(tmp_path / "tiny_trace.jsonl")


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env or NARROW, prog_name="kvctrace")


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (which Python's json accepts by default)."""
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def command_names() -> list[str]:
    return sorted(typer.main.get_command(app).commands)


# ---- help and version --------------------------------------------------------------------------

def test_version_flag():
    res = invoke("--version")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == f"kvctrace {__version__}"


@pytest.mark.parametrize("args", [[], *[[name] for name in
                                        ("ingest", "info", "analyze", "report", "replay", "recommend",
                                         "bench-index", "export", "rejects", "synth")]])
def test_h_is_an_alias_of_help_on_every_command(args):
    short, long = invoke(*args, "-h"), invoke(*args, "--help")
    assert short.exit_code == 0, short.output
    assert short.stdout == long.stdout and "Usage:" in short.stdout


def test_every_command_is_covered_by_the_help_tests():
    assert command_names() == sorted(["ingest", "info", "analyze", "report", "replay", "recommend",
                                      "bench-index", "export", "rejects", "synth"])


@pytest.mark.parametrize("name", ["info", "analyze", "report", "replay", "recommend", "export"])
def test_flags_are_shown_as_flags_and_usage_names_trace(name):
    text = invoke(name, "--help", env={"COLUMNS": "120"}).stdout
    assert "<bool>" not in text
    assert f"Usage: kvctrace {name} [OPTIONS] TRACE" in text
    assert "{trace}" not in text


def test_top_level_help_has_no_bool_and_one_sentence_per_command():
    text = invoke("--help", env={"COLUMNS": "400"}).stdout
    assert "<bool>" not in text and "--version" in text
    rows = [line.strip("│ ").rstrip() for line in text.splitlines() if line.startswith("│ ")]
    commands = [row for row in rows if row.split(" ", 1)[0] in command_names()]
    assert len(commands) == len(command_names())
    for row in commands:   # wide terminal: each command's line is whole and ends a sentence
        assert row.endswith("."), row
    continuation = [row for row in rows if row and row.split(" ", 1)[0] not in command_names()
                    and not row.startswith("-")]
    assert continuation == []


# ---- strict JSON -------------------------------------------------------------------------------

def test_info_json_duration_has_no_float_noise(trace_file):
    res = invoke("info", trace_file, "--json")
    assert res.exit_code == 0, res.output
    assert '"duration_s": 3536.999,' in res.stdout
    assert strict_json(res.stdout)["duration_s"] == 3536.999


def test_analyze_json_duration_has_no_float_noise(trace_file, tmp_path):
    res = invoke("analyze", trace_file, "--out", tmp_path / "o", "--json")
    assert res.exit_code == 0, res.output
    assert strict_json(res.stdout)["trace"]["duration_s"] == 3536.999
    assert "3536.9990000000003" not in (tmp_path / "o" / "summary.json").read_text()


@pytest.mark.parametrize("command", ["info", "ingest"])
def test_info_and_ingest_json_are_strict_on_non_finite_values(command, trace_file, tmp_path, monkeypatch):
    import kvctrace.commands as commands

    def facts(trace, options=None, progress=None):
        return {"path": str(trace), "duration_s": math.inf, "mean": math.nan, "db": None}
    monkeypatch.setattr(commands, command, facts)
    res = invoke(command, trace_file, "--json", "--db", tmp_path / "x.duckdb")
    assert res.exit_code == 0, res.output
    data = strict_json(res.stdout)
    assert data["duration_s"] is None and data["mean"] is None


def test_replay_recommend_export_json_are_strict(trace_file, tmp_path, monkeypatch):
    """Whatever a result holds, the printed JSON is strict: NaN and inf become null."""
    import kvctrace.commands as commands

    class FakeReplay:
        def summary(self):
            return {"config": "x", "prefix_hit_ratio": math.nan, "ttft_ms": {"p50": math.inf}}

    monkeypatch.setattr(commands, "replay", lambda *a, **k: FakeReplay())
    res = invoke("replay", trace_file, "--json")
    assert res.exit_code == 0, res.output
    assert strict_json(res.stdout)["ttft_ms"]["p50"] is None
    monkeypatch.setattr(commands, "export", lambda *a, **k: {"path": "p", "accesses": math.nan})
    res = invoke("export", trace_file, "--parquet", tmp_path / "parts", "--partitions", "2", "--json")
    assert res.exit_code == 0, res.output
    assert strict_json(res.stdout)["accesses"] is None


def test_info_on_a_database_names_the_database(trace_file, tmp_path):
    db = tmp_path / "named.duckdb"
    assert invoke("ingest", trace_file, "--db", db).exit_code == 0
    res = invoke("info", db, "--json")
    assert res.exit_code == 0, res.output
    assert strict_json(res.stdout)["db"] == str(db)
    assert str(db) in invoke("info", db, env={"COLUMNS": "250"}).stdout


# ---- output folders ----------------------------------------------------------------------------

def test_analyze_and_report_of_a_database_write_the_same_folder(trace_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "conv.duckdb"
    assert invoke("ingest", trace_file, "--db", db).exit_code == 0
    res = invoke("analyze", db)
    assert res.exit_code == 0, res.output
    res = invoke("report", db)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["tiny_trace"]
    assert {"summary.json", "report.html"} <= {p.name for p in (tmp_path / "reports" / "tiny_trace").iterdir()}


def test_another_traces_report_is_not_overwritten_silently(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = write_trace(tmp_path / "a" / "chat.jsonl")
    second = write_trace(tmp_path / "b" / "chat.jsonl", LINES[:3])   # same name, other trace
    assert invoke("analyze", first).exit_code == 0
    report = tmp_path / "reports" / "chat" / "report.html"
    before = report.read_text()
    for command in ("analyze", "report"):
        res = invoke(command, second)
        assert res.exit_code == 1, res.output
        message = res.stderr.strip()
        assert "\n" not in message and "--force" in message and str(first) in message
        assert report.read_text() == before
    res = invoke("report", second, "--force")
    assert res.exit_code == 0, res.output
    assert report.read_text() != before
    assert invoke("analyze", second).exit_code == 0     # now the folder is the second trace's


def test_same_trace_again_overwrites_without_asking(trace_file, tmp_path):
    out = tmp_path / "o"
    assert invoke("analyze", trace_file, "--out", out).exit_code == 0
    res = invoke("analyze", trace_file, "--out", out)
    assert res.exit_code == 0 and res.stderr == ""


# ---- tables in 80 columns ----------------------------------------------------------------------

def assert_fits(text: str, width: int = 80):
    for line in text.splitlines():
        assert len(line) <= width, line
    assert "…" not in text


def test_replay_tables_fit_80_columns(trace_file):
    for args in (["--policy", "lru", "--capacity-blocks", "100"], ["--preset", "h100-llama3-70b"]):
        res = invoke("replay", trace_file, *args)
        assert res.exit_code == 0, res.output
        assert_fits(res.stdout)
        assert "evictions" in res.stdout


def test_recommend_table_fits_80_columns(trace_file, tmp_path):
    res = invoke("recommend", trace_file, "--out", tmp_path / "r.toml", "--top", "5")
    assert res.exit_code == 0, res.output
    assert_fits(res.stdout.replace(str(tmp_path), "TMP"))


def test_info_and_analyze_fit_80_columns(trace_file, tmp_path):
    for args in (["info", trace_file], ["analyze", trace_file, "--out", tmp_path / "o"]):
        res = invoke(*args)
        assert res.exit_code == 0, res.output
        assert_fits(res.stdout.replace(str(tmp_path), "TMP"))


def test_sizes_roll_over_to_the_next_unit():
    from kvctrace.formatting import format_bytes
    assert format_bytes(999.9e9) == "1 TB"
    assert format_bytes(999_999) == "1 MB"
    assert format_bytes(48e9) == "48 GB" and format_bytes(3.84e12) == "3.84 TB"
    assert format_bytes(0) == "0 B" and format_bytes(512) == "512 B" and format_bytes(1536) == "1.54 kB"
    assert format_bytes(2.5e15) == "2.5 PB"


# ---- analyze summary ---------------------------------------------------------------------------

def test_analyze_summary_uses_readable_labels_and_explains_ge_and_gt(trace_file, tmp_path):
    res = invoke("analyze", trace_file, "--out", tmp_path / "o", env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert "request_hit_rate_share_ge_0_8" not in text and "ideal_hit_ratio_blocks" not in text
    assert "hit rate ≥ 0.8" in text and "hit rate > 0.8" in text
    assert re.search(r"≥ .*includes.*exactly", text), text
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert "request_hit_rate_share_ge_0_8" in summary["reuse"]      # the JSON keeps its keys


def test_every_headline_key_has_a_label():
    from kvctrace.analysis.registry import ANALYSES
    for analysis in ANALYSES:
        assert set(analysis.headline) <= set(analysis.labels), analysis.name


# ---- replay config names and capacities --------------------------------------------------------

def test_one_tier_config_names_read_as_sizes(trace_file):
    res = invoke("replay", trace_file, "--policy", "lru", "--json")
    assert res.exit_code == 0, res.output
    assert strict_json(res.stdout)["config"] == "lru-48GB"
    res = invoke("replay", trace_file, "--policy", "fifo", "--capacity-blocks", "100", "--json")
    assert strict_json(res.stdout)["config"] == "fifo-100-blocks"


@pytest.mark.parametrize("capacity", ["0", "-5"])
def test_zero_or_negative_capacity_is_a_clear_error(trace_file, capacity):
    res = invoke("replay", trace_file, "--policy", "lru", "--capacity-blocks", capacity)
    assert res.exit_code == 1
    message = res.stderr.strip()
    assert "\n" not in message and "--capacity-blocks" in message and "at least 1" in message
    assert "None" not in res.output and "Traceback" not in res.output


def test_a_tier_larger_than_gpu_memory_is_warned_about(trace_file):
    res = invoke("replay", trace_file, "--policy", "lru", "--capacity-blocks", "30000")
    assert res.exit_code == 0, res.output
    warning = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "hbm" in warning[0] and "2.01 TB" in warning[0] and "80 GB" in warning[0]
    res = invoke("replay", trace_file, "--policy", "lru", "--capacity-blocks", "1000")
    assert res.exit_code == 0 and "warning" not in res.stderr


# ---- README tour -------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tour_has_no_placeholder_and_fits_the_gpu():
    from kvctrace.replay.config import load_preset
    text = README.read_text(encoding="utf-8")
    tour = text[text.index("## A tour of the command line"):text.index("## Python and Jupyter")]
    assert re.findall(r"(?<![\w/.-])trace\.jsonl", tour) == []      # the bare placeholder
    base = load_preset("h100-llama3-8b")
    for blocks in re.findall(r"--capacity-blocks (\d+)", tour):
        assert int(blocks) * base.block_bytes(512) <= base.gpu.memory_gb * 1e9, blocks


def test_partitioned_and_bench_index_tables_fit_80_columns(trace_file, tmp_path, capsys, monkeypatch):
    res = invoke("analyze", trace_file, "--partitions", "2", "--out", tmp_path / "p")
    assert res.exit_code == 0, res.output
    assert_fits(res.stdout.replace(str(tmp_path), "TMP"))
    assert "ideal_hit_ratio_blocks" not in res.stdout and "hit ratio, unlimited cache (blocks)" in res.stdout

    from types import SimpleNamespace

    from kvctrace.console import print_bench_index
    latency = {"p50": 101.25, "p90": 180.5, "p99": 1234.75}
    summary = {"server": {"version": "7.2.4"}, "keys_written": 123456, "keys_left": 0,
               "designs": [{"design": d, "throughput_ops_s": 9876.5, "ops": {"lookup": 120000, "insert": 45000},
                            "latency_us": {"lookup": latency, "insert": latency}} for d in ("get", "mget", "zset")]}
    result = SimpleNamespace(summary=lambda: summary, url="redis://127.0.0.1:6379/0", n_requests=5000,
                             trace="conversation_trace.jsonl", clients=4, key_prefix="kvctrace:0123abcd:")
    comparison = [{"design": "mget", "op": "lookup", "model": "redis-mget", "measured_p50_us": 101.2,
                   "modelled_p50_us": 99.8, "measured_p99_us": 1234.5, "modelled_p99_us": 1100.25}]
    monkeypatch.setenv("COLUMNS", "80")
    print_bench_index(result, comparison)
    assert_fits(capsys.readouterr().out)


def test_piped_output_without_columns_is_80_wide(trace_file, tmp_path):
    """A pipe has no terminal width: the tables are laid out for 80 columns."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    res = subprocess.run([sys.executable, "-m", "kvctrace", "replay", str(trace_file), "--preset", "h100-llama3-70b"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr
    assert_fits(res.stdout)


def test_a_folder_of_reports_without_a_record_is_replaced_with_a_warning(trace_file, tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "summary.json").write_text("{}")          # written by an older kvctrace, or by hand
    res = invoke("analyze", trace_file, "--out", out)
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no record" in warnings[0]
    assert json.loads((out / "kvctrace-source.json").read_text())["path"] == str(trace_file)


@pytest.mark.parametrize("args", [["info", "{trace}"], ["info", "{trace}", "--json"],
                                  ["replay", "{trace}", "--preset", "h100-llama3-8b"]])
def test_a_reader_that_leaves_early_stops_the_command_quietly(trace_file, tmp_path, args):
    """`kvctrace ... | head`: the pipe's reader is gone before kvctrace writes; no 'Broken pipe'
    error and no traceback, exit 141 (128 + SIGPIPE) as `cat` would."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "kvctrace", *[a.format(trace=trace_file) for a in args]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    proc.stdout.close()  # the reader leaves before the first byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 141, err
    assert err == "", err
