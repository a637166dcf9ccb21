"""What memory and GPU time cost: the one place kvctrace turns capacities and prefill seconds
into dollars (the ``cost`` objective of ``kvctrace recommend``, the report's "$ per hour").

A config's ``[prices]`` table holds ``gpu_hour`` ($ per GPU-hour) and, under
``[prices.gb_hour]``, $ per GB-hour (GB = 1e9 bytes) for each tier by name. A tier the table
does not name gets a default by the class its name says (docs/cost-model.md "Prices"):

* GPU memory (``hbm*``, ``gpu*``, ``vram*``): 0 -- paid for with the GPU: a serving engine's
  prefix cache lives in the KV blocks it allocates anyway (vLLM keeps freed blocks as cache).
  *Assumption*; set a price (e.g. ``gpu_hour / gpu.memory_gb``) to weigh KV cache in HBM
  against a larger batch;
* host or pooled DRAM (``dram*``, ``cpu*``, ``host*``, ``mem*``, ``pool*``, ``cxl*``):
  ``DRAM_GB_HOUR``;
* flash (``nvme*``, ``ssd*``, ``disk*``, ``flash*``): ``SSD_GB_HOUR``.
Any other tier name needs its price in the table (a ``ConfigError`` says so).

Sources of the defaults (on-demand list prices, AWS US East (N. Virginia), as listed in 2024;
prices change -- set your own):
* ``GPU_HOUR`` = $98.32 per hour for p5.48xlarge (8 x H100 SXM 80 GB) / 8 = $12.29 per
  GPU-hour, the instance's list price from its launch (July 2023) through 2024;
* ``DRAM_GB_HOUR``: r7i.large ($0.1323/h, 2 vCPU, 16 GiB) minus m7i.large ($0.1008/h, 2 vCPU,
  8 GiB) = $0.0315/h for 8 GiB = $0.003938 per GiB-hour = $0.00367 per GB-hour;
* ``SSD_GB_HOUR``: EBS gp3 at $0.08 per GiB-month / 730 hours = $0.000102 per GB-hour (local
  NVMe is not priced on its own; gp3 stands in for it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

GPU_HOUR = 12.29                      # $ per H100-hour: AWS p5.48xlarge $98.32/h / 8 (2024 list price)
DRAM_GB_HOUR = 0.0315 / 8 / 1.073741824   # AWS r7i.large - m7i.large per GiB-hour, per GB (1e9 B)
SSD_GB_HOUR = 0.08 / 730 / 1.073741824    # AWS EBS gp3 $0.08 per GiB-month, per GB-hour
GB = 1e9

# Tier-name prefixes -> price class (a name is matched case-insensitively by its start).
GPU_MEMORY_PREFIXES = ("hbm", "gpu", "vram")
DRAM_PREFIXES = ("dram", "cpu", "host", "mem", "pool", "cxl")
SSD_PREFIXES = ("nvme", "ssd", "disk", "flash")


@dataclass(frozen=True)
class PricesConfig:
    gpu_hour: float = field(default=GPU_HOUR, metadata={"help": (
        "$ per GPU-hour. Default 12.29: AWS p5.48xlarge (8 x H100 SXM) on-demand in US East at "
        "$98.32/h, the 2024 list price, / 8 (docs/cost-model.md \"Prices\")")})
    gb_hour: tuple[tuple[str, float], ...] = field(default=(), metadata={"help": (
        "$ per GB-hour (GB = 1e9 bytes) of each tier, by tier name ([prices.gb_hour] hbm = 0.15, ...). "
        "A tier not named here is priced by its name's class: GPU memory at 0 (paid for with the GPU), "
        "DRAM at $0.00367 (AWS r7i minus m7i per GiB, 2024), NVMe/SSD at $0.000102 (AWS EBS gp3, 2024)")})

    def price_of(self, name: str) -> float | None:
        """The table's $ per GB-hour for tier ``name`` (None when the table does not name it)."""
        return dict(self.gb_hour).get(name)


