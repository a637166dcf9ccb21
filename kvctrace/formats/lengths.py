"""Lengths-only traces: a timestamp and token counts per request, no block ids (for example
the Azure LLM inference 2023 CSVs ``TIMESTAMP,ContextTokens,GeneratedTokens`` whose
timestamps are wall-clock text such as ``2023-11-16 18:17:03.9799600``, or BurstGPT's
``Timestamp,...,Request tokens,Response tokens``).

Field names are matched case-insensitively against common spellings. Numeric timestamps are
seconds; text timestamps are ISO-like date-times (naive ones are taken as UTC)."""
from __future__ import annotations

import numpy as np
import polars as pl

from ..errors import TraceFormatError
from .common import (DATETIME_HINT, TEXT_NUMBER_PATTERN, TEXT_SPACE, BadLine, Columns, check_timestamp, counts_ok,
                     datetime_ns, get_count, get_timestamp, is_number_text, ns_to_seconds, require, text_int, text_matches,
                     text_number, timestamps_ok)

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
    """``text_cells`` (a CSV): integers and timestamps arrive as text and are parsed from it.
    The first record's timestamp sets the trace's kind: numbers (seconds, as numbers or
    numeric text) or date-times (text); every record must be of that kind."""
    keys = list(first_record)
    ts_name = _pick(keys, TS_NAMES)
    in_name = _pick(keys, INPUT_NAMES)
    if ts_name is None or in_name is None:
        raise TraceFormatError(
            f"a lengths trace needs a timestamp and an input-length column; found {', '.join(keys)}",
            field="timestamp" if ts_name is None else "input_length",
            hint=f"name them one of {', '.join(TS_NAMES)} and {', '.join(INPUT_NAMES)}")
    first_ts = first_record.get(ts_name)
    if first_ts is not None:
        _check_kind_setter(first_ts, ts_name)
    ts_text = text_cells or isinstance(first_ts, str)
    return {"block_size": block_size or DEFAULT_BLOCK_SIZE, "ts": ts_name, "input": in_name,
            "output": _pick(keys, OUTPUT_NAMES), "ts_text": ts_text, "text": text_cells,
            "datetime": isinstance(first_ts, str) and not is_number_text(first_ts)}


def _check_kind_setter(value, name: str) -> None:
    """The first record's timestamp sets the trace's kind, so it must be one: a number, numeric
    text or a date-time (with --skip-bad-lines a record whose is not is skipped for this)."""
    try:
        if isinstance(value, str):
            if not is_number_text(value):
                datetime_ns(value, name)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadLine(f"field '{name}' should be a number or a date-time, got {value!r:.40}", name,
                          DATETIME_HINT)
    except BadLine as err:
        raise TraceFormatError(f"{err.reason}; the first record's timestamp sets whether the trace's are "
                               "numbers or date-times", field=name, hint=err.hint) from None


def schema(opts: dict) -> dict:
    """The typed columns; when the first record has no output count, no record may have one
    (pl.Null: the field must be absent), so none is dropped unread."""
    out = {opts["ts"]: pl.String if opts["ts_text"] else pl.Float64, opts["input"]: pl.Int64}
    if opts["output"]:
        out[opts["output"]] = pl.Int64
    elif not opts["text"]:
        out |= dict.fromkeys(OUTPUT_NAMES, pl.Null)
    return out


def _ts_seconds(series: pl.Series, opts: dict) -> np.ndarray | None:
    """Seconds of a timestamp column (date-times: from the earliest, exact to the ns), or
    None when a value needs the per-record path's diagnosis."""
    if opts["datetime"]:
        if series.str.contains(TEXT_NUMBER_PATTERN).any():  # numbers among date-times: diagnosed per record
            return None
        text = series.str.strip_chars(TEXT_SPACE)
        try:
            ns = text.str.to_datetime(strict=True, time_unit="ns").dt.epoch("ns").to_numpy()
            us = text.str.to_datetime(strict=True, time_unit="us").dt.epoch("us").to_numpy()
        except pl.exceptions.PolarsError:
            return None
        # polars wraps a date-time outside 64-bit nanoseconds (1677 .. 2262) around silently:
        # its microseconds, which do not wrap, would then disagree
        if not (np.abs(ns // 1000 - us) <= 1).all():
            return None
        return ns_to_seconds(ns)
    if series.dtype == pl.String:
        if not text_matches(series, TEXT_NUMBER_PATTERN):
            return None
        series = series.str.strip_chars(TEXT_SPACE).cast(pl.Float64, strict=True)
    ts = series.to_numpy()
    return ts if timestamps_ok(ts) else None


def from_frame(df: pl.DataFrame, line_no: np.ndarray, opts: dict) -> Columns | None:
    if any(df[c].null_count() for c in (opts["ts"], opts["input"])):
        return None
    ts = _ts_seconds(df[opts["ts"]], opts)
    if ts is None:
        return None
    input_len = df[opts["input"]].to_numpy()
    output_len = df[opts["output"]].fill_null(0).to_numpy() if opts["output"] else np.zeros_like(input_len)
    if not counts_ok(input_len, output_len):
        return None
    return Columns(format=NAME, block_size=opts["block_size"], ts=ts, input_len=input_len,
                   output_len=output_len, line_no=line_no)


def _parse_ts(value, name: str, opts: dict):
    """Seconds (a number) or, in a date-time trace, integer nanoseconds since the epoch."""
    if opts["datetime"]:
        if not isinstance(value, str) or is_number_text(value):
            raise BadLine(f"field '{name}' should be a date-time like the first record's, got {value!r:.40}",
                          name, "a trace's timestamps are all date-times or all numbers (seconds)")
        return datetime_ns(value, name)
    if isinstance(value, str):
        if not is_number_text(value):
            datetime_ns(value, name)  # names the problem when it is no date-time either
            raise BadLine(f"field '{name}' should be a number like the first record's, got {value!r:.40}",
                          name, "a trace's timestamps are all numbers (seconds) or all date-times")
        return check_timestamp(text_number(value, name), name)
    return get_timestamp({name: value}, name)


def _count(rec: dict, name: str, opts: dict, optional: bool = False) -> int:
    """A token count; CSV cells are text (an empty optional cell is 0), JSON counts integers."""
    value = rec.get(name)
    if optional and (value is None or (opts["text"] and value == "")):
        return 0
    value = require(rec, name)
    if opts["text"] and isinstance(value, str):
        value = text_int(value, name)
    return get_count({name: value}, name)


def _no_output(rec: dict) -> None:
    for key in rec:
        if key.lower() in OUTPUT_NAMES:
            raise BadLine(f"field '{key}' is an output count, but the trace's first record has none", key,
                          "the first record sets a lengths trace's fields: give it the output count too")


def parse_record(rec: dict, opts: dict) -> tuple:
    ts = _parse_ts(require(rec, opts["ts"]), opts["ts"], opts)
    if not opts["output"]:  # after the timestamp: a record lacking both is told of the timestamp
        _no_output(rec)
    input_len = _count(rec, opts["input"], opts)
    output_len = _count(rec, opts["output"], opts, optional=True) if opts["output"] else 0
    return ts, input_len, output_len


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    ts, input_len, output_len = zip(*rows) if rows else ((), (), ())
    ts = ns_to_seconds(np.array(ts, np.int64)) if opts["datetime"] else np.array(ts, np.float64)
    return Columns(format=NAME, block_size=opts["block_size"], ts=ts,
                   input_len=np.array(input_len, np.int64), output_len=np.array(output_len, np.int64),
                   line_no=line_no)
