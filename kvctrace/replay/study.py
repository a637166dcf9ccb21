"""The replays behind the report's replay section (compute stage, public replay API only).

``replay_study(trace, config)`` replays ``trace`` through
* for each policy in ``policies``, ``config`` with every tier using that policy, and then with
  one tier's capacity times each factor in ``scales`` while every other tier keeps its
  configured capacity (hit ratio and TTFT of each tier against that tier's capacity);
* ``config``'s tiers as given with each metadata index model in ``index_kinds`` (TTFT and
  metadata time per index model on identical tiers);
* ``config`` as given, and with each tier in turn one step larger (``marginal_values``: what
  the next step of each tier buys).
It returns a ``ReplayStudy``: the list of every ``ReplayResult`` (iterating it yields them, so
it goes wherever a list of replays goes), the replay of ``config`` as given, and the marginal
value of each tier.

Marginal value of a tier: the config as given against the same config with that tier
``step_bytes`` larger (every other tier as configured): the change in prefix hits (block
accesses over the whole trace), in mean TTFT, and what the step costs per hour at the config's
prices (replay/prices.py). The step is the largest power of two in GB up to 512 GB, in TB above
(1 GB = 1e9 bytes), not above a quarter of the tier's configured capacity (a 256 GB tier:
64 GB; 3.84 TB: 512 GB; 48 GB: 8 GB; 30 TB: 4 TB), and at least one block: small enough to
read as "the next" increment, large enough to move the hit count. The replay adds the whole
blocks the step holds.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..formatting import format_bytes
from ..kernels import policies as _policies
from ..replay import IndexConfig
from ..replay.config import validate
from ..replay.cost import INDEX_MODELS
from .prices import GB, tier_cost_per_hour, tier_prices

DEFAULT_POLICIES = tuple(_policies.names())    # every policy, Belady (the offline bound) included
DEFAULT_SCALES = (0.0625, 0.25, 1.0, 4.0)
DEFAULT_INDEX_KINDS = tuple(INDEX_MODELS)


def tier_scaled_config(config, block_size: int, tier: int | None, scale: float = 1.0, policy: str | None = None,
                       extra_blocks: int = 0):
    """``config`` with tier ``tier``'s capacity (in blocks at ``block_size``) times ``scale``
    plus ``extra_blocks`` (None: no tier changed), every other tier at its configured capacity,
    and every tier using ``policy`` (default: as configured)."""
    caps = config.capacities(block_size)
    tiers = []
    for k, (t, c) in enumerate(zip(config.tiers, caps)):
        if k == tier:
            c = max(1, int(round(c * scale)) + int(extra_blocks))
        tiers.append(dataclasses.replace(t, capacity_blocks=c, capacity_bytes=None, policy=policy or t.policy))
    what = "" if tier is None else (f" {config.tiers[tier].name} x{scale:g}" if not extra_blocks
                                    else f" {config.tiers[tier].name} +{extra_blocks} blocks")
    return validate(dataclasses.replace(config, tiers=tuple(tiers), name=f"{config.name} {policy or 'as configured'}{what}"))


def marginal_step_bytes(capacity_bytes: int, block_bytes: int) -> int:
    """The step of a tier's marginal value (module docstring): the largest power of two in GB
    (2^j x 1e9 bytes, j may be negative), or in TB from 1 TB up, not above a quarter of
    ``capacity_bytes``; at least one block (without capacity: the power of two covering one)."""
    quarter = max(capacity_bytes / 4, block_bytes)
    unit = 1000 * GB if quarter >= 1000 * GB else GB
    step = unit * 2.0 ** math.floor(math.log2(quarter / unit))
    if capacity_bytes <= 0 and step < block_bytes:
        step *= 2
    return int(step)


def _signed(v: float, spec: str) -> str:
    """``v`` with its sign always shown, a minus sign (−) for negatives."""
    text = format(abs(v), spec)
    return ("−" if v < 0 and float(text.replace(",", "")) != 0 else "+") + text


def _dollars(v: float) -> str:
    return f"${v:,.2f}" if v >= 0.995 or v == 0 else f"${v:.2g}"


@dataclass(frozen=True)
class TierMarginal:
    """What the next ``step_bytes`` of one tier buys (module docstring)."""
    tier: str
    capacity_bytes: int          # as configured (whole blocks)
    step_bytes: int              # the nominal step; the replay adds ``step_blocks`` whole blocks
    step_blocks: int
    block_bytes: int
    prefix_hits_added: int       # block accesses served as prefix hits, whole trace
    prefix_hit_ratio_added: float
    mean_ttft_ms_change: float   # negative: faster
    usd_per_hour: float | None   # the step's price per hour; None: the tier has no price
    price_source: str

    def sentence(self) -> str:
        step = format_bytes(self.step_bytes)
        grown = (f"{format_bytes(self.capacity_bytes)} → "
                 f"{format_bytes(self.capacity_bytes + self.step_blocks * self.block_bytes)}")
        cost = ""
        if self.usd_per_hour is not None:
            cost = f", for {_dollars(self.usd_per_hour)} per hour"
            if self.usd_per_hour == 0:
                cost += (f" (the config prices {self.tier} at $0 per GB-hour)" if self.price_source == "config"
                         else f" ({self.price_source})")
        return (f"The next {step} of {self.tier} ({grown}, {self.step_blocks:+,} blocks) adds "
                f"{_signed(self.prefix_hits_added, ',')} prefix hits ({_signed(100 * self.prefix_hit_ratio_added, '.2f')} "
                f"points of the prefix hit ratio) and {_signed(self.mean_ttft_ms_change, ',.2f')} ms mean TTFT{cost}.")

    def summary(self) -> dict:
        return {**dataclasses.asdict(self), "sentence": self.sentence()}


def _mean_ttft_ms(result) -> float:
    return float(result.requests["ttft_ms"].mean()) if result.requests.height else 0.0


def marginal_steps(config, block_size: int) -> list[tuple[int, int]]:
    """(step bytes, step blocks) per tier of ``config`` (module docstring)."""
    bb = config.block_bytes(block_size)
    steps = []
    for t, c in zip(config.tiers, config.capacities(block_size)):
        configured = t.capacity_bytes if t.capacity_bytes is not None and t.capacity_blocks is None else c * bb
        step = marginal_step_bytes(configured, bb)
        steps.append((step, max(1, step // bb)))
    return steps


def marginal_values(config, block_size: int, base, grown: list) -> list[TierMarginal]:
    """Per tier, ``TierMarginal`` from the replay of ``config`` as given (``base``) and of
    ``config`` with that tier one step larger (``grown``, in tier order)."""
    try:
        prices = {p.tier: p for p in tier_prices(config)}
    except ConfigError:    # a tier with no price and no default class: the $ part is left out
        prices = {}
    n = max(int(base.requests["n_blocks"].sum()), 1)
    bb = config.block_bytes(block_size)
    out = []
    for k, ((step, blocks), res) in enumerate(zip(marginal_steps(config, block_size), grown)):
        name = config.tiers[k].name
        added = int(res.tiers["prefix_hits"].sum() - base.tiers["prefix_hits"].sum())
        price = prices.get(name)
        out.append(TierMarginal(
            name, int(base.capacities[k]) * bb, step, blocks, bb, added, added / n,
            _mean_ttft_ms(res) - _mean_ttft_ms(base),
            tier_cost_per_hour(config, name, blocks * bb) if price else None,
            price.source if price else "no price for this tier"))
    return out


@dataclass
class ReplayStudy:
    """The replays of ``replay_study`` (module docstring); iterating yields every replay."""
    results: list
    base: object                 # ReplayResult of the config as given
    marginal: list               # TierMarginal per tier

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def summary(self) -> dict:
        """The summary of the config's replay with ``marginal``: per tier, what its next step adds."""
        return {**self.base.summary(), "marginal": [m.summary() for m in self.marginal]}


