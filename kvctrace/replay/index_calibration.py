"""Fit the Redis index cost model to ``bench-index`` measurements, and put measured next to
modelled (docs/index-bench.md).

The Redis models of ``cost`` price one op as ``rtt_us + keys x per_key_us`` (``redis-get``: a
GET, keys = 1; ``redis-mget``: one MGET of ``keys`` keys). The fit uses the lookups of the
``get`` and ``mget`` designs, the ops those models describe (``zset`` range queries are not
modelled). The ops are grouped by keys per op (adjacent counts merged until a group holds at
least ``MIN_GROUP_OPS`` ops); a least-squares line runs through each group's (median keys,
median latency), weighted by its op count. The model is a typical, not a tail, cost: medians
keep slow outliers (a loaded machine, a page fault) from moving it. A negative slope is fitted
as 0 (a flat line through the weighted mean); with a single group (e.g. no range lookups) the
slope cannot be fitted and stays the model's default.

The calibration file also keeps what was measured (``measured_rows``: per design and op type,
the op count, p50/p99 latency and p50/p99 keys per op), so ``calibration_comparison`` can put
the measurements next to the fitted and the published models later (the report does, given
``--calibration``): every model prices an op as an affine function of its keys, so a
model's quantiles over the measured ops are its cost at the keys' quantiles.

``model_comparison`` gives, per design and op type, the measured p50/p99 next to the model's,
where the model's are quantiles of its per-op cost over the same ops (design ``get`` against
``redis-get``, ``mget`` and ``zset`` against ``redis-mget``; an insert round trip costs
``insert_rtts`` round trips per key for ``redis-get`` and one round trip per batch for
``redis-mget``, the models having no per-key write cost).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import KvctraceError
from . import cost
from .index_bench import IndexBenchResult
from .index_ops import OP_NAMES

FIT_DESIGNS = ("get", "mget")
LOOKUPS = ("point_lookups", "range_lookups")
MODEL_OF_DESIGN = {"get": "redis-get", "mget": "redis-mget", "zset": "redis-mget"}
# ops behind each fitted point: a median of a handful of ops at a large keys count would be
# one noisy sample with the most leverage on the slope
MIN_GROUP_OPS = 20


def _key_groups(counts: pl.DataFrame) -> dict:
    """keys-per-op value -> group: adjacent values merged until each group holds at least
    MIN_GROUP_OPS ops (a short last group joins the one before)."""
    group, filled, out = 0, 0, {}
    for keys, n in counts.iter_rows():
        if filled >= MIN_GROUP_OPS:
            group, filled = group + 1, 0
        out[keys] = group
        filled += n
    if filled < MIN_GROUP_OPS and group > 0:
        out = {k: min(g, group - 1) for k, g in out.items()}
    return out


def _lookup_medians(result: IndexBenchResult) -> pl.DataFrame:
    """Per group of keys-per-op values: median keys, median latency, op count (medians of
    both: a cost linear in keys maps one onto the other)."""
    frames = [r.trips.filter(pl.col("op").is_in(LOOKUPS)) for r in result.runs if r.design in FIT_DESIGNS]
    if not frames or not sum(f.height for f in frames):
        raise KvctraceError("--calibrate needs lookups of the get or mget design",
                            field="--calibrate", hint="run with --design get and/or --design mget")
    ops = pl.concat(frames).select("keys", "latency_us")
    groups = _key_groups(ops.group_by("keys").agg(n=pl.len()).sort("keys"))
    return (ops.with_columns(group=pl.col("keys").replace_strict(groups, return_dtype=pl.Int64))
            .group_by("group").agg(keys=pl.col("keys").median(), median_us=pl.col("latency_us").median(), n=pl.len())
            .sort("group"))


def fit_redis(result: IndexBenchResult) -> cost.RedisCalibration:
    """The fitted ``rtt_us`` and ``per_key_us`` with their provenance (module docstring)."""
    g = _lookup_medians(result)
    k = g["keys"].to_numpy().astype(np.float64)
    m = g["median_us"].to_numpy()
    n = g["n"].to_numpy().astype(np.float64)
    slope = cost.per_key_us(cost.INDEX_MODELS["redis-mget"])
    if k.shape[0] >= 2:
        # polyfit squares w * residual: sqrt(n) weighs each median by its op count
        slope, _ = np.polyfit(k, m, 1, w=np.sqrt(n))
        slope = max(float(slope), 0.0)
    rtt = float(np.average(m - slope * k, weights=n))
    provenance = {
        "server_version": result.server_version,
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "trace": result.trace, "requests": result.n_requests, "clients": result.clients,
        "designs": [r.design for r in result.runs if r.design in FIT_DESIGNS],
        "n_ops": int(n.sum()), "fit_points": int(k.shape[0]), "url": result.url,
    }
    return cost.RedisCalibration(max(rtt, 0.001), slope, provenance)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def calibration_toml(cal: cost.RedisCalibration) -> str:
    lines = ["# Redis index cost model fitted by kvctrace bench-index --calibrate.",
             "# One Redis op costs rtt_us + keys x per_key_us; use with",
             "# kvctrace replay|recommend|report TRACE --calibration THIS_FILE",
             "", "[redis]", f"rtt_us = {cal.rtt_us!r}", f"per_key_us = {cal.per_key_us!r}", "", "[provenance]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in cal.provenance.items()]
    for row in cal.measured:
        lines += ["", "[[measured]]  # what the run measured: latency and keys per op quantiles"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in row.items()]
    return "\n".join(lines) + "\n"


def measured_rows(result: IndexBenchResult) -> tuple[dict, ...]:
    """Per design and op type with ops: n, p50_us, p99_us, keys_p50, keys_p99."""
    rows = []
    for run in result.runs:
        for op in OP_NAMES:
            ops = run.trips.filter(pl.col("op") == op)
            if not ops.height:
                continue
            lat = np.percentile(ops["latency_us"].to_numpy(), [50, 99])
            keys = np.percentile(ops["keys"].to_numpy().astype(np.float64), [50, 99])
            rows.append({"design": run.design, "op": op, "n": ops.height, "p50_us": round(float(lat[0]), 3),
                         "p99_us": round(float(lat[1]), 3), "keys_p50": float(keys[0]), "keys_p99": float(keys[1])})
    return tuple(rows)


def write_calibration(result: IndexBenchResult, path) -> tuple[cost.RedisCalibration, Path]:
    """Fit and write the calibration TOML (``cost.load_calibration`` reads it back), with what
    was measured (``measured_rows``)."""
    cal = dataclasses.replace(fit_redis(result), measured=measured_rows(result))
    p = Path(path)
    p.write_text(calibration_toml(cal), encoding="utf-8")
    return cal, p


def _modelled_us(model: cost.IndexModel, op: str, keys: np.ndarray) -> np.ndarray:
    if op == "inserts":
        per_trip = model.rtt_us if model.batch else model.insert_rtts * model.rtt_us
        return np.full(keys.shape[0], per_trip)
    return model.point_rtts * model.rtt_us + keys * cost.per_key_us(model)


def calibration_comparison(cal: cost.RedisCalibration) -> list[dict]:
    """Rows {design, op, model, n, measured_p50_us, measured_p99_us, fitted_p50_us,
    fitted_p99_us, published_p50_us, published_p99_us}: the measurements the calibration keeps
    next to the fitted model's and the published model's (``cost.DEFAULT_INDEX_MODELS``)
    quantiles over the same ops (module docstring)."""
    fitted = cost.calibrated_models(cal)
    rows = []
    for m in cal.measured:
        kind = MODEL_OF_DESIGN.get(m["design"])
        if kind is None:
            continue
        keys = np.array([m["keys_p50"], m["keys_p99"]])
        fit = _modelled_us(fitted[kind], m["op"], keys)
        published = _modelled_us(cost.DEFAULT_INDEX_MODELS[kind], m["op"], keys)
        rows.append({"design": m["design"], "op": m["op"], "model": kind, "n": m["n"],
                     "measured_p50_us": m["p50_us"], "measured_p99_us": m["p99_us"],
                     "fitted_p50_us": round(float(fit[0]), 3), "fitted_p99_us": round(float(fit[1]), 3),
                     "published_p50_us": round(float(published[0]), 3),
                     "published_p99_us": round(float(published[1]), 3)})
    return rows


def model_comparison(result: IndexBenchResult, models: dict | None = None) -> list[dict]:
    """Rows {design, op, model, n, measured_p50_us, measured_p99_us, modelled_p50_us,
    modelled_p99_us} (``models``: default the current ``cost.INDEX_MODELS``)."""
    models = models or cost.INDEX_MODELS
    rows = []
    for run in result.runs:
        model = models[MODEL_OF_DESIGN[run.design]]
        for op in OP_NAMES:
            ops = run.trips.filter(pl.col("op") == op)
            if not ops.height:
                continue
            measured = np.percentile(ops["latency_us"].to_numpy(), [50, 99])
            modelled = np.percentile(_modelled_us(model, op, ops["keys"].to_numpy()), [50, 99])
            rows.append({"design": run.design, "op": op, "model": model.kind, "n": ops.height,
                         "measured_p50_us": round(float(measured[0]), 3),
                         "measured_p99_us": round(float(measured[1]), 3),
                         "modelled_p50_us": round(float(modelled[0]), 3),
                         "modelled_p99_us": round(float(modelled[1]), 3)})
    return rows
