"""The replays behind the report's replay section (compute stage, public replay API only).

``replay_study(trace, config)`` replays ``trace`` through
* ``config`` with every tier's capacity scaled by each factor in ``scales`` and every tier
  using the same eviction policy, for each policy in ``policies`` (hit ratio per tier vs
  capacity per policy);
* ``config``'s tiers as given with each metadata index model in ``index_kinds`` (TTFT and metadata
  time per index model on identical tiers).
"""
from __future__ import annotations

import dataclasses

from ..replay import IndexConfig
from ..replay import policies as _policies
from ..replay.config import validate
from ..replay.cost import INDEX_MODELS

DEFAULT_POLICIES = tuple(_policies.names())    # every policy, Belady (the offline bound) included
DEFAULT_SCALES = (0.0625, 0.25, 1.0, 4.0)
DEFAULT_INDEX_KINDS = tuple(INDEX_MODELS)


def scaled_config(config, block_size: int, scale: float, policy: str | None = None):
    """``config`` with each tier's capacity (in blocks at ``block_size``) times ``scale``."""
    caps = config.capacities(block_size)
    tiers = tuple(dataclasses.replace(t, capacity_blocks=max(1, int(round(c * scale))), capacity_bytes=None,
                                      policy=policy or t.policy)
                  for t, c in zip(config.tiers, caps))
    name = f"{config.name} {policy or 'as configured'} x{scale:g}"
    return validate(dataclasses.replace(config, tiers=tiers, name=name))


def replay_study(trace, config, *, policies=DEFAULT_POLICIES, scales=DEFAULT_SCALES,
                 index_kinds=DEFAULT_INDEX_KINDS, engine: str = "local") -> list:
    """The list of ``ReplayResult`` the report's replay section draws (see module docstring);
    ``engine="ray"`` replays each config in a Ray task (same results)."""
    from ..replay.distributed import replay_many
    bs = int(trace.block_size)
    configs = [scaled_config(config, bs, s, p) for p in policies for s in scales]
    for kind in index_kinds:
        # a fresh IndexConfig: each kind gets its own default round trips (as `--index` does)
        cfg = dataclasses.replace(config, index=IndexConfig(kind=kind), name=f"{config.name} index {kind}")
        configs.append(validate(cfg))
    return replay_many(trace, configs, engine)
