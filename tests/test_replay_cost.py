"""Cost models: metadata index plans from runs, transfer, prefill FLOPs, TTFT overlap."""
from __future__ import annotations

import numpy as np
import pytest

from kvctrace.kernels.replay import range_round_trips, request_runs
from kvctrace.replay import cost
from kvctrace.replay.config import GPUConfig, IndexConfig, ModelConfig
from tests.naive import naive_runs

OFFSETS = np.array([0, 6, 9], np.int64)
BLOCKS = np.array([10, 11, 12, 40, 7, 8, 3, 99, 5], np.int64)  # req0: runs [10..12], [40], [7, 8]; req1: singles


def test_request_runs():
    seq, runs, singles = request_runs(OFFSETS, BLOCKS)
    assert seq.tolist() == [5, 0] and runs.tolist() == [2, 0] and singles.tolist() == [1, 3]


def test_request_runs_against_naive():
    rng = np.random.default_rng(3)
    blocks = np.cumsum(rng.choice([1, 1, 1, 2, -5], 3000)).astype(np.int64) + 100
    offsets = np.arange(0, 3001, 30, dtype=np.int64)
    seq, runs, singles = request_runs(offsets, blocks)
    ref = naive_runs(offsets, blocks)  # run lengths per request (reuse engineer's reference)
    assert runs.tolist() == [sum(1 for x in r if x >= 2) for r in ref]
    assert singles.tolist() == [sum(1 for x in r if x == 1) for r in ref]


def test_range_round_trips():
    rtts, leaves = range_round_trips(np.array([0, 100], np.int64), np.arange(100, dtype=np.int64), 10, 4)
    assert leaves.tolist() == [10] and rtts.tolist() == [3]  # ceil(10 leaves / 4 in flight)


def test_metadata_point_range_and_batch():
    inserts = np.array([2, 0])
    get = cost.resolve_index(IndexConfig(kind="redis-get", rtt_us=100.0))
    plan = cost.lookup_plan(OFFSETS, BLOCKS, get)
    bytes_us = 64 * 8 / (25.0 * 1e3)
    assert cost.metadata_us(get, plan, inserts) == pytest.approx(
        [6 * 100 + 6 * bytes_us + 2 * 100, 3 * 100 + 3 * bytes_us])
    mget = cost.resolve_index(IndexConfig(kind="redis-mget", rtt_us=100.0))
    m = cost.metadata_us(mget, cost.lookup_plan(OFFSETS, BLOCKS, mget), inserts)
    assert m == pytest.approx([200 + 6 * bytes_us, 100 + 3 * bytes_us])
    sh = cost.resolve_index(IndexConfig(kind="sherman"))
    p = cost.lookup_plan(OFFSETS, BLOCKS, sh)
    assert p.singles.tolist() == [1, 3] and p.range_rtts.tolist() == [2, 0] and p.leaves.tolist() == [2, 0]
    per_byte = 8 / (200.0 * 1e3)
    expect0 = 1 * 2.0 + 1024 * per_byte + 2 * 2.0 + 2 * 1024 * per_byte + 2 * 3 * 2.0
    assert cost.metadata_us(sh, p, inserts)[0] == pytest.approx(expect0)


def test_sherman_uncached_levels_and_outstanding():
    m = cost.resolve_index(IndexConfig(kind="sherman", uncached_levels=2, outstanding=4, rtt_us=3.0))
    assert m.point_rtts == 3 and m.outstanding == 4 and m.rtt_us == 3.0


def test_hit_tokens_partial_last_block():
    prefix = np.array([[2, 1], [1, 0]], np.int32)   # req0 fully cached (3 blocks), last block in tier 1
    full = np.array([1, -1], np.int8)
    tokens = cost.hit_tokens_per_tier(prefix, full, np.array([3, 4]), np.array([1100, 2048]), 512)
    assert tokens.tolist() == [[1024, 1100 - 1024], [512, 0]]


def test_load_latency_only_when_tier_used():
    t = cost.load_us(np.array([[1000, 0]]), 2, [5.0, 80.0], [1.0, 1.0])
    assert t.tolist() == [[5.0 + 2000 / 1e3, 0.0]]


def test_prefill_formula():
    m = ModelConfig(layers=2, d_model=10, params=100.0)
    g = GPUConfig(count=2, peak_tflops=1e-6, mfu=0.5)  # 1e6 FLOP/s per GPU -> 1e6 FLOP/s total
    t = cost.prefill_us(m, g, np.array([10, 10, 10]), np.array([0, 4, 10]))
    n, c = np.array([10, 6, 1.0]), np.array([0, 4, 9.0])
    flops = 2 * 100 * n + 2 * 2 * 10 * (n * n + 2 * n * c)
    assert t == pytest.approx(flops / 1e6 * 1e6)


def test_ttft_overlap():
    a, b, c = np.array([1.0]), np.array([5.0]), np.array([3.0])
    assert cost.ttft_us(a, b, c, "none").tolist() == [9.0]
    assert cost.ttft_us(a, b, c, "layerwise").tolist() == [6.0]
