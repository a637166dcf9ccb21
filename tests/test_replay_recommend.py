"""Sweep and recommendation: grid size, ranking, consistency with a plain replay of the
recommended config, threads vs processes, and the CLI round trip (TOML -> replay --config)."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from kvctrace import Trace
from kvctrace.cli import app
from kvctrace.errors import ConfigError, UnknownNameError
from kvctrace.replay import load_preset, replay
from kvctrace.replay.sweep import Grid, recommend, sweep

from .test_replay_golden import CONVERSATION


@pytest.fixture(scope="module")
def small_trace():
    """Chained-prefix requests: a few shared system prompts, then per-request suffixes."""
    rng = np.random.default_rng(5)
    reqs, next_id = [], 1000
    prompts = [list(range(p * 20, p * 20 + rng.integers(2, 8))) for p in range(6)]
    for _ in range(400):
        head = prompts[rng.integers(0, 6)]
        tail = list(range(next_id, next_id + rng.integers(1, 10)))
        next_id += len(tail)
        reqs.append(head + tail)
    offsets = np.concatenate(([0], np.cumsum([len(r) for r in reqs])))
    return Trace.from_arrays(offsets, np.concatenate(reqs), block_size=512,
                             input_len=np.array([len(r) * 512 - 100 for r in reqs]))


def _base():
    from dataclasses import replace
    base = load_preset("h100-llama3-70b")
    tiers = tuple(replace(t, capacity_blocks=c, capacity_bytes=None) for t, c in zip(base.tiers, (20, 40, 80, 200)))
    return replace(base, tiers=tiers)


GRID = Grid(policies=("lru", "s3fifo", "prefix-lru"), admission=(1, 2), fractions=(0.5, 1.0))


def test_grid_size_and_ranking(small_trace):
    sw = sweep(small_trace, _base(), grid=GRID)
    n_replays = 3 * 2 * 2 ** 4
    assert sw.table.height == n_replays * 5 and sw.table["replay"].n_unique() == n_replays
    assert sw.table["ttft_p99_ms"].to_list() == sorted(sw.table["ttft_p99_ms"].to_list())
    assert sw.table["rank"].to_list() == list(range(1, sw.table.height + 1))
    by_hit = sweep(small_trace, _base(), grid=GRID, objective="hit-ratio").table["prefix_hit_ratio"].to_list()
    assert by_hit == sorted(by_hit, reverse=True)
    assert sw.bound["policy"] == "belady" and 0 <= sw.bound["prefix_hit_ratio"] <= 1


def test_recommended_config_replays_to_its_row(small_trace):
    rec = recommend(small_trace, _base(), grid=GRID, tolerance=0.05)
    res = replay(small_trace, rec.config)
    s = res.summary()
    assert res.prefix_hit_ratio == pytest.approx(rec.row["prefix_hit_ratio"], abs=1e-12)
    assert s["ttft_ms"]["p99"] == pytest.approx(rec.row["ttft_p99_ms"], rel=1e-9)
    assert s["metadata_us"]["p99"] == pytest.approx(rec.row["metadata_p99_us"], rel=1e-9)
    best = rec.sweep.table.row(0, named=True)["ttft_p99_ms"]
    assert rec.row["ttft_p99_ms"] <= best * 1.05
    ok = rec.sweep.table.filter(pl.col("ttft_p99_ms") <= best * 1.05)
    assert rec.row["memory_bytes"] == ok["memory_bytes"].min()
    assert any("index" in r for r in rec.reasons) and any("Belady" in r for r in rec.reasons)


def test_threads_and_processes_agree(small_trace):
    g = Grid(policies=("lru", "lfu"), admission=(1,), fractions=(0.5, 1.0), indexes=("sherman",))
    a = sweep(small_trace, _base(), grid=g, workers="threads").table
    b = sweep(small_trace, _base(), grid=g, workers="processes").table
    assert a.equals(b)


def test_budgets_and_errors(small_trace):
    base = _base()
    bb = base.block_bytes(512)
    sw = sweep(small_trace, base, budgets={"hbm": 10 * bb}, grid=Grid(policies=("lru",), admission=(1,),
                                                                        fractions=(1.0,), indexes=("chime",)))
    assert sw.table["cap_hbm"].to_list() == [10] and sw.table["cap_nvme"].to_list() == [200]
    with pytest.raises(ConfigError) as e:
        sweep(small_trace, base, budgets={"l3": 1})
    assert "hbm" in str(e.value)
    with pytest.raises(UnknownNameError):
        sweep(small_trace, base, objective="p42")
    with pytest.raises(UnknownNameError):
        sweep(small_trace, base, grid=Grid(policies=("clock",)))
    with pytest.raises(ConfigError):
        sweep(small_trace, base, grid=Grid(fractions=(0.0,)))


@pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets folder absent")
def test_cli_recommend_writes_config_that_replay_accepts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["recommend", str(CONVERSATION), "--policies", "lru,s3fifo", "--fractions", "1",
                            "--admission", "1,2", "--budget", "hbm=24GB", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    path = tmp_path / "kvctrace-recommended.toml"
    assert s["config_path"] == "kvctrace-recommended.toml" and path.exists()
    assert s["n_configs"] == 2 * 2 * 5
    r2 = runner.invoke(app, ["replay", str(CONVERSATION), "--config", str(path), "--json"])
    assert r2.exit_code == 0, r2.output
    s2 = json.loads(r2.stdout)
    assert s2["prefix_hit_ratio"] == pytest.approx(s["recommended"]["prefix_hit_ratio"], abs=1e-12)
    assert s2["ttft_ms"]["p99"] == pytest.approx(s["recommended"]["ttft_p99_ms"], rel=1e-9)
    r3 = runner.invoke(app, ["recommend", str(CONVERSATION), "--budget", "hbm48GB"])
    assert r3.exit_code == 1 and "TIER=SIZE" in r3.stderr


def test_chunked_sweep_gives_the_same_table(small_trace, monkeypatch):
    import importlib
    sweep_mod = importlib.import_module("kvctrace.replay.sweep")  # the module, not the re-exported function
    g = Grid(policies=("lru", "fifo", "s3fifo"), admission=(1, 2), fractions=(1.0,), indexes=("redis-get", "chime"))
    whole = sweep(small_trace, _base(), grid=g).table
    monkeypatch.setattr(sweep_mod, "CHUNK_BYTES", 1)  # one chunk per core
    assert sweep(small_trace, _base(), grid=g).table.equals(whole)


def test_index_overrides_apply_to_the_base_kind_only(small_trace):
    from dataclasses import replace as dc_replace

    from kvctrace.replay.config import IndexConfig
    base = dc_replace(_base(), index=IndexConfig(kind="redis-get", rtt_us=30.0))
    g = Grid(policies=("lru",), admission=(1,), fractions=(1.0,), indexes=("redis-get", "sherman"))
    sw = sweep(small_trace, base, grid=g)
    for row in sw.table.iter_rows(named=True):
        cfg = sw.config_of(row)
        assert cfg.index.rtt_us == (30.0 if row["index"] == "redis-get" else None)
        s = replay(small_trace, cfg).summary()
        assert s["metadata_us"]["p99"] == pytest.approx(row["metadata_p99_us"], rel=1e-9)


def test_total_memory_budget(small_trace):
    base = _base()
    bb = base.block_bytes(512)
    g = Grid(policies=("lru",), admission=(1,), fractions=(0.5, 1.0), indexes=("chime",))
    limit = 200 * bb  # full budget is 340 blocks
    rec = recommend(small_trace, base, grid=g, max_memory_bytes=limit, tolerance=0.0)
    assert rec.sweep.table["memory_bytes"].max() <= limit and rec.row["memory_bytes"] <= limit
    assert rec.sweep.table["rank"].to_list() == list(range(1, rec.sweep.table.height + 1))
    with pytest.raises(ConfigError) as e:
        recommend(small_trace, base, grid=g, max_memory_bytes=10 * bb)
    assert e.value.field == "max_memory"


def test_default_grid_sweeps_every_online_policy(small_trace):
    from kvctrace.kernels import policies
    assert Grid().policies == tuple(policies.online_names()) and "sieve" in Grid().policies
    g = Grid(admission=(1,), fractions=(1.0,), indexes=("chime",))
    sw = sweep(small_trace, _base(), grid=g)
    assert sorted(sw.table["policy"].to_list()) == sorted(policies.online_names())
    row = sw.table.filter(pl.col("policy") == "sieve").row(0, named=True)
    assert replay(small_trace, sw.config_of(row)).prefix_hit_ratio == pytest.approx(row["prefix_hit_ratio"], abs=1e-12)
