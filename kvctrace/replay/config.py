"""Replay configuration as data: frozen dataclasses (help text in ``metadata``), TOML in and out.

A config names an ordered list of cache tiers (fastest first), how blocks move between them,
the metadata index, the model and the GPU. ``load_config(path)`` / ``config_from_dict(d)``
validate everything and raise :class:`~kvctrace.errors.ConfigError` naming the TOML key
(``tiers[1].policy``); ``save_config(cfg, path)`` writes TOML that ``load_config`` reads back.
Presets ship as TOML under ``kvctrace/replay/presets/`` (``load_preset(name)``).

Every default names its source in its help text; sizes in TOML may be integers (bytes) or
strings with units (``"320 GB"``, ``"1 TiB"``).
"""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path

from ..errors import ConfigError, UnknownNameError
from ..kernels import policies
from .prices import PricesConfig, validate_prices

HIERARCHY_MODES = ("exclusive", "inclusive")
MAX_TIERS = 16  # the engine keeps tier membership as a bitmask per block
OVERLAP_MODES = ("none", "layerwise")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class TierConfig:
    name: str = field(metadata=_help("Tier name, e.g. hbm, dram, nvme, pool"))
    policy: str = field(default="lru", metadata=_help(
        "Eviction policy: " + ", ".join(policies.names())))
    capacity_blocks: int | None = field(default=None, metadata=_help(
        "Capacity in blocks (give this or capacity_bytes)"))
    capacity_bytes: int | None = field(default=None, metadata=_help(
        "Capacity in bytes; blocks = bytes // (block_size x model KV bytes per token)"))
    read_latency_us: float = field(default=0.0, metadata=_help(
        "Fixed latency of one load from this tier into GPU memory (µs); default 0, right for "
        "HBM (the KV is already in GPU memory). docs/cost-model.md hardware defaults: RDMA READ ~2 µs, NVMe ~80 µs"))
    read_bandwidth_gb_s: float = field(default=25.0, metadata=_help(
        "Effective bandwidth of a load from this tier into GPU memory (GB/s, 1e9 B/s). "
        "Default: PCIe Gen4 x16 ≈ 25 GB/s effective host→GPU (docs/cost-model.md hardware defaults)"))
    admit_min_accesses: int = field(default=1, metadata=_help(
        "Hotness-aware admission: admit a block to this tier only once it has been accessed "
        "at least this many times in the trace so far (1 = admit everything)"))

    def capacity_in_blocks(self, block_bytes: int) -> int:
        if self.capacity_blocks is not None:
            return int(self.capacity_blocks)
        return int(self.capacity_bytes // max(block_bytes, 1))


@dataclass(frozen=True)
class IndexConfig:
    kind: str = field(default="redis-mget", metadata=_help(
        "Metadata index model: redis-get, redis-mget, sherman, chime, rdma-hash "
        "(see `kvctrace.replay.cost.INDEX_MODELS`)"))
    rtt_us: float | None = field(default=None, metadata=_help(
        "Round-trip time of one index operation (µs); default per kind: Redis 100 µs "
        "(redis.io latency docs: ~200 µs on 1 Gbit/s, 50–200 µs same rack), RDMA 2 µs "
        "(RDMA READ ≤ 1 KB, docs/cost-model.md)"))
    outstanding: int | None = field(default=None, metadata=_help(
        "Independent point operations a client keeps in flight (1 = one after another, as the "
        "paper's per-key client); default per kind"))
    uncached_levels: int | None = field(default=None, metadata=_help(
        "Sherman: B+tree levels not covered by the client's internal-node cache (0 = 1 RTT "
        "point lookups; Sherman's 1000 MB level-1 cache, include/Common.h kIndexCacheSize)"))
    link_gbit_s: float | None = field(default=None, metadata=_help(
        "RDMA link bandwidth for leaf/bucket reads (Gbit/s); default 200 (docs/cost-model.md: 100/200/400)"))


@dataclass(frozen=True)
class ModelConfig:
    name: str = field(default="llama-3-8b", metadata=_help("Model name"))
    layers: int = field(default=32, metadata=_help("Transformer layers (Llama-3-8B config.json: 32)"))
    kv_heads: int = field(default=8, metadata=_help("KV heads (GQA; Llama-3-8B config.json: 8)"))
    head_dim: int = field(default=128, metadata=_help("Head dimension (Llama-3-8B: 4096/32 = 128)"))
    dtype_bytes: int = field(default=2, metadata=_help("Bytes per KV element (bf16 = 2)"))
    d_model: int = field(default=4096, metadata=_help("Hidden size (Llama-3-8B config.json: 4096)"))
    params: float = field(default=8.03e9, metadata=_help(
        "Parameter count P for the 2·P·n prefill FLOPs (Llama-3-8B: 8.03e9, model card)"))
    kv_bytes_per_token_override: int | None = field(default=None, metadata=_help(
        "KV bytes per token when not 2 x layers x kv_heads x head_dim x dtype_bytes "
        "(e.g. DeepSeek-V3 MLA: 61 x 576 x 2 = 70272)"))

    @property
    def kv_bytes_per_token(self) -> int:
        if self.kv_bytes_per_token_override is not None:
            return int(self.kv_bytes_per_token_override)
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


@dataclass(frozen=True)
class GPUConfig:
    name: str = field(default="H100-SXM", metadata=_help("GPU name"))
    count: int = field(default=1, metadata=_help("GPUs serving one request (tensor parallel); FLOP/s scale with it"))
    peak_tflops: float = field(default=989.0, metadata=_help(
        "Dense BF16 peak per GPU (TFLOP/s); H100 SXM 989 (NVIDIA H100 datasheet)"))
    mfu: float = field(default=0.5, metadata=_help(
        "Model FLOPs utilisation of prefill; assumption 0.5 (prefill is compute-bound: "
        "Splitwise ISCA'24, DistServe OSDI'24)"))
    hbm_tb_s: float = field(default=3.35, metadata=_help("HBM bandwidth (TB/s); H100 SXM 3.35 (NVIDIA datasheet)"))
    memory_gb: float = field(default=80.0, metadata=_help(
        "HBM capacity per GPU (GB); H100 SXM 80 (NVIDIA datasheet). A tier named hbm or gpu holding "
        "more than count x memory_gb is warned about (gpu_memory_warnings)"))


@dataclass(frozen=True)
class ReplayConfig:
    tiers: tuple[TierConfig, ...] = field(metadata=_help("Cache tiers, fastest first"))
    name: str = field(default="custom", metadata=_help("Config name"))
    hierarchy: str = field(default="exclusive", metadata=_help(
        "Default exclusive (as offloading tiers in LMCache / vLLM's KV offload move blocks). "
        "exclusive: a block lives in one tier (misses go to the top admitting tier, evictions "
        "demote); inclusive: a miss is copied into every admitting tier, and a block evicted "
        "from a tier whose lower tier holds a copy is simply dropped"))
    promote_on_hit: bool = field(default=True, metadata=_help(
        "Move (exclusive) or copy (inclusive) a block found in a lower tier into the top admitting "
        "tier; default true (a hit must reach GPU memory to be used)"))
    demote_on_evict: bool = field(default=True, metadata=_help(
        "Move a block evicted from a tier into the next tier below that admits it (else drop it); "
        "default true (write-back offloading, as LMCache's CPU/disk backends)"))
    overlap: str = field(default="none", metadata=_help(
        "Default none (the conservative sum). none: TTFT = metadata + load + prefill; layerwise: loads overlap prefill layer by "
        "layer (LMCache/Mooncake layer-wise transfer), TTFT = metadata + max(load, prefill)"))
    index: IndexConfig = field(default_factory=IndexConfig, metadata=_help("Metadata index model"))
    model: ModelConfig = field(default_factory=ModelConfig, metadata=_help("Model (KV size, prefill cost)"))
    gpu: GPUConfig = field(default_factory=GPUConfig, metadata=_help("GPU (prefill cost)"))
    prices: PricesConfig = field(default_factory=PricesConfig, metadata=_help(
        "$ per GPU-hour and $ per GB-hour of each tier (the cost objective; replay/prices.py)"))

    def block_bytes(self, block_size: int) -> int:
        return int(block_size) * self.model.kv_bytes_per_token

    def capacities(self, block_size: int) -> list[int]:
        bb = self.block_bytes(block_size)
        return [t.capacity_in_blocks(bb) for t in self.tiers]


# ----------------------------------------------------------------------------- parsing

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(value, key: str = "size", path: str | None = None) -> int:
    """``320000000``, ``"320 GB"``, ``"1.5TiB"`` -> bytes (SI for kB/MB/GB/TB, binary for KiB...)."""
    if isinstance(value, bool):
        raise ConfigError("expected a size", field=key, path=path, hint='e.g. 320000000000 or "320 GB"')
    if isinstance(value, (int, float)):
        if value < 0 or not math.isfinite(value):
            raise ConfigError(f"size must be >= 0, got {value}", field=key, path=path)
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"cannot read size {value!r}", field=key, path=path,
                          hint='use bytes or a number with a unit: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB')
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_bytes(n: float) -> str:
    """``kvctrace.formatting.format_bytes`` (kept here for the callers that import it from the config)."""
    from ..formatting import format_bytes as to_text
    return to_text(n)


