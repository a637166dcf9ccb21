"""Prices (kvctrace/replay/prices.py): the [prices] table, defaults by tier class, and the
dollar arithmetic of memory and GPU time."""
from __future__ import annotations

import numpy as np
import pytest

from kvctrace.errors import ConfigError
from kvctrace.replay.config import load_config, load_preset, one_tier, save_config
from kvctrace.replay.prices import (DRAM_GB_HOUR, SSD_GB_HOUR, gpu_cost, memory_cost_per_hour, per_hour,
                                    prefill_gpu_seconds, tier_cost_per_hour, tier_prices)

TIERS = """
[[tiers]]
name = "hbm"
capacity_blocks = 10

[[tiers]]
name = "dram"
capacity_blocks = 100

[[tiers]]
name = "nvme"
capacity_blocks = 1000
"""


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_presets_carry_prices_that_round_trip(tmp_path):
    for name in ("h100-llama3-8b", "h100-llama3-70b"):
        cfg = load_preset(name)
        assert dict(cfg.prices.gb_hour).keys() == {t.name for t in cfg.tiers}
        assert cfg.prices.gpu_hour == pytest.approx(98.32 / 8, abs=0.005)
        assert load_config(save_config(cfg, tmp_path / f"{name}.toml")) == cfg
        assert all(p.source == "config" for p in tier_prices(cfg))


def test_defaults_by_tier_class(tmp_path):
    cfg = load_config(write(tmp_path, "[prices]\ngpu_hour = 8.0\n" + TIERS))
    by_tier = {p.tier: p.gb_hour for p in tier_prices(cfg)}
    assert by_tier == {"hbm": 0.0, "dram": DRAM_GB_HOUR, "nvme": SSD_GB_HOUR}
    odd = load_config(write(tmp_path, TIERS.replace('"nvme"', '"tape"')))
    with pytest.raises(ConfigError) as e:
        tier_prices(odd)
    assert e.value.field == "prices.gb_hour.tape" and "[prices.gb_hour]" in str(e.value)
    priced = load_config(write(tmp_path, TIERS.replace('"nvme"', '"tape"') + "[prices.gb_hour]\ntape = 0.00001\n"))
    assert tier_prices(priced)[2].gb_hour == 0.00001


@pytest.mark.parametrize("table,key", [
    ("[prices]\ngpu_hour = -1\n", "prices.gpu_hour"),
    ("[prices.gb_hour]\nl3 = 0.1\n", "prices.gb_hour.l3"),
    ("[prices.gb_hour]\ndram = -0.1\n", "prices.gb_hour.dram"),
    ("[prices.gb_hour]\ndram = \"cheap\"\n", "prices.gb_hour.dram"),
    ("[prices]\ngb_hour = 3\n", "prices.gb_hour"),
    ("[prices]\ncurrency = \"EUR\"\n", "prices.currency"),
])
def test_bad_prices_name_the_key(tmp_path, table, key):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, TIERS + table))
    assert e.value.field == key


def test_arithmetic():
    gb_hour = np.array([0.5, 0.01])
    caps = np.array([[2e9, 100e9], [0, 1e9]])
    assert memory_cost_per_hour(gb_hour, caps).tolist() == pytest.approx([1.0 + 1.0, 0.01])
    assert prefill_gpu_seconds(np.array([1e6, 2e6]), 8) == 24.0
    cfg = load_preset("h100-llama3-8b")
    assert gpu_cost(cfg.prices, 3600.0) == pytest.approx(cfg.prices.gpu_hour)
    assert per_hour(10.0, 1800.0) == 20.0 and per_hour(10.0, 0.0) == 36000.0
    assert tier_cost_per_hour(cfg, "dram", 64e9) == pytest.approx(64 * 0.00367)
    with pytest.raises(ConfigError):
        tier_cost_per_hour(cfg, "l3", 1e9)


def test_one_tier_keeps_only_its_tier_price():
    cfg = one_tier(load_preset("h100-llama3-8b"), "lru", 100)
    assert [n for n, _ in cfg.prices.gb_hour] == ["hbm"]
