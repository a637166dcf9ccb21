"""Replay config: TOML round trip, presets, and errors that name the TOML key."""
from __future__ import annotations

import dataclasses

import pytest

from kvctrace.errors import ConfigError, UnknownNameError
from kvctrace.replay.config import (ReplayConfig, TierConfig, config_to_toml, field_help, load_config,
                                    load_preset, one_tier, parse_bytes, preset_names, save_config)

MIN = """
[[tiers]]
name = "hbm"
capacity_blocks = 100
"""


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_presets_load_and_round_trip(tmp_path):
    assert {"h100-llama3-70b", "h100-llama3-8b"} <= set(preset_names())
    for name in preset_names():
        cfg = load_preset(name)
        back = load_config(save_config(cfg, tmp_path / f"{name}.toml", header="test"))
        assert back == cfg


def test_kv_bytes_per_token_of_presets():
    assert load_preset("h100-llama3-70b").model.kv_bytes_per_token == 320 * 1024
    assert load_preset("h100-llama3-8b").model.kv_bytes_per_token == 128 * 1024


def test_minimal_config_defaults(tmp_path):
    cfg = load_config(write(tmp_path, MIN))
    assert cfg.tiers == (TierConfig(name="hbm", capacity_blocks=100),)
    assert cfg.hierarchy == "exclusive" and cfg.index.kind == "redis-mget"
    assert cfg.capacities(512) == [100]


def test_capacity_bytes_with_units(tmp_path):
    cfg = load_config(write(tmp_path, '[[tiers]]\nname = "dram"\ncapacity_bytes = "1 GiB"\n'))
    assert cfg.tiers[0].capacity_bytes == 2**30
    assert cfg.capacities(16) == [2**30 // (16 * cfg.model.kv_bytes_per_token)]
    assert parse_bytes("320 GB") == 320 * 10**9 and parse_bytes(5) == 5


@pytest.mark.parametrize("text,key,fragment", [
    ("colour = 1\n" + MIN, "colour", "unknown key"),
    (MIN + "colour = 1\n", "tiers[0].colour", "unknown key"),  # TOML: keys after [[tiers]] belong to it
    ('[[tiers]]\nname = "a"\ncapacity_blocks = 1\nspeed = 3\n', "tiers[0].speed", "valid keys"),
    ('[[tiers]]\nname = "a"\n', "tiers[0].capacity_blocks", "exactly one"),
    ('[[tiers]]\nname = "a"\ncapacity_blocks = -1\n', "tiers[0].capacity_blocks", ">= 0"),
    ('[[tiers]]\nname = "a"\ncapacity_blocks = "x"\n', "tiers[0].capacity_blocks", "integer"),
    ('[[tiers]]\nname = "a"\ncapacity_bytes = "12 parsecs"\n', "tiers[0].capacity_bytes", "size"),
    ('hierarchy = "mixed"\n' + MIN, "hierarchy", "unknown mode"),
    (MIN + '[gpu]\nmfu = 1.5\n', "gpu.mfu", "(0, 1]"),
    ('tiers = []\n', "tiers", "at least one"),
    ('name = "x"\n', "tiers", "required"),
    ('[[tiers]]\nname = "a"\ncapacity_blocks = 1\n[[tiers]]\nname = "a"\ncapacity_blocks = 1\n', "tiers[1].name", "duplicate"),
])
def test_errors_name_the_key(tmp_path, text, key, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    msg = str(e.value)
    assert fragment in msg
    if key:
        assert e.value.field == key and key in msg


def test_unknown_policy_and_index_list_valid_names(tmp_path):
    with pytest.raises(UnknownNameError) as e:
        load_config(write(tmp_path, '[[tiers]]\nname = "a"\ncapacity_blocks = 1\npolicy = "clock"\n'))
    assert e.value.field == "tiers[0].policy" and "prefix-lru" in str(e.value)
    with pytest.raises(UnknownNameError) as e:
        load_config(write(tmp_path, MIN + '[index]\nkind = "btree"\n'))
    assert e.value.field == "index.kind" and "sherman" in str(e.value)


def test_unknown_preset_lists_valid_names():
    with pytest.raises(UnknownNameError) as e:
        load_preset("a100-gpt2")
    assert "h100-llama3-8b" in str(e.value)


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "[[tiers]\nname = 1\n"))
    assert "TOML" in str(e.value)
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml")


def test_one_tier_shortcut():
    cfg = one_tier(load_preset("h100-llama3-70b"), "s3fifo", 1234)
    assert len(cfg.tiers) == 1 and cfg.tiers[0].policy == "s3fifo" and cfg.capacities(512) == [1234]
    assert cfg.model.name == "llama-3-70b"


def test_every_field_has_help_text():
    from kvctrace.replay.config import GPUConfig, IndexConfig, ModelConfig
    for cls in (TierConfig, IndexConfig, ModelConfig, GPUConfig, ReplayConfig):
        assert all(h for h in field_help(cls).values()), cls


def test_frozen():
    cfg = load_preset("h100-llama3-8b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "x"
    assert "[[tiers]]" in config_to_toml(cfg)