def _check_type(value, typ, key, path):
    """Coerce/validate a TOML scalar against a dataclass field annotation (as a string)."""
    optional = "None" in typ
    if value is None:
        if optional:
            return None
        raise ConfigError("is required", field=key, path=path)
    if typ.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", field=key, path=path)
        return value
    if typ.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {value!r}", field=key, path=path)
        return float(value)
    if typ.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}", field=key, path=path)
        return value
    if typ.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}", field=key, path=path)
        return value
    return value


def _build(cls, data, prefix: str, path, special=None):
    if not isinstance(data, dict):
        raise ConfigError("expected a table", field=prefix or None, path=path)
    special = special or {}
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        k = unknown[0]
        raise ConfigError(f"unknown key '{k}'", field=f"{prefix}{k}", path=path,
                          hint="valid keys: " + ", ".join(known))
    kwargs = {}
    for name, f in known.items():
        if name not in data:
            continue
        key = f"{prefix}{name}"
        if name in special:
            kwargs[name] = special[name](data[name], key)
        else:
            kwargs[name] = _check_type(data[name], str(f.type), key, path)
    missing = [n for n, f in known.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError("is required", field=f"{prefix}{missing[0]}", path=path)
    return cls(**kwargs)


def config_from_dict(data: dict, path: str | None = None) -> ReplayConfig:
    """Build and validate a ReplayConfig from parsed TOML (errors name the TOML key)."""
    if not isinstance(data, dict):
        raise ConfigError("expected a TOML table at the top level", path=path)
    if "tiers" not in data:
        raise ConfigError("is required (at least one [[tiers]] table)", field="tiers", path=path)

    def tiers(value, key):
        if not isinstance(value, list) or not value:
            raise ConfigError("expected at least one [[tiers]] table", field=key, path=path)
        out = []
        for i, t in enumerate(value):
            sizes = {"capacity_bytes": lambda v, k: parse_bytes(v, k, path)}
            out.append(_build(TierConfig, t, f"tiers[{i}].", path, sizes))
        return tuple(out)

    special = {
        "tiers": tiers,
        "index": lambda v, k: _build(IndexConfig, v, "index.", path),
        "model": lambda v, k: _build(ModelConfig, v, "model.", path),
        "gpu": lambda v, k: _build(GPUConfig, v, "gpu.", path),
        "prices": lambda v, k: _build(PricesConfig, v, "prices.", path,
                                      {"gb_hour": lambda t, key: _tier_prices(t, key, path)}),
    }
    cfg = _build(ReplayConfig, data, "", path, special)
    validate(cfg, path)
    return cfg


def _tier_prices(table, key: str, path) -> tuple[tuple[str, float], ...]:
    """``[prices.gb_hour]`` (tier name -> $ per GB-hour) as a tuple of pairs, in table order."""
    if not isinstance(table, dict):
        raise ConfigError("expected a table of tier name = $ per GB-hour", field=key, path=path,
                          hint='e.g. [prices.gb_hour] with dram = 0.004')
    return tuple((name, _check_type(value, "float", f"{key}.{name}", path)) for name, value in table.items())


def validate(cfg: ReplayConfig, path: str | None = None) -> ReplayConfig:
    """Check values (names, ranges); raise ConfigError naming the TOML key."""
    from .cost import INDEX_MODELS

    def bad(key, msg, hint=None):
        raise ConfigError(msg, field=key, path=path, hint=hint)

    if not cfg.tiers:
        bad("tiers", "expected at least one tier")
    if len(cfg.tiers) > MAX_TIERS:
        bad("tiers", f"at most {MAX_TIERS} tiers, got {len(cfg.tiers)}")
    names = set()
    for i, t in enumerate(cfg.tiers):
        k = f"tiers[{i}]."
        if not t.name:
            bad(k + "name", "must not be empty")
        if t.name in names:
            bad(k + "name", f"duplicate tier name '{t.name}'")
        names.add(t.name)
        if t.policy not in policies.names():
            raise UnknownNameError(f"unknown policy '{t.policy}'", field=k + "policy", path=path,
                                   hint="valid policies: " + ", ".join(policies.names()))
        if (t.capacity_blocks is None) == (t.capacity_bytes is None):
            bad(k + "capacity_blocks", "give exactly one of capacity_blocks and capacity_bytes")
        if t.capacity_blocks is not None and t.capacity_blocks < 0:
            bad(k + "capacity_blocks", f"must be >= 0, got {t.capacity_blocks}")
        if t.read_latency_us < 0:
            bad(k + "read_latency_us", "must be >= 0")
        if not t.read_bandwidth_gb_s > 0:
            bad(k + "read_bandwidth_gb_s", "must be > 0")
        if t.admit_min_accesses < 1:
            bad(k + "admit_min_accesses", "must be >= 1")
    if cfg.hierarchy not in HIERARCHY_MODES:
        bad("hierarchy", f"unknown mode '{cfg.hierarchy}'", "one of " + ", ".join(HIERARCHY_MODES))
    if cfg.overlap not in OVERLAP_MODES:
        bad("overlap", f"unknown mode '{cfg.overlap}'", "one of " + ", ".join(OVERLAP_MODES))
    if cfg.index.kind not in INDEX_MODELS:
        raise UnknownNameError(f"unknown index kind '{cfg.index.kind}'", field="index.kind", path=path,
                               hint="valid kinds: " + ", ".join(INDEX_MODELS))
    for name in ("rtt_us", "link_gbit_s"):
        v = getattr(cfg.index, name)
        if v is not None and not v > 0:
            bad(f"index.{name}", "must be > 0")
    if cfg.index.outstanding is not None and cfg.index.outstanding < 1:
        bad("index.outstanding", "must be >= 1")
    if cfg.index.uncached_levels is not None and cfg.index.uncached_levels < 0:
        bad("index.uncached_levels", "must be >= 0")
    m = cfg.model
    for name in ("layers", "kv_heads", "head_dim", "dtype_bytes", "d_model"):
        if getattr(m, name) < 1:
            bad(f"model.{name}", "must be >= 1")
    if not m.params > 0:
        bad("model.params", "must be > 0")
    if m.kv_bytes_per_token_override is not None and m.kv_bytes_per_token_override < 1:
        bad("model.kv_bytes_per_token_override", "must be >= 1")
    g = cfg.gpu
    if g.count < 1:
        bad("gpu.count", "must be >= 1")
    if not g.peak_tflops > 0:
        bad("gpu.peak_tflops", "must be > 0")
    if not 0 < g.mfu <= 1:
        bad("gpu.mfu", f"must be in (0, 1], got {g.mfu}")
    if not g.memory_gb > 0:
        bad("gpu.memory_gb", "must be > 0")
    validate_prices(cfg.prices, [t.name for t in cfg.tiers], path)
    return cfg


def load_config(path) -> ReplayConfig:
    """Read and validate a replay config TOML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config: {err.strerror}", path=str(p),
                          hint="pass an existing .toml file, or --preset NAME") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        line = getattr(err, "lineno", None)
        raise ConfigError(f"not valid TOML: {err}", path=str(p), line=line) from None
    return config_from_dict(data, path=str(p))


# ----------------------------------------------------------------------------- writing

def config_to_dict(cfg: ReplayConfig) -> dict:
    """Plain dict in TOML layout (None values left out), inverse of ``config_from_dict``."""
    def clean(obj):
        return {f.name: getattr(obj, f.name) for f in fields(obj)
                if getattr(obj, f.name) is not None and not dataclasses.is_dataclass(getattr(obj, f.name))
                and not isinstance(getattr(obj, f.name), tuple)}
    out = clean(cfg)
    out["index"] = clean(cfg.index)
    out["model"] = clean(cfg.model)
    out["gpu"] = clean(cfg.gpu)
    out["prices"] = clean(cfg.prices)
    if cfg.prices.gb_hour:
        out["prices"]["gb_hour"] = dict(cfg.prices.gb_hour)
    out["tiers"] = [clean(t) for t in cfg.tiers]
    return out


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{s}"'


def _toml_key(name: str) -> str:
    """A TOML key: bare when it can be, else quoted (tier names are free text)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_value(name)


def config_to_toml(cfg: ReplayConfig, header: str | None = None) -> str:
    """TOML text for a config; ``header`` lines become comments at the top."""
    d = config_to_dict(cfg)
    lines = [f"# {h}" for h in (header or "").splitlines()]
    for k, v in d.items():
        if not isinstance(v, (dict, list)):
            lines.append(f"{k} = {_toml_value(v)}")
    for table in ("index", "model", "gpu", "prices"):
        lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in d[table].items()
                                        if not isinstance(v, dict)]
    if "gb_hour" in d["prices"]:
        lines += ["", "[prices.gb_hour]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d["prices"]["gb_hour"].items()]
    for t in d["tiers"]:
        lines += ["", "[[tiers]]"] + [f"{k} = {_toml_value(v)}" for k, v in t.items()]
    return "\n".join(lines) + "\n"


def save_config(cfg: ReplayConfig, path, header: str | None = None) -> Path:
    """Write ``cfg`` as TOML to ``path`` (explicit call; nothing else writes files)."""
    p = Path(path)
    p.write_text(config_to_toml(cfg, header), encoding="utf-8")
    return p


# ----------------------------------------------------------------------------- presets

def preset_names() -> list[str]:
    folder = resources.files("kvctrace.replay") / "presets"
    return sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".toml"))


