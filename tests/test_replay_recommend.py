"""Sweep and recommendation: grid and guided searches, exactness of every row against a plain
replay of its config (stack-distance rows and engine rows alike), ties and ranking, the cost
frontier, candidates from the analyses, threads vs processes, and the CLI round trip."""
from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from kvctrace import Trace
from kvctrace.cli import app
from kvctrace.errors import ConfigError, UnknownNameError
from kvctrace.replay import load_preset, replay
from kvctrace.replay.cost import prefill_us
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
    return Trace.from_arrays(offsets, np.concatenate(reqs), block_size=512, ts=np.arange(400) * 9.0,
                             input_len=np.array([len(r) * 512 - 100 for r in reqs]))


def _base():
    from dataclasses import replace
    base = load_preset("h100-llama3-70b")
    tiers = tuple(replace(t, capacity_blocks=c, capacity_bytes=None) for t, c in zip(base.tiers, (20, 40, 80, 200)))
    return replace(base, tiers=tiers)


GRID = Grid(policies=("lru", "s3fifo", "prefix-lru"), admission=(1, 2), fractions=(0.5, 1.0))


def _replays_to_its_row(trace, sw, row):
    s = replay(trace, sw.config_of(row)).summary()
    assert s["prefix_hit_ratio"] == pytest.approx(row["prefix_hit_ratio"], abs=1e-12)
    for q in ("p50", "p99", "mean"):
        assert s["ttft_ms"][q] == pytest.approx(row[f"ttft_{q}_ms"], rel=1e-9)
    assert s["metadata_us"]["p99"] == pytest.approx(row["metadata_p99_us"], rel=1e-9)


def test_grid_size_and_ranking(small_trace):
    sw = sweep(small_trace, _base(), grid=GRID, objective="p99-ttft")
    n_replays = 3 * 2 * 2 ** 4
    assert sw.table.height == n_replays * 5 and sw.table["replay"].n_unique() == n_replays
    assert sw.search == "grid" and sw.replays["stack"] == 2 ** 4 and sw.replays["kernel"] == n_replays - 2 ** 4
    assert sw.table["rank"].to_list() == list(range(1, sw.table.height + 1))
    groups = sw.table["tie_group"].to_list()
    assert groups == sorted(groups) and groups[0] == 1
    leaders = sw.table.group_by("tie_group", maintain_order=True).agg(pl.col("ttft_p99_ms").min())
    assert leaders["ttft_p99_ms"].to_list() == sorted(leaders["ttft_p99_ms"].to_list())
    by_hit = sweep(small_trace, _base(), grid=GRID, objective="hit-ratio", tie_tolerance=0.0).table
    assert by_hit["prefix_hit_ratio"].to_list() == sorted(by_hit["prefix_hit_ratio"].to_list(), reverse=True)
    assert sw.bound["policy"] == "belady" and 0 <= sw.bound["prefix_hit_ratio"] <= 1


def test_every_row_replays_to_itself(small_trace):
    """Stack-distance rows (lru, admission 1) and engine rows give what a plain replay gives."""
    sw = sweep(small_trace, _base(), grid=GRID, objective="mean-ttft")
    rows = sw.table.unique(["policy", "admission"], keep="first", maintain_order=True)
    assert rows.height == 6
    for row in rows.iter_rows(named=True):
        _replays_to_its_row(small_trace, sw, row)


def test_recommended_config_replays_to_its_row(small_trace):
    rec = recommend(small_trace, _base(), grid=GRID, objective="p99-ttft", tie_tolerance=0.05)
    _replays_to_its_row(small_trace, rec.sweep, rec.row)
    t = rec.sweep.table
    best = t["ttft_p99_ms"].min()
    assert rec.row["ttft_p99_ms"] <= best * 1.05
    ok = t.filter(pl.col("tie_group") == 1)
    assert ok["ttft_p99_ms"].max() <= best * 1.05 and rec.row["memory_usd_per_hour"] == ok["memory_usd_per_hour"].min()
    assert any("index" in r for r in rec.reasons) and any("Belady" in r for r in rec.reasons)
    assert any(r.startswith("tie:") and "broken by memory cost" in r for r in rec.reasons)


def test_reasons_never_compare_equal_numbers(small_trace):
    for objective in ("cost", "p99-ttft", "mean-ttft", "prefill-saved"):
        rec = recommend(small_trace, _base(), grid=GRID, objective=objective)
        for reason in rec.reasons:
            for a, b in re.findall(r"([-$\d,.]+\s?(?:ms|µs|GPU-s/h|/h)?) vs ([-$\d,.]+\s?(?:ms|µs|GPU-s/h|/h)?)", reason):
                assert a.strip() != b.strip(), reason


