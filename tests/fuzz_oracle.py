"""The fuzz tests' oracle: the rules of docs/data-model.md "Valid values", written again
independently of kvctrace/formats (naive Python, one record at a time), and the property
every reader must satisfy:

either the trace ingests, every stored value equals what the oracle reads from the input, and
every analysis runs to the end with strict JSON output; or opening it raises one KvctraceError
whose single line names the file and the first bad line (record, row) the oracle finds. Any
other exception (a traceback) fails the test, as does a trace the oracle rejects but kvctrace
ingests (a silently accepted value) or the reverse."""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from kvctrace import KvctraceError, open_trace
from kvctrace.analysis import analyze

from . import naive

MAX_TOKENS = 2 ** 30
MAX_SECONDS = 2.0 ** 53
M64 = (1 << 64) - 1
INT_TEXT = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")
NUMBER_TEXT = re.compile(r"[ \t]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*")


class Invalid(Exception):
    """The record breaks a rule; ``field`` is the field named (None: the whole record)."""

    def __init__(self, field=None):
        super().__init__(field)
        self.field = field


# ---- reading one record ------------------------------------------------------------------------

def json_record(text: bytes):
    """A JSON-lines record as kvctrace must read it: UTF-8, standard JSON (no NaN/Infinity),
    one object, no repeated key."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid() from None
    top = []

    def pairs(items):
        top.append(items)
        return dict(items)

    def constant(name):
        raise ValueError(name)
    try:
        rec = json.loads(decoded, object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, RecursionError):
        if "NaN" in decoded or "Infinity" in decoded:
            raise Invalid("?") from None  # names the field holding it, or none when malformed
        raise Invalid() from None
    if not isinstance(rec, dict):
        raise Invalid()
    keys = [k for k, _ in top[-1]]
    if len(set(keys)) != len(keys):
        raise Invalid(next(k for i, k in enumerate(keys) if k in keys[:i]))
    return rec


def present(rec: dict, name: str):
    if rec.get(name) is None:
        raise Invalid(name)
    return rec[name]


def integer(rec, name, lo, hi):
    v = present(rec, name)
    if type(v) is not int or not lo <= v <= hi:
        raise Invalid(name)
    return v


def count(rec, name, optional=False):
    if optional and rec.get(name) is None:
        return 0
    return integer(rec, name, 0, MAX_TOKENS)


def seconds(rec, name, unit):
    v = present(rec, name)
    if type(v) not in (int, float):
        raise Invalid(name)
    try:
        s = float(v)
    except OverflowError:
        raise Invalid(name) from None
    if not math.isfinite(s) or not abs(s) * unit <= MAX_SECONDS:
        raise Invalid(name)
    return s * unit


def id_list(rec, name, max_len=None):
    v = present(rec, name)
    if type(v) is not list or any(type(x) is not int or not -(1 << 63) <= x <= M64 for x in v):
        raise Invalid(name)
    if max_len is not None and len(v) > max_len:
        raise Invalid(name)
    return v


def label(rec, name, optional=False):
    if optional and rec.get(name) is None:
        return None
    v = present(rec, name)
    if type(v) not in (str, int):
        raise Invalid(name)
    if type(v) is str:
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(name) from None
    return str(v)


def blocks_for(rec, n_ids, length, bs):
    if n_ids != -(-length // bs):
        raise Invalid("hash_ids")


@dataclass
class Row:
    """What the store must hold for one request."""
    line: int
    ts: float            # seconds, before the shift to the first request
    input_len: int
    output_len: int
    ids: list = field(default_factory=list)   # raw ids mod 2**64 as stored in blocks.raw_hash
    session: str | None = None
    type: str | None = None
    turn: int | None = None
    chat: int | None = None
    parent: int | None = None


def mooncake(rec, opts) -> Row:
    ts = seconds(rec, "timestamp", 1e-3)
    n_in, n_out = count(rec, "input_length"), count(rec, "output_length")
    ids = id_list(rec, "hash_ids")
    blocks_for(rec, len(ids), n_in, opts["block_size"])
    return Row(0, ts, n_in, n_out, [x & M64 for x in ids])


def bailian(rec, opts) -> Row:
    chat = integer(rec, "chat_id", -(1 << 63), (1 << 63) - 1)
    parent = integer(rec, "parent_chat_id", -(1 << 63), (1 << 63) - 1)
    ts = seconds(rec, "timestamp", 1.0)
    n_in, n_out = count(rec, "input_length"), count(rec, "output_length")
    typ = label(rec, "type")
    turn = integer(rec, "turn", -(1 << 63), (1 << 63) - 1)
    ids = id_list(rec, "hash_ids")
    blocks_for(rec, len(ids), n_in, opts["block_size"])
    return Row(0, ts, n_in, n_out, naive.naive_rechain([ids])[0], type=typ, turn=turn, chat=chat, parent=parent)


def tokens(rec, opts) -> Row:
    ts = seconds(rec, "timestamp", 1.0)
    toks = id_list(rec, "token_ids", MAX_TOKENS)
    n_out = count(rec, "output_length", optional=True)
    session = label(rec, "session_id", optional=True)
    ids = naive.naive_hash_token_blocks([toks], opts["block_size"])[0]
    return Row(0, ts, len(toks), n_out, ids, session=session)


def lengths(rec, opts) -> Row:
    """JSON or CSV lengths records with numeric timestamps (``timestamp``, ``input_tokens``,
    optional ``output_tokens``); CSV cells are text."""
    text = opts.get("text", False)
    v = present(rec, "timestamp")
    if type(v) is str:
        if not NUMBER_TEXT.fullmatch(v):
            raise Invalid("timestamp")
        v = float(v.strip(" \t"))
    ts = seconds({"timestamp": v}, "timestamp", 1.0)

    def cell_count(name, optional=False):
        c = rec.get(name)
        if text and optional and c == "":
            return 0
        if text and type(c) is str:
            if not INT_TEXT.fullmatch(c):
                raise Invalid(name)
            c = int(c.strip(" \t"))
        return count({name: c}, name, optional)
    if not opts.get("has_output", True) and "output_tokens" in rec:
        raise Invalid("output_tokens")  # the first record sets the fields: it had none
    return Row(0, ts, cell_count("input_tokens"), cell_count("output_tokens", optional=True))


READ = {"mooncake": mooncake, "bailian": bailian, "tokens": tokens, "lengths": lengths}
BLOCK_SIZE = {"mooncake": 512, "bailian": 16, "tokens": 16, "lengths": 16}


# ---- a whole file ------------------------------------------------------------------------------

@dataclass
class Expected:
    """The oracle's verdict on a file: the rows it must ingest, or the first bad record."""
    rows: list
    bad: list                      # (number, field) of every bad record, in order
    error: str | None = None       # a file-level error: the whole file is refused

    def first_bad(self):
        return self.bad[0] if self.bad else None


