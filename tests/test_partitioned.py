"""Partitioned reuse analysis (kvctrace/analysis/partitioned.py) and `kvctrace export`:
the method against a naive reference, per-request figures equal to the exact analysis, the
merged curve within 0.01 MAE of the exact one (conversation trace: local and on Ray; a
5M-access synthetic trace: local), determinism, and the export folder round trip."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from kvctrace import Trace, open_trace
from kvctrace.analysis import analyze_reuse
from kvctrace.analysis.partitioned import (PARTITION_SEED, analyze_partitioned, block_partitions,
                                           export_partitions, fmix64_array, partition_stats, raw_block_ids)
from kvctrace.cli import app
from kvctrace.errors import ConfigError, KvctraceError
from kvctrace.kernels.hashing import fmix64

from .naive import naive_fmix64, naive_request_hits, naive_stack_distances
from .test_replay_golden import CONVERSATION, needs_data

MAE_BOUND = 0.01
SAME_AS_EXACT = ("ideal_hit_ratio_blocks", "ideal_prefix_hit_ratio_blocks", "ideal_hit_ratio_tokens",
                 "ideal_prefix_hit_ratio_tokens", "request_hit_rate_mean", "request_prefix_hit_rate_mean",
                 "one_hit_block_share", "cold_accesses")


def _random_trace(rng, n_req=60, n_ids=40) -> Trace:
    lens = rng.integers(0, 9, size=n_req)
    raw = rng.integers(0, n_ids, size=int(lens.sum())) * 7919 + 3  # sparse raw ids
    return Trace.from_arrays(np.concatenate(([0], np.cumsum(lens))), raw, block_size=16,
                             input_len=lens * 16 - rng.integers(0, 16, size=n_req).clip(0, None))


def _without(summary: dict, *keys) -> dict:
    return {k: v for k, v in summary.items() if k not in keys}


def _assert_exact_figures(result, trace):
    exact = analyze_reuse(trace, shards=False)
    summary, reference = result.summary(), exact.summary()
    for key in SAME_AS_EXACT:
        assert summary[key] == reference[key], key
    for col in ("n_blocks", "hit_blocks", "prefix_hit_blocks", "tokens", "hit_tokens", "prefix_hit_tokens"):
        assert np.array_equal(result.requests[col].to_numpy(), exact.requests[col].to_numpy()), col


# ---- the method -------------------------------------------------------------------------------

@settings(deadline=None)  # the first call loads the Numba fmix64
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50))
def test_fmix64_array_is_the_project_fmix64(values):
    got = fmix64_array(np.array(values, np.uint64))
    assert [int(x) for x in got] == [naive_fmix64(v) for v in values] == [int(fmix64(np.uint64(v))) for v in values]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(0, 3))
def test_partitioned_matches_naive_method(trace_seed, partitions, seed):
    """Partition by the seeded hash of the raw id, naive stack distances per partition, d -> d*P:
    the merged curve at every capacity, and the exact per-request figures."""
    trace = _random_trace(np.random.default_rng(trace_seed))
    result = analyze_partitioned(trace, partitions, seed=seed)
    raw = [int(x) for x in raw_block_ids(trace)]
    salt = naive_fmix64(seed + int(PARTITION_SEED))
    part_of = [naive_fmix64(r ^ salt) % partitions for r in raw]
    scaled = []
    for p in range(partitions):
        stream = [b for b in trace.blocks if part_of[b] == p]
        scaled += [d * partitions for d in naive_stack_distances(stream) if d >= 0]
    caps = np.arange(0, max(scaled, default=0) + 3)
    expected = [sum(1 for d in scaled if d < c) / max(trace.n_accesses, 1) for c in caps]
    assert result.hit_ratio_at(caps).tolist() == expected
    hits, prefix = naive_request_hits(trace.offsets, trace.blocks)
    assert result.requests["hit_blocks"].to_list() == hits
    assert result.requests["prefix_hit_blocks"].to_list() == prefix
    _assert_exact_figures(result, trace)


def test_partition_stats_do_not_depend_on_row_order():
    rng = np.random.default_rng(4)
    req = np.repeat(np.arange(50), 6)
    pos = np.tile(np.arange(6), 50)
    block = rng.integers(0, 30, size=300) * 1_000_003
    ordered = partition_stats(req, pos, block, 50)
    shuffle = rng.permutation(300)
    shuffled = partition_stats(req[shuffle], pos[shuffle], block[shuffle], 50)
    for name in ("n_accesses", "n_unique", "one_hit_blocks", "cold"):
        assert getattr(ordered, name) == getattr(shuffled, name)
    for name in ("distances", "hits", "first_cold", "last_warm"):
        assert np.array_equal(getattr(ordered, name), getattr(shuffled, name))


def test_deterministic_for_partitions_and_seed():
    trace = _random_trace(np.random.default_rng(8), n_req=400, n_ids=300)
    a, b = analyze_partitioned(trace, 4, seed=5), analyze_partitioned(trace, 4, seed=5)
    assert a.to_json() == b.to_json() and np.array_equal(a._merged, b._merged)
    other = analyze_partitioned(trace, 4, seed=6)
    assert other.summary()["partition_accesses"] != a.summary()["partition_accesses"]
    _assert_exact_figures(other, trace)  # exact whatever the seed
    with pytest.raises(ConfigError, match="partitions=0 must be >= 1"):
        block_partitions(np.arange(3, dtype=np.uint64), 0)


# ---- error against the exact curve ------------------------------------------------------------

@pytest.fixture(scope="module")
def conversation():
    return open_trace(CONVERSATION)


@needs_data
def test_conversation_local_and_ray(conversation, ray_session):
    local = analyze_partitioned(conversation, 8)
    err = local.error
    assert err["exact_computed"] and err["mae_linear"] <= MAE_BOUND and err["mae_log"] <= MAE_BOUND, err
    _assert_exact_figures(local, conversation)
    on_ray = analyze_partitioned(conversation, 8, engine="ray")
    assert _without(on_ray.summary(), "engine") == _without(local.summary(), "engine")


@pytest.fixture(scope="module")
def synth_5m(tmp_path_factory):
    from kvctrace.synth import write_trace
    path = write_trace(tmp_path_factory.mktemp("synth") / "chat_5m.jsonl", "mooncake", 175_000, seed=1)
    return open_trace(path)


@pytest.fixture(scope="module")
def synth_5m_local(synth_5m):
    return analyze_partitioned(synth_5m, 8)


def test_synth_5m_accesses_local(synth_5m, synth_5m_local):
    assert synth_5m.n_accesses >= 5_000_000
    err = synth_5m_local.error
    assert err["exact_computed"] and err["mae_linear"] <= MAE_BOUND and err["mae_log"] <= MAE_BOUND, err
    exact = analyze_reuse(synth_5m, shards=False).summary()
    assert synth_5m_local.summary()["ideal_prefix_hit_ratio_blocks"] == exact["ideal_prefix_hit_ratio_blocks"]


def test_synth_5m_accesses_on_ray(synth_5m, synth_5m_local, ray_session):
    on_ray = analyze_partitioned(synth_5m, 8, engine="ray")
    assert _without(on_ray.summary(), "engine") == _without(synth_5m_local.summary(), "engine")


# ---- export -----------------------------------------------------------------------------------

def _exported(tmp_path):
    trace = _random_trace(np.random.default_rng(2), n_req=500, n_ids=400)
    return trace, tmp_path / "export", export_partitions(trace, tmp_path / "export", 4, seed=3)


def test_export_round_trip(tmp_path):
    trace, folder, manifest = _exported(tmp_path)
    assert sum(manifest["partition_accesses"]) == trace.n_accesses and manifest["partitions"] == 4
    parts = block_partitions(raw_block_ids(trace), 4, 3)
    # DuckDB reads the layout as a hive-partitioned dataset; every block sits in its partition
    rows = duckdb.sql(f"SELECT part, block, count(*) AS n FROM read_parquet('{folder}/part=*/*.parquet', "
                      "hive_partitioning = true) GROUP BY ALL").fetchnumpy()
    assert np.array_equal(parts[rows["block"]], rows["part"])
    assert np.bincount(rows["part"], weights=rows["n"], minlength=4).tolist() == manifest["partition_accesses"]
    from_files = analyze_partitioned(folder).summary()
    assert _without(from_files, "path") == _without(analyze_partitioned(trace, 4, seed=3).summary(), "path")


def test_ray_tasks_read_their_own_partition_files(tmp_path, ray_session):
    trace, folder, _ = _exported(tmp_path)
    from_files = analyze_partitioned(folder, engine="ray").summary()
    assert _without(from_files, "path", "engine") == _without(analyze_partitioned(trace, 4, seed=3).summary(),
                                                              "path", "engine")


def test_export_and_analyze_errors(tmp_path):
    trace = _random_trace(np.random.default_rng(1))
    folder = tmp_path / "export"
    export_partitions(trace, folder, 3)
    with pytest.raises(KvctraceError, match="exists and is not empty"):
        export_partitions(trace, folder, 3)
    with pytest.raises(ConfigError, match="written with partitions=3, not 4"):
        analyze_partitioned(folder, 4)
    with pytest.raises(ConfigError, match="written with seed=0, not 2"):
        analyze_partitioned(folder, seed=2)
    with pytest.raises(KvctraceError, match="not a trace and not an export folder"):
        analyze_partitioned(tmp_path)
    with pytest.raises(ConfigError, match="needs a partition count"):
        analyze_partitioned(trace)
    assert not list(tmp_path.glob(".export.partial-*"))


def test_cli_export_and_analyze(tmp_path):
    from kvctrace.synth import write_trace
    path = write_trace(tmp_path / "chat.jsonl", "mooncake", 300, seed=2)
    runner = CliRunner()
    r = runner.invoke(app, ["export", str(path), "--parquet", str(tmp_path / "parts"), "--partitions", "3",
                            "--seed", "9"])
    assert r.exit_code == 0 and "3 partitions (seed 9" in r.stdout, r.output
    from_folder = runner.invoke(app, ["analyze", str(tmp_path / "parts"), "--json", "--out", str(tmp_path / "a")])
    from_trace = runner.invoke(app, ["analyze", str(path), "--partitions", "3", "--seed", "9", "--json",
                                     "--out", str(tmp_path / "b")])
    assert from_folder.exit_code == 0 and from_trace.exit_code == 0, from_folder.output + from_trace.output
    a, b = json.loads(from_folder.stdout), json.loads(from_trace.stdout)
    assert _without(a, "path") == _without(b, "path")
    assert json.loads((tmp_path / "a" / "partitioned.json").read_text()) == a
    bad = runner.invoke(app, ["analyze", str(tmp_path / "parts"), "--format", "mooncake"])
    assert bad.exit_code == 1 and "not to an export folder" in bad.stderr