def load_preset(name: str) -> ReplayConfig:
    """A shipped preset by name (``h100-llama3-70b``, ``h100-llama3-8b``)."""
    names = preset_names()
    if name not in names:
        raise UnknownNameError(f"unknown preset '{name}'", field="preset",
                               hint="valid presets: " + ", ".join(names))
    res = resources.files("kvctrace.replay") / "presets" / f"{name}.toml"
    data = tomllib.loads(res.read_text(encoding="utf-8"))
    return config_from_dict(data, path=f"preset {name}")


def one_tier(base: ReplayConfig, policy: str | None = None, capacity_blocks: int | None = None) -> ReplayConfig:
    """The one-tier config of ``kvctrace replay --policy --capacity-blocks``: ``base``'s top
    tier with the given policy/capacity, and everything else (index, model, GPU) from ``base``."""
    top = base.tiers[0]
    if policy is not None:
        top = replace(top, policy=policy)
    if capacity_blocks is not None:
        top = replace(top, capacity_blocks=int(capacity_blocks), capacity_bytes=None)
    size = (f"{top.capacity_blocks}-blocks" if top.capacity_blocks is not None
            else format_bytes(top.capacity_bytes).replace(" ", ""))        # lru-48GB, lru-1000-blocks
    prices = replace(base.prices, gb_hour=tuple((n, v) for n, v in base.prices.gb_hour if n == top.name))
    return validate(replace(base, tiers=(top,), prices=prices, name=f"{top.policy}-{size}"))