@dataclass(frozen=True)
class TierPrice:
    tier: str
    gb_hour: float
    source: str      # "config" or the default's class and reason


def tier_prices(cfg) -> list[TierPrice]:
    """$ per GB-hour of every tier of ``cfg`` (a ReplayConfig), in tier order, with where each
    price comes from. Raises ConfigError for a tier with no price and no default class."""
    prices = cfg.prices
    out = []
    for tier in cfg.tiers:
        given = prices.price_of(tier.name)
        low = tier.name.lower()
        if given is not None:
            out.append(TierPrice(tier.name, float(given), "config"))
        elif low.startswith(GPU_MEMORY_PREFIXES):
            out.append(TierPrice(tier.name, 0.0, "GPU memory default: paid for with the GPU"))
        elif low.startswith(DRAM_PREFIXES):
            out.append(TierPrice(tier.name, DRAM_GB_HOUR, "DRAM default (AWS r7i.large - m7i.large per GiB, 2024)"))
        elif low.startswith(SSD_PREFIXES):
            out.append(TierPrice(tier.name, SSD_GB_HOUR, "SSD default (AWS EBS gp3 per GiB-month, 2024)"))
        else:
            raise ConfigError(f"no price for tier '{tier.name}'", field=f"prices.gb_hour.{tier.name}",
                              hint=f"add it in $ per GB-hour under [prices.gb_hour], e.g. {tier.name} = 0.004")
    return out


def memory_cost_per_hour(gb_hour, capacity_bytes) -> np.ndarray:
    """$ per hour of holding ``capacity_bytes`` (..., T) in tiers priced ``gb_hour`` (T,) $ per
    GB-hour: one value per row."""
    caps = np.asarray(capacity_bytes, np.float64)
    return caps @ np.asarray(gb_hour, np.float64) / GB


def tier_cost_per_hour(cfg, tier_name: str, nbytes: float) -> float:
    """$ per hour of ``nbytes`` more (or less) of tier ``tier_name`` in ``cfg``."""
    price = {p.tier: p.gb_hour for p in tier_prices(cfg)}
    if tier_name not in price:
        raise ConfigError(f"no tier named '{tier_name}'", field="tier", hint="tiers: " + ", ".join(price))
    return float(nbytes) / GB * price[tier_name]


def prefill_gpu_seconds(prefill_us, gpu_count: int) -> float:
    """GPU-seconds of prefill: the requests' prefill time (µs) on ``gpu_count`` GPUs each."""
    return float(np.sum(prefill_us, dtype=np.float64)) * int(gpu_count) / 1e6


def gpu_cost(prices: PricesConfig, gpu_seconds) -> float | np.ndarray:
    """$ of ``gpu_seconds`` GPU-seconds at ``prices.gpu_hour``."""
    return np.asarray(gpu_seconds, np.float64) / 3600.0 * prices.gpu_hour


def per_hour(value, duration_s: float):
    """``value`` accumulated over a trace of ``duration_s`` seconds, per hour of trace. Traces
    shorter than one second count as one second (a rate over no time is not defined)."""
    return np.asarray(value, np.float64) * (3600.0 / max(float(duration_s), 1.0))


def validate_prices(prices: PricesConfig, tier_names, path=None) -> None:
    """Check ``prices`` against the config's tiers (names, values >= 0)."""
    if not (prices.gpu_hour >= 0 and np.isfinite(prices.gpu_hour)):
        raise ConfigError(f"must be a finite number >= 0, got {prices.gpu_hour}", field="prices.gpu_hour", path=path)
    names = set(tier_names)
    for name, value in prices.gb_hour:
        if name not in names:
            raise ConfigError(f"no tier named '{name}'", field=f"prices.gb_hour.{name}", path=path,
                              hint="tiers: " + ", ".join(tier_names))
        if not (value >= 0 and np.isfinite(value)):
            raise ConfigError(f"must be a finite number >= 0, got {value}", field=f"prices.gb_hour.{name}", path=path)