def study_configs(config, block_size: int, policies=DEFAULT_POLICIES, scales=DEFAULT_SCALES,
                  index_kinds=DEFAULT_INDEX_KINDS) -> tuple[list, int]:
    """The configs ``replay_study`` replays, and where the marginal ones start (the config as
    given, then each tier one step larger)."""
    T = len(config.tiers)
    configs = []
    for p in policies:
        configs.append(tier_scaled_config(config, block_size, None, policy=p))
        configs += [tier_scaled_config(config, block_size, k, s, p) for k in range(T) for s in scales if s != 1]
    for kind in index_kinds:
        # a fresh IndexConfig: each kind gets its own default round trips (as `--index` does)
        cfg = dataclasses.replace(config, index=IndexConfig(kind=kind), name=f"{config.name} index {kind}")
        configs.append(validate(cfg))
    start = len(configs)
    configs.append(config)
    configs += [tier_scaled_config(config, block_size, k, extra_blocks=blocks)
                for k, (_, blocks) in enumerate(marginal_steps(config, block_size))]
    return configs, start


def replay_study(trace, config, *, policies=DEFAULT_POLICIES, scales=DEFAULT_SCALES,
                 index_kinds=DEFAULT_INDEX_KINDS, engine: str = "local") -> ReplayStudy:
    """The ``ReplayStudy`` the report's replay section draws (see module docstring);
    ``engine="ray"`` replays each config in a Ray task (same results)."""
    from ..replay.distributed import replay_many
    bs = int(trace.block_size)
    configs, start = study_configs(config, bs, policies, scales, index_kinds)
    results = replay_many(trace, configs, engine)
    base = results[start]
    return ReplayStudy(results, base, marginal_values(config, bs, base, results[start + 1:]))


def marginal_study(trace, config, engine: str = "local") -> ReplayStudy:
    """Only the marginal replays: ``config`` as given and each tier one step larger."""
    from ..replay.distributed import replay_many
    bs = int(trace.block_size)
    configs = [config] + [tier_scaled_config(config, bs, k, extra_blocks=blocks)
                          for k, (_, blocks) in enumerate(marginal_steps(config, bs))]
    results = replay_many(trace, configs, engine)
    return ReplayStudy(results, results[0], marginal_values(config, bs, results[0], results[1:]))
