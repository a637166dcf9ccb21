"""Lengths-only traces: a timestamp and token counts per request, no block ids (for example
the Azure LLM inference 2023 CSVs ``TIMESTAMP,ContextTokens,GeneratedTokens`` whose
timestamps are wall-clock text such as ``2023-11-16 18:17:03.9799600``, or BurstGPT's
``Timestamp,...,Request tokens,Response tokens``).

Field names are matched case-insensitively against common spellings. Numeric timestamps are
seconds; text timestamps are ISO-like date-times (naive ones are taken as UTC)."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import polars as pl

from ..errors import TraceFormatError
from .common import BadLine, Columns, get_int, get_number, require

NAME = "lengths"
DEFAULT_BLOCK_SIZE = 16
SIGNATURE = "a timestamp and token counts"
CSV = True
TS_NAMES = ("timestamp", "ts", "time", "arrival_time", "arrival_timestamp", "created", "created_at")
INPUT_NAMES = ("input_length", "contexttokens", "context_tokens", "input_tokens", "prompt_tokens",
               "prompt_length", "input_len", "num_prompt_tokens", "request tokens", "request_tokens")
OUTPUT_NAMES = ("output_length", "generatedtokens", "generated_tokens", "output_tokens",
                "completion_tokens", "output_len", "num_generated_tokens", "response tokens", "response_tokens")


def _pick(keys, names):
    lower = {k.lower(): k for k in keys}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def matches(keys) -> bool:
    return _pick(keys, TS_NAMES) is not None and _pick(keys, INPUT_NAMES) is not None


def options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False) -> dict:
    """``text_cells`` (a CSV): integers and timestamps arrive as text and are parsed from it."""
    keys = list(first_record)
    ts_name = _pick(keys, TS_NAMES)
    in_name = _pick(keys, INPUT_NAMES)
    if ts_name is None or in_name is None:
        raise TraceFormatError(
            f"a lengths trace needs a timestamp and an input-length column; found {', '.join(keys)}",
            field="timestamp" if ts_name is None else "input_length",
            hint=f"name them one of {', '.join(TS_NAMES)} and {', '.join(INPUT_NAMES)}")
    ts_text = text_cells or isinstance(first_record.get(ts_name), str)
    return {"block_size": block_size or DEFAULT_BLOCK_SIZE, "ts": ts_name, "input": in_name,
            "output": _pick(keys, OUTPUT_NAMES), "ts_text": ts_text, "text": text_cells}


def schema(opts: dict) -> dict:
    out = {opts["ts"]: pl.String if opts["ts_text"] else pl.Float64, opts["input"]: pl.Int64}
    if opts["output"]:
        out[opts["output"]] = pl.Int64
    return out


def _ts_seconds(series: pl.Series) -> np.ndarray | None:
    """Numeric text as seconds, else date-times as seconds from the earliest (ns precision)."""
    if series.dtype != pl.String:
        return series.cast(pl.Float64).to_numpy()
    try:
        return series.str.strip_chars().cast(pl.Float64, strict=True).to_numpy()
    except pl.exceptions.PolarsError:
        pass
    try:
        dt = series.str.strip_chars().str.to_datetime(strict=True, time_unit="ns")
    except pl.exceptions.PolarsError:
        return None
    if dt.dtype.time_zone is not None:  # type: ignore[union-attr]
        dt = dt.dt.convert_time_zone("UTC")
    ns = dt.dt.epoch("ns").to_numpy()
    return (ns - ns.min()) / 1e9 if ns.shape[0] else ns.astype(np.float64)


def from_frame(df: pl.DataFrame, line_no: np.ndarray, opts: dict) -> Columns | None:
    if any(df[c].null_count() for c in (opts["ts"], opts["input"])):
        return None
    ts = _ts_seconds(df[opts["ts"]])
    if ts is None or not np.isfinite(ts).all():
        return None
    input_len = df[opts["input"]].to_numpy()
    output_len = df[opts["output"]].fill_null(0).to_numpy() if opts["output"] else np.zeros_like(input_len)
    if (input_len < 0).any() or (output_len < 0).any():
        return None
    return Columns(format=NAME, block_size=opts["block_size"], ts=ts, input_len=input_len,
                   output_len=output_len, line_no=line_no)


def _parse_ts(value, name: str) -> float:
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pass
        else:
            if not math.isfinite(seconds):
                raise BadLine(f"field '{name}' is not a finite number: {value!r:.40}", name,
                              "timestamps must be finite seconds or date-times")
            return seconds
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise BadLine(f"field '{name}' is neither a number nor a date-time: {value!r:.40}", name,
                          "use seconds or an ISO date-time such as 2023-11-16 18:17:03.97") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return get_number({name: value}, name)


def _text_int(rec: dict, name: str, optional: bool = False) -> int:
    """CSV cells are text: an integer cell is digits (a sign allowed, then checked)."""
    value = rec.get(name)
    if optional and (value is None or value == ""):
        return 0
    value = require(rec, name)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            raise BadLine(f"field '{name}' should be an integer, got {text!r:.40}", name,
                          f"write '{name}' as a whole number of tokens") from None
    return get_int({name: value}, name)


def parse_record(rec: dict, opts: dict) -> tuple:
    ts = _parse_ts(require(rec, opts["ts"]), opts["ts"])
    if opts["text"]:
        input_len = _text_int(rec, opts["input"])
        output_len = _text_int(rec, opts["output"], optional=True) if opts["output"] else 0
    else:
        input_len = get_int(rec, opts["input"])
        output_len = get_int(rec, opts["output"], optional=True) if opts["output"] else 0
    return ts, input_len, output_len


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    ts, input_len, output_len = zip(*rows) if rows else ((), (), ())
    ts = np.array(ts, np.float64)
    if ts.shape[0]:
        ts = ts - ts.min()  # epoch seconds lose precision as float64; keep them small
    return Columns(format=NAME, block_size=opts["block_size"], ts=ts,
                   input_len=np.array(input_len, np.int64), output_len=np.array(output_len, np.int64),
                   line_no=line_no)