def jsonl_lines(data: bytes) -> list:
    """(line number, bytes) of the non-blank lines (blank: spaces, tabs, CRs only)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(i, line) for i, line in enumerate(lines, 1) if line.strip(b" \t\r")]


def expect_records(records, fmt: str, opts: dict) -> Expected:
    """``records``: (number, parse-me callable) in file order."""
    rows, bad = [], []
    for number, parse in records:
        try:
            row = READ[fmt](parse(), opts)
        except Invalid as err:
            bad.append((number, err.field))
            continue
        row.line = number
        rows.append(row)
    return Expected(rows, bad)


OPTION_CANDIDATES = 1000  # records tried for the options with --skip-bad-lines (formats/containers.py)


def lengths_kind_error(rec: dict):
    """The field kvctrace names when a lengths record cannot set the trace's options (its kind:
    numbers or date-times), or None: both columns present (a missing one is named by its
    canonical name), and the timestamp null, a number, numeric text or a date-time."""
    if "timestamp" not in rec:
        return "timestamp"
    if "input_tokens" not in rec:
        return "input_length"
    v = rec["timestamp"]
    if v is None or type(v) in (int, float):
        return None
    if type(v) is str and (NUMBER_TEXT.fullmatch(v) or is_datetime(v)):
        return None
    return "timestamp"


def is_datetime(text: str) -> bool:
    try:
        return -(1 << 63) <= datetime_ns(text) < (1 << 63)
    except ValueError:
        return False


def options_record(records, fmt: str):
    """(number, record) the options come from: the first record, or for lengths the first that
    can set them (with --skip-bad-lines the others are bad records; without, a first record
    that cannot is the file's error). (None, {}) when there is none."""
    records = list(records)[:OPTION_CANDIDATES]
    if fmt == "lengths":
        usable = [(n, r) for n, r in records if lengths_kind_error(r) is None]
        if usable:
            return usable[0]
    return records[0] if records else (None, {})


def json_objects(lines) -> list:
    """(line number, record) of the lines that read as a JSON object."""
    out = []
    for n, line in lines:
        try:
            out.append((n, json_record(line)))
        except Invalid:
            continue
    return out


def name_first_record_field(expected: Expected, records, fmt: str) -> Expected:
    """Without --skip-bad-lines a lengths trace's first record that cannot set the options is
    refused by the options, which name a missing input column canonically."""
    if fmt == "lengths" and records and expected.bad and expected.bad[0][0] == records[0][0]:
        field_name = lengths_kind_error(records[0][1])
        if field_name is not None:
            expected.bad[0] = (records[0][0], field_name)
    return expected


def binary(data: bytes) -> bool:
    """The file-level rule of formats/source.py: a NUL, or mostly undecodable bytes, in the
    first 64 KiB (after a byte-order mark) make the file binary, not a trace with bad lines."""
    head = data[3:65539] if data.startswith(b"\xef\xbb\xbf") else data[:65536]
    return b"\x00" in head or head.decode("utf-8", errors="replace").count("\ufffd") > max(2, len(head) // 100)


def expect_jsonl(data: bytes, fmt: str, block_size=None) -> Expected:
    if binary(data):
        return Expected([], [], error="binary")
    lines = jsonl_lines(data)
    objects = json_objects(lines)
    opts = {"block_size": block_size or BLOCK_SIZE[fmt], "has_output": "output_tokens" in options_record(objects, fmt)[1]}
    expected = expect_records([(n, lambda line=line: json_record(line)) for n, line in lines], fmt, opts)
    return name_first_record_field(expected, objects, fmt)


def datetime_ns(text: str) -> int:
    """ISO date-time text (naive: UTC) as ns since the epoch, exact to 9 fractional digits."""
    from datetime import datetime, timezone
    moment = datetime.fromisoformat(text.strip(" \t"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    whole = moment.replace(microsecond=0)
    ns = int(whole.timestamp()) * 10 ** 9
    frac = re.search(r":[0-9]{2}[.,]([0-9]+)", text)
    return ns + (int(frac.group(1)[:9].ljust(9, "0")) if frac else moment.microsecond * 1000)


def expect_csv(data: bytes) -> Expected:
    """A lengths CSV with header timestamp,input_tokens[,output_tokens]; the first data row's
    timestamp sets the kind (numbers, or date-times), or with --skip-bad-lines the first that
    can (``options_record``; without, a first row that cannot is bad in either kind)."""
    if binary(data):
        return Expected([], [], error="binary")
    lines = jsonl_lines(data)
    try:
        header = [h.strip() for h in next(csv.reader([lines[0][1].decode("utf-8")]))]
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return Expected([], [], error="header")
    if len(set(header)) != len(header) or not {"timestamp", "input_tokens"} <= set(header):
        return Expected([], [], error="header")
    if not NUMBER_TEXT.fullmatch(_kind_setting_timestamp(lines[1:], header)):
        return _expect_csv_datetimes(lines, header)

    def row(line):
        try:
            values = next(csv.reader([line.decode("utf-8")]))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            raise Invalid() from None
        if len(values) != len(header):
            raise Invalid()
        return dict(zip(header, values))
    return expect_records([(n, lambda line=line: row(line)) for n, line in lines[1:]], "lengths",
                          {"block_size": 16, "text": True})


def _kind_setting_timestamp(lines, header) -> str:
    """The timestamp of the first well-formed data row that can set the trace's kind (numbers
    or date-times); "0" (numbers) when none can."""
    rows = []
    for n, line in lines:
        try:
            values = next(csv.reader([line.decode("utf-8")]))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            continue
        if len(values) == len(header):
            rows.append((n, dict(zip(header, values))))
    n, rec = options_record(rows, "lengths")
    return rec["timestamp"] if n is not None and lengths_kind_error(rec) is None else "0"


def _expect_csv_datetimes(lines, header) -> Expected:
    rows, bad = [], []
    for n, line in lines[1:]:
        try:
            values = next(csv.reader([line.decode("utf-8")]))
            if len(values) != len(header):
                raise Invalid()
            rec = dict(zip(header, values))
            if NUMBER_TEXT.fullmatch(rec["timestamp"]):
                raise Invalid("timestamp")
            try:
                ns = datetime_ns(rec["timestamp"])
            except ValueError:
                raise Invalid("timestamp") from None
            if not -(1 << 63) <= ns < (1 << 63):
                raise Invalid("timestamp")
            row = lengths(dict(rec, timestamp="0"), {"text": True})
        except (UnicodeDecodeError, csv.Error, StopIteration):
            bad.append((n, None))
            continue
        except Invalid as err:
            bad.append((n, err.field))
            continue
        row.line, row.ts = n, ns
        rows.append(row)
    if rows:  # seconds from the earliest, as the reader computes them
        low = min(r.ts for r in rows)
        for r in rows:
            r.ts = (r.ts - low) / 1e9
    return Expected(rows, bad)


class _Pairs(dict):
    repeated = None


def _pairs(items):
    out = _Pairs(items)
    keys = [k for k, _ in items]
    out.repeated = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    return out


class _NotJson:
    pass


def _holds(value, marker) -> bool:
    if value is marker:
        return True
    if isinstance(value, list):
        return any(_holds(v, marker) for v in value)
    if isinstance(value, dict):
        return any(_holds(v, marker) for v in value.values())
    return False


def expect_json_array(data: bytes, fmt: str) -> Expected:
    """A .json file holding one array of records (numbered 1, 2, ...)."""
    if binary(data):
        return Expected([], [], error="binary")
    nan = _NotJson()
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=lambda name: nan)
    except (ValueError, RecursionError):
        return Expected([], [], error="malformed")   # (also "Extra data": then read as JSON lines, all bad)
    if not isinstance(doc, list) or not doc:
        return Expected([], [], error="not an array")

    def record(rec):
        if not isinstance(rec, dict):
            raise Invalid()
        if rec.repeated is not None:
            raise Invalid(rec.repeated)
        bad = next((k for k, v in rec.items() if _holds(v, nan)), None)
        if bad is not None:
            raise Invalid(bad)
        return dict(rec)
    objects = []
    for i, rec in enumerate(doc, 1):
        try:
            objects.append((i, record(rec)))
        except Invalid:
            continue
    opts = {"block_size": BLOCK_SIZE[fmt], "has_output": "output_tokens" in options_record(objects, fmt)[1]}
    expected = expect_records([(i, lambda rec=rec: record(rec)) for i, rec in enumerate(doc, 1)], fmt, opts)
    return name_first_record_field(expected, objects, fmt)


def expect_parquet(table, fmt: str) -> Expected:
    """A Parquet table (pyarrow): column types first (the first field, in the reader's order,
    whose column cannot hold it refuses the file), then row by row."""
    import pyarrow as pa
    kinds = {"mooncake": [("timestamp", "number"), ("input_length", "integer"), ("output_length", "integer"),
                          ("hash_ids", "list")],
             "lengths": [("timestamp", "number"), ("input_tokens", "integer"), ("output_tokens", "integer")]}[fmt]
    for name, kind in kinds:
        if name not in table.column_names:
            continue
        t = table.schema.field(name).type
        ok = (pa.types.is_null(t) or (kind == "integer" and pa.types.is_integer(t))
              or (kind == "number" and (pa.types.is_integer(t) or pa.types.is_floating(t)))
              or (kind == "list" and pa.types.is_list(t) and (pa.types.is_integer(t.value_type)
                                                               or pa.types.is_null(t.value_type))))
        if not ok:
            return Expected([], [(None, name)], error=f"column {name}")
    opts = {"block_size": BLOCK_SIZE[fmt], "has_output": "output_tokens" in table.column_names}

    def row(rec):
        if any(isinstance(v, float) and not math.isfinite(v) for v in rec.values()):
            bad = next(k for k, v in rec.items() if isinstance(v, float) and not math.isfinite(v))
            raise Invalid(bad)
        return rec
    return expect_records([(i, lambda rec=rec: row(rec)) for i, rec in enumerate(table.to_pylist(), 1)], fmt, opts)


# ---- the property ------------------------------------------------------------------------------

def strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in JSON output")
    return json.loads(text, parse_constant=refuse)


def check(path, expected: Expected, *, skip_bad_lines=False, unit="line", run_analyses=True, **options):
    """Open ``path`` and hold kvctrace to the oracle's ``expected`` verdict."""
    first = expected.first_bad()
    must_fail = expected.error is not None or (first is not None and not skip_bad_lines) or not expected.rows
    try:
        tr = open_trace(path, skip_bad_lines=skip_bad_lines, **options)
    except KvctraceError as err:
        message = str(err)
        assert must_fail, f"refused a valid trace: {message}"
        assert "\n" not in message and str(path) in message, message
        if first is not None and not skip_bad_lines and expected.error is None:
            where = err.line if unit == "line" else int(re.search(rf"{unit} (\d+):", message).group(1))
            assert where == first[0], (message, first)
            if first[1] not in (None, "?"):
                assert err.field == first[1], (message, first)
        return None
    assert not must_fail, f"ingested an invalid trace (the oracle: {expected.error or first})"
    compare_store(tr, expected)
    if run_analyses:
        strict_json(analyze(tr).to_json())
        strict_json(json.dumps(tr.info(), allow_nan=False))
    return tr


def compare_store(tr, expected: Expected) -> None:
    rows = sorted(expected.rows, key=lambda r: (r.ts, r.line))
    req = tr.requests()
    assert req["line_no"].to_list() == [r.line for r in rows]
    ts = np.array([r.ts for r in rows]) - rows[0].ts
    assert np.array_equal(req["ts"].to_numpy(), ts), (req["ts"].to_list(), ts.tolist())
    assert req["input_len"].to_list() == [r.input_len for r in rows]
    assert req["output_len"].to_list() == [r.output_len for r in rows]
    if tr.format == "tokens":
        assert req["session_id"].to_list() == [r.session for r in rows]
    if tr.format == "bailian":
        assert req["type"].to_list() == [r.type for r in rows]
        assert req["turn"].to_list() == [r.turn for r in rows]
    if tr.has_block_ids:
        raw = np.array(tr.blocks_table()["raw_hash"].to_list(), dtype=object)
        stored = [raw[tr.blocks[tr.offsets[i]:tr.offsets[i + 1]]].tolist() for i in range(tr.n_requests)]
        assert stored == [r.ids for r in rows]
    rejected = tr.rejects()["line_no"].to_list()
    assert rejected == [n for n, _ in expected.bad], (rejected, expected.bad)
