"""Policy replayer: cache tiers, eviction policies, index/transfer/prefill cost models, and
the config sweep behind ``kvctrace recommend``."""
from __future__ import annotations

from .config import (GPUConfig, IndexConfig, ModelConfig, ReplayConfig, TierConfig, load_config,
                     load_preset, preset_names, save_config)
from .engine import ReplayResult, replay
from .sweep import Grid, Recommendation, SweepResult, recommend  # (not ``sweep``: it would shadow the module)

__all__ = ["GPUConfig", "IndexConfig", "ModelConfig", "ReplayConfig", "TierConfig", "load_config",
           "load_preset", "preset_names", "save_config", "ReplayResult", "replay", "Grid",
           "Recommendation", "SweepResult", "recommend"]
