"""`kvctrace replay` and `kvctrace recommend` through typer's runner."""
from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from kvctrace.cli import app

from .test_replay_golden import CONVERSATION

pytestmark = pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets folder absent")
runner = CliRunner()


def test_replay_json_one_tier():
    r = runner.invoke(app, ["replay", str(CONVERSATION), "--policy", "lru", "--capacity-blocks", "10000", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert round(s["prefix_hit_ratio"], 4) == 0.2112
    assert s["block_hit_ratio"] >= s["prefix_hit_ratio"]
    assert [set(t) >= {"name", "prefix_hits", "block_hits"} for t in s["tiers"]] == [True]
    for key in ("ttft_ms", "metadata_us"):
        assert set(s[key]) >= {"p50", "p90", "p99"}
    # the miss taxonomy, overall and per tier (one tier: the same), adds up to the misses
    causes = {"cold", "capacity", "prefix_broken", "admission"}
    assert set(s["misses"]) == causes and set(s["tiers"][0]["misses"]) == causes
    assert s["tiers"][0]["misses"] == s["misses"]
    assert sum(s["misses"].values()) == s["n_accesses"] - s["tiers"][0]["prefix_hits"]
    assert s["misses"]["cold"] == 182_790 and s["misses"]["admission"] == 0
    assert s["misses"]["prefix_broken"] == s["tiers"][0]["block_hits"] - s["tiers"][0]["prefix_hits"]


def test_replay_config_file_and_parquet(tmp_path):
    from kvctrace.replay import load_preset, save_config
    cfg = save_config(load_preset("h100-llama3-70b"), tmp_path / "c.toml")
    out = tmp_path / "req.parquet"
    r = runner.invoke(app, ["replay", str(CONVERSATION), "--config", str(cfg), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "pool" in r.stdout and "TTFT" in r.stdout
    assert "misses per tier" in r.stdout and "prefix broken" in r.stdout and "admission" in r.stdout
    df = pl.read_parquet(out)
    assert df.height == 12031 and "prefix_hits_nvme" in df.columns and "ttft_ms" in df.columns


def test_replay_errors_are_one_line(tmp_path):
    r = runner.invoke(app, ["replay", str(CONVERSATION), "--policy", "clock", "--capacity-blocks", "10"])
    assert r.exit_code == 1 and "valid policies" in r.stderr and "Traceback" not in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tiers]]\nname = "a"\ncapacity_blocks = 1\nspeed = 2\n')
    r = runner.invoke(app, ["replay", str(CONVERSATION), "--config", str(bad)])
    assert r.exit_code == 1 and "tiers[0].speed" in r.stderr
    r = runner.invoke(app, ["replay", str(CONVERSATION), "--preset", "nope"])
    assert r.exit_code == 1 and "h100-llama3-8b" in r.stderr


AZURE = CONVERSATION.parents[1] / "azure-llm-2023" / "AzureLLMInferenceTrace_code.csv"


@pytest.mark.skipif(not AZURE.exists(), reason="Azure trace absent")
def test_lengths_only_trace_says_no_block_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for cmd in ("replay", "recommend"):
        r = runner.invoke(app, [cmd, str(AZURE)])
        assert r.exit_code == 1 and "no block ids" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "kvctrace-recommended.toml").exists()


def test_replay_sieve_one_tier():
    import numpy as np

    from kvctrace.kernels import policies
    from kvctrace.replay.engine import run_hits

    from .test_replay_golden import load_mooncake
    assert "sieve" in runner.invoke(app, ["replay", "--help"]).stdout
    r = runner.invoke(app, ["replay", str(CONVERSATION), "--policy", "sieve", "--capacity-blocks", "10000", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert [t["policy"] for t in s["tiers"]] == ["sieve"]
    tr = load_mooncake()
    blocks = np.asarray(tr.blocks, np.int64)
    h = run_hits(np.asarray(tr.offsets, np.int64), blocks, int(tr.n_unique_blocks), [10000],
                 [policies.code("sieve")], [1])
    assert s["block_hit_ratio"] == int(h.block_hits.sum()) / blocks.shape[0]
    assert s["prefix_hit_ratio"] == int(h.prefix_hits.sum()) / blocks.shape[0]


def test_replay_marginal_value_per_tier():
    r = runner.invoke(app, ["replay", str(CONVERSATION), "--preset", "h100-llama3-8b", "--marginal", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert [m["tier"] for m in s["marginal"]] == ["hbm", "dram", "nvme"]
    assert [m["step_bytes"] for m in s["marginal"]] == [8 * 10**9, 64 * 10**9, 512 * 10**9]
    dram = s["marginal"][1]
    assert dram["sentence"].startswith("The next 64 GB of dram (256 GB → 320 GB, +953 blocks) adds +")
    assert dram["usd_per_hour"] == pytest.approx(953 * dram["block_bytes"] / 1e9 * 0.00367)
    assert dram["mean_ttft_ms_change"] < 0 <= dram["prefix_hits_added"]
    r = runner.invoke(app, ["replay", str(CONVERSATION), "--preset", "h100-llama3-8b", "--marginal"])
    assert r.exit_code == 0 and "marginal value per tier" in r.stdout and "The next 512 GB of nvme" in r.stdout
