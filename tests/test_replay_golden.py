"""Golden numbers on the real Mooncake conversation trace, and the one-tier LRU replay against
the exact LRU miss-ratio curve from the reuse analysis."""
from __future__ import annotations

from pathlib import Path

import pytest

from kvctrace import Trace, open_trace
from kvctrace.replay import load_preset, replay
from kvctrace.replay.config import one_tier

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CONVERSATION = DATASETS / "mooncake" / "conversation_trace.jsonl"


def load_mooncake(path: Path = CONVERSATION) -> Trace:
    return open_trace(path)


needs_data = pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets folder absent")


@pytest.fixture(scope="module")
def conversation():
    return load_mooncake()


@needs_data
@pytest.mark.parametrize("capacity,expected", [(1_000, 0.0445), (10_000, 0.2112), (30_000, 0.3257),
                                               (50_000, 0.3546), (100_000, 0.3637)])
def test_golden_one_tier_lru_prefix_hit_ratio(conversation, capacity, expected):
    res = replay(conversation, one_tier(load_preset("h100-llama3-8b"), "lru", capacity))
    assert round(res.prefix_hit_ratio, 4) == expected
    assert res.prefix_hit_ratio <= res.block_hit_ratio


@needs_data
def test_one_tier_lru_equals_exact_mrc(conversation):
    from kvctrace.analysis.reuse import exact_mrc
    caps = [1, 10, 700, 5_000, 20_000, 61_749, 150_000, 200_000]
    mrc = exact_mrc(conversation, caps)["hit_ratio"].to_list()
    base = load_preset("h100-llama3-8b")
    for c, expected in zip(caps, mrc):
        res = replay(conversation, one_tier(base, "lru", c))
        assert res.block_hit_ratio == pytest.approx(expected, abs=0, rel=1e-12), c


@needs_data
def test_belady_bounds_every_online_policy_on_conversation(conversation):
    base = load_preset("h100-llama3-8b")
    opt = replay(conversation, one_tier(base, "belady", 5_000)).block_hit_ratio
    for pol in ("lru", "fifo", "lfu", "s3fifo", "prefix-lru"):
        assert replay(conversation, one_tier(base, pol, 5_000)).block_hit_ratio <= opt


@needs_data
def test_preset_replay_summary_shape(conversation):
    res = replay(conversation, load_preset("h100-llama3-70b"))
    s = res.summary()
    assert [t["name"] for t in s["tiers"]] == ["hbm", "dram", "pool", "nvme"]
    assert sum(t["prefix_hits"] for t in s["tiers"]) <= sum(t["block_hits"] for t in s["tiers"])
    assert s["ttft_ms"]["p50"] <= s["ttft_ms"]["p90"] <= s["ttft_ms"]["p99"]
    assert res.requests.height == conversation.n_requests
    # exclusive LRU hierarchy with promotion = one LRU of the summed capacity
    one = replay(conversation, one_tier(load_preset("h100-llama3-70b"), "lru", sum(res.capacities)))
    assert res.prefix_hit_ratio == one.prefix_hit_ratio


@needs_data
def test_miss_taxonomy_on_conversation(conversation):
    n_unique = conversation.n_unique_blocks
    # tiers summing to more than the distinct blocks, exclusive LRU = one LRU of that size:
    # nothing is ever evicted from the hierarchy, so every overall miss is a first access
    big = replay(conversation, load_preset("h100-llama3-70b"))
    assert big.misses() == {"cold": n_unique, "capacity": 0, "prefix_broken": 0, "admission": 0}
    # an infinite top tier: the same for every tier
    inf = replay(conversation, one_tier(load_preset("h100-llama3-8b"), "s3fifo", n_unique))
    assert inf.misses("hbm") == {"cold": n_unique, "capacity": 0, "prefix_broken": 0, "admission": 0}
    # the 8B preset is smaller than the trace: capacity misses; the causes add up per tier
    small = replay(conversation, load_preset("h100-llama3-8b"))
    served = small.tiers["prefix_hits"].cum_sum().to_list()
    for name, before in zip(small.tiers["name"], served):
        causes = small.misses(name)
        assert sum(causes.values()) == conversation.n_accesses - before
        assert causes["cold"] == n_unique and causes["admission"] == 0
    assert small.misses()["capacity"] > 0
    # HBM admitting from the second access: blocks that went straight to DRAM and then missed
    # HBM are admission misses of HBM, not of DRAM (which admits everything)
    import dataclasses
    base = load_preset("h100-llama3-8b")
    tiers = (dataclasses.replace(base.tiers[0], admit_min_accesses=2),) + base.tiers[1:]
    picky = replay(conversation, dataclasses.replace(base, tiers=tiers))
    assert picky.misses("hbm")["admission"] > 0
    assert picky.misses("dram")["admission"] == picky.misses()["admission"] == 0