# Tiers whose names say they live in GPU memory (the presets' "hbm"): their size is checked
# against the GPUs' memory.
GPU_TIER_PREFIXES = ("hbm", "gpu", "vram")


def gpu_memory_warnings(cfg: ReplayConfig, block_size: int) -> list[str]:
    """One sentence per GPU-memory tier (named hbm*, gpu*, vram*) that holds more KV cache
    than the GPUs have memory (``gpu.count`` x ``gpu.memory_gb``): such a replay models a
    cache no GPU has."""
    block_bytes = cfg.block_bytes(block_size)
    gpu_bytes = cfg.gpu.count * cfg.gpu.memory_gb * 1e9
    lines = []
    for tier in cfg.tiers:
        size = tier.capacity_in_blocks(block_bytes) * block_bytes
        if tier.name.lower().startswith(GPU_TIER_PREFIXES) and size > gpu_bytes:
            lines.append(f"tier '{tier.name}' holds {tier.capacity_in_blocks(block_bytes):,} blocks = "
                         f"{format_bytes(size)} of KV cache, more than the GPU memory ({cfg.gpu.count} x "
                         f"{cfg.gpu.name}, {format_bytes(gpu_bytes)}); at {block_size} tokens per block "
                         f"and {format_bytes(block_bytes)} per block, {int(gpu_bytes // block_bytes):,} blocks fill it")
    return lines


def field_help(cls) -> dict[str, str]:
    """Field name -> help text (for docs and `--help` tables)."""
    return {f.name: f.metadata.get("help", "") for f in fields(cls)}