def test_guided_search_takes_capacities_from_the_analyses(small_trace):
    base = _base()
    rec = recommend(small_trace, base, grid=Grid(policies=("lru", "fifo", "sieve")))
    sw = rec.sweep
    assert sw.search == "guided" and sw.facts is not None and sw.vectors
    sizes = {s.source: s.blocks for s in sw.facts.sizes()}
    budgets = list(sw.budget_blocks)
    for v in sw.vectors:   # every tier full, empty, or cut at a candidate size
        cum = np.cumsum(v.caps)
        for k, (cap, src) in enumerate(zip(v.caps, v.sources)):
            assert (src == "full budget" and cap == budgets[k]) or (src.startswith("not needed") and cap == 0) \
                or sizes[src] == cum[k], (v, sizes)
    assert set(sw.table["policy"]) == {"lru", "fifo", "sieve"}
    row = rec.row
    _replays_to_its_row(small_trace, sw, row)
    # the recommended capacities cite the analysis figure they come from
    src = sw.sources_of(row)
    cited = [s for s in src if s in sizes]
    for s in cited:
        assert any(f"{sizes[s]:,} blocks" in r for r in rec.reasons)
    assert rec.summary()["analysis"]["hot_sets"]


def test_admission_swept_only_when_one_hit_share_is_high(small_trace, monkeypatch):
    import kvctrace.replay.sweep as sweep_mod
    sw = sweep(small_trace, _base(), grid=Grid(policies=("lru",), indexes=("chime",)))
    assert sw.one_hit_fraction >= 0.5      # the suffixes are used once
    assert set(sw.table["admission"]) == {1, 2}
    monkeypatch.setattr(sweep_mod, "ONE_HIT_SWEEP_SHARE", 1.01)
    rec = recommend(small_trace, _base(), grid=Grid(policies=("lru",), indexes=("chime",)))
    assert set(rec.sweep.table["admission"]) == {1}
    assert not any("admission" in r for r in rec.reasons) or any("worth trying" in r for r in rec.reasons)


def test_cost_objective_knee_is_rank_one_and_on_the_frontier(small_trace):
    rec = recommend(small_trace, _base(), grid=GRID)
    sw = rec.sweep
    f = sw.frontier
    assert f.height >= 1 and f["knee"].sum() == 1
    knee = f.filter(pl.col("knee")).row(0, named=True)
    assert knee["rank"] == rec.row["rank"] == 1
    # Pareto: no row costs no more and saves more (or costs less and saves as much)
    t = sw.table
    for p in f.iter_rows(named=True):
        dominated = t.filter((pl.col("memory_usd_per_hour") <= p["memory_usd_per_hour"])
                             & (pl.col("prefill_saved_gpu_s_per_hour") >= p["prefill_saved_gpu_s_per_hour"])
                             & ((pl.col("memory_usd_per_hour") < p["memory_usd_per_hour"])
                                | (pl.col("prefill_saved_gpu_s_per_hour") > p["prefill_saved_gpu_s_per_hour"])))
        assert dominated.height == 0
    assert f["memory_usd_per_hour"].to_list() == sorted(f["memory_usd_per_hour"].to_list())
    assert rec.row["net_usd_per_hour"] == pytest.approx(
        rec.row["prefill_saved_usd_per_hour"] - rec.row["memory_usd_per_hour"])
    assert rec.summary()["frontier"] and "knee of the cost frontier" in rec.reasons[0]


def test_prefill_saved_is_the_prefill_the_hits_avoid(small_trace):
    sw = sweep(small_trace, _base(), grid=Grid(policies=("lru", "fifo"), admission=(1,), fractions=(1.0,),
                                                indexes=("chime",)), objective="prefill-saved")
    base = _base()
    input_len = np.asarray(small_trace.input_len, np.int64)
    cold = prefill_us(base.model, base.gpu, input_len, np.zeros_like(input_len)).sum()
    hours = max(small_trace.duration_s, 1.0) / 3600
    for row in sw.table.iter_rows(named=True):
        res = replay(small_trace, sw.config_of(row))
        saved_s = (cold - res.requests["prefill_ms"].sum() * 1e3) / 1e6 * base.gpu.count
        assert row["prefill_saved_gpu_s_per_hour"] == pytest.approx(saved_s / hours, rel=1e-9)
        bb = base.block_bytes(512)
        mem = sum(row[f"cap_{t.name}"] * bb / 1e9 * dict(base.prices.gb_hour)[t.name] for t in base.tiers)
        assert row["memory_usd_per_hour"] == pytest.approx(mem, rel=1e-12)


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
    with pytest.raises(ConfigError) as e:
        sweep(small_trace, base, tie_tolerance=-0.1)
    assert e.value.field == "tie_tolerance"


@pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets folder absent")
def test_cli_recommend_writes_config_that_replay_accepts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["recommend", str(CONVERSATION), "--policies", "lru,s3fifo", "--fractions", "1",
                            "--admission", "1,2", "--budget", "hbm=24GB", "--json", "--objective", "p99-ttft",
                            "--tie-tolerance", "0.01"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    path = tmp_path / "kvctrace-recommended.toml"
    assert s["config_path"] == "kvctrace-recommended.toml" and path.exists()
    assert s["n_configs"] == 2 * 2 * 5 and s["tie_tolerance"] == 0.01 and s["tie"]
    r2 = runner.invoke(app, ["replay", str(CONVERSATION), "--config", str(path), "--json"])
    assert r2.exit_code == 0, r2.output
    s2 = json.loads(r2.stdout)
    assert s2["prefix_hit_ratio"] == pytest.approx(s["recommended"]["prefix_hit_ratio"], abs=1e-12)
    assert s2["ttft_ms"]["p99"] == pytest.approx(s["recommended"]["ttft_p99_ms"], rel=1e-9)
    r3 = runner.invoke(app, ["recommend", str(CONVERSATION), "--budget", "hbm48GB"])
    assert r3.exit_code == 1 and "TIER=SIZE" in r3.stderr


@pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets folder absent")
def test_cli_recommend_default_is_cost_with_a_frontier(tmp_path):
    r = CliRunner().invoke(app, ["recommend", str(CONVERSATION), "--out", str(tmp_path / "r.toml"), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["objective"] == "cost" and s["search"] == "guided" and s["frontier"]
    assert sum(p["knee"] for p in s["frontier"]) == 1
    assert s["reasons"][0].startswith("knee of the cost frontier")


def test_chunked_sweep_gives_the_same_table(small_trace, monkeypatch):
    import kvctrace.replay.points as points
    g = Grid(policies=("lru", "fifo", "s3fifo"), admission=(1, 2), fractions=(1.0,), indexes=("redis-get", "chime"))
    whole = sweep(small_trace, _base(), grid=g).table
    monkeypatch.setattr(points, "CHUNK_BYTES", 1)  # one chunk per core
    monkeypatch.setattr(points, "STATE_BUDGET_BYTES", 1)  # one replay at a time
    assert sweep(small_trace, _base(), grid=g).table.equals(whole)


def test_replay_groups_hold_their_state_under_the_budget_by_hand():
    from kvctrace.replay.points import batches
    assert [g.tolist() for g in batches([10, 9, 1, 1], at_once=2, budget=19)] == [[0, 1, 2, 3]]
    # 10 + 9 over 18: apart; the 1s join the first group, which runs 10 + 1 at most
    assert [g.tolist() for g in batches([10, 9, 1, 1], at_once=2, budget=18)] == [[0, 2, 3], [1]]
    assert [g.tolist() for g in batches([10, 9, 1, 1], at_once=1, budget=10)] == [[0, 1, 2, 3]]
    assert [g.tolist() for g in batches([3, 2, 2], at_once=2, budget=1)] == [[0], [1], [2]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 100), max_size=12), st.integers(1, 4), st.integers(1, 250))
def test_replay_groups_cover_every_replay_once_within_the_budget(need, at_once, budget):
    from kvctrace.replay.points import batches
    groups = batches(need, at_once, budget)
    assert sorted(i for g in groups for i in g.tolist()) == list(range(len(need)))
    for g in groups:   # the replays that can run together: the group's at_once largest
        top = sorted((need[i] for i in g), reverse=True)[:at_once]
        assert len(top) == 1 or sum(top) <= budget   # (a replay over the budget runs alone)


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
    rec = recommend(small_trace, base, grid=g, max_memory_bytes=limit, tie_tolerance=0.0)
    assert rec.sweep.table["memory_bytes"].max() <= limit and rec.row["memory_bytes"] <= limit
    assert rec.sweep.table["rank"].to_list() == list(range(1, rec.sweep.table.height + 1))
    guided = recommend(small_trace, base, grid=Grid(policies=("lru",), indexes=("chime",)), max_memory_bytes=limit)
    assert guided.sweep.table["memory_bytes"].max() <= limit
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
    guided = sweep(small_trace, _base(), grid=Grid(admission=(1,), indexes=("chime",)))
    assert sorted(set(guided.table["policy"])) == sorted(policies.online_names())


def test_progress_is_reported_to_the_end(small_trace):
    seen = []
    recommend(small_trace, _base(), grid=Grid(policies=("lru", "fifo"), indexes=("chime",)), progress=seen.append)
    assert seen and seen[0].startswith("A: capacities") and "100%" in seen[-1]
    assert all("━" in s or "─" in s for s in seen)
