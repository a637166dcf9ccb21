"""Containers: how a trace file's records reach a reader (``common.Reader``).

JSON lines go through a strict Numba type scan that reads the typed columns as it goes
(``kernels/jsonscan.py``; DuckDB's ``read_json`` reads the values it declines); a JSON array
and Parquet through per-record or polars columns; CSV through polars with strict casts (only
for readers whose records are flat: ``Reader.CSV``).
gzip/zstd compression, byte-order marks and truncated streams are handled by ``source.py``
before. Each container falls back to the per-record path only when the fast path fails or
finds a bad row (with ``--skip-bad-lines``, only for the lines the scan flags), so errors
always name the exact line and field. A reader without a columnar path (``schema`` empty) has
every record parsed.

Readers whose records are whole documents spanning lines (kv-cache-tester conversations) also
read files and folders themselves: they define ``sniff(src)`` and ``read_path(...)``
(``registry.document_readers``); a folder is always read by one. Traces of separate
conversations (``Columns.conversation``) are then placed on one time line (``sessions.py``)."""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ..errors import TraceFormatError
from ..kernels import jsonscan
from ..memory import DUCKDB_CONFIG
from ..sql import load_query
from .common import TEXT_INT_PATTERN, TEXT_NUMBER_PATTERN, TEXT_SPACE, BadLine, Columns, check_block_size, text_matches
from .parquet import check_parquet_types, parquet_frame
from .registry import READERS, choose_reader, csv_formats, document_readers
from .sessions import place_sessions
from .source import Source, open_source
from .strict_json import checked_record, json_object, may_hold_constants, strict_json


def _bad(src: Source, line: int, err: BadLine) -> TraceFormatError:
    line += src.line_base  # a chunk of a streamed file numbers its lines from 1
    if src.unit != "line":  # JSON arrays and Parquet: say which record/row, not a text line
        return TraceFormatError(f"{src.unit} {line}: {err.reason}", path=str(src.path), field=err.field,
                                hint=err.hint)
    return TraceFormatError(err.reason, path=str(src.path), line=line, field=err.field, hint=err.hint)


def blank(line: bytes) -> bool:
    """A line of JSON whitespace only (space, tab, CR), skipped by every reader."""
    return not line.strip(b" \t\r")


def _accepted(src: Source, items, parse, skip_bad_lines: bool):
    """(number, parsed record) of the (number, raw) ``items`` that ``parse`` accepts, in order;
    without --skip-bad-lines the first it refuses is the file's error."""
    for i, raw in items:
        try:
            rec = parse(raw)
        except BadLine as err:
            if not skip_bad_lines:
                raise _bad(src, i, err) from None
            continue
        yield i, rec


# With --skip-bad-lines, how many leading records may be tried for the trace's options.
OPTION_CANDIDATES = 1000


def _first_options(reader, src: Source, records, block_size, partial, skip_bad_lines, **kw) -> dict:
    """The reader's options from the trace's first record (``records``: (line, record) in file
    order). With --skip-bad-lines a record the reader cannot take its options from (a lengths
    record without a timestamp, or whose timestamp is neither a number nor a date-time) is a bad
    line like any other and sets nothing: the first usable one among the first
    ``OPTION_CANDIDATES`` does. Otherwise (or when none is usable) the first record's error is
    the file's."""
    records = iter(records)
    line, first = next(records)
    if skip_bad_lines:
        for _, rec in itertools.chain([(line, first)], itertools.islice(records, OPTION_CANDIDATES - 1)):
            try:
                return reader.options(rec, block_size, partial, **kw)
            except TraceFormatError:
                continue
    return _options(reader, src, line, first, block_size, partial, **kw)


def _options(reader, src: Source, line: int | None, first: dict, block_size, partial, **kw) -> dict:
    """The reader's options from the first record; its errors name this file and line."""
    try:
        return reader.options(first, block_size, partial, **kw)
    except TraceFormatError as err:
        err.path = err.path or str(src.path)
        if line is not None and src.unit != "line":  # a JSON array's first record, as _bad says it
            err.message = f"{src.unit} {line}: {err.message}"
        elif err.line is None:
            err.line = line
        raise


def _finish(cols: Columns | None, rows: list, line_nos: list, rejects: list, reader, opts, src: Source) -> Columns:
    if cols is None:
        cols = reader.from_rows(rows, np.array(line_nos, np.int64), opts)
    cols.rejects = list(src.pre_rejects) + rejects
    if src.chunk:  # one chunk of a streamed file: the stream checks the file as a whole
        return cols
    if cols.n_requests == 0:
        raise no_requests_error(src.path, cols.rejects)
    return cols


def no_requests_error(path, rejects: list) -> TraceFormatError:
    """The error of a file without one valid request (``rejects``: all its rejected lines)."""
    if not rejects:
        return TraceFormatError("no valid requests: the file holds no records", path=str(path),
                                hint="a CSV needs rows after its header; a JSON trace needs request objects")
    first = rejects[0]
    return TraceFormatError(f"no valid requests: {len(rejects):,} lines rejected; first reason (line {first[0]}): {first[2]}",
                            path=str(path), hint="check the format (--format) and block size (--block-size)")


def _slow(items, reader, opts, src: Source, skip_bad_lines: bool, *, parse) -> Columns:
    """Per-record path: ``items`` yields (line_no, raw bytes, record-or-bytes); a rejected
    record is kept as (line_no, raw bytes, reason)."""
    rows, line_nos, rejects = [], [], []
    for line_no, raw, item in items:
        try:
            rows.append(reader.parse_record(parse(item), opts))
            line_nos.append(line_no)
        except BadLine as err:
            if not skip_bad_lines:
                raise _bad(src, line_no, err) from None
            rejects.append((line_no, raw, err.reason))
    return _finish(None, rows, line_nos, rejects, reader, opts, src)


def _jsonl_lines(src: Source):
    for i, line in enumerate(src.lines(), 1):
        if not blank(line):
            yield i, line, line


_DUCK_TYPES = {pl.Int64: "BIGINT", pl.Float64: "DOUBLE", pl.String: "VARCHAR", pl.List(pl.Int64): "BIGINT[]"}
_SCAN_CLASSES = {pl.Int64: jsonscan.INT, pl.List(pl.Int64): jsonscan.INT_LIST, pl.Float64: jsonscan.NUMBER,
                 pl.String: jsonscan.LABEL, pl.Null: jsonscan.REFUSED}


def _duckdb_frame(src: Source, schema: dict, text: bytes | None = None) -> pl.DataFrame:
    """The records as typed columns via DuckDB's read_json: of the file itself, or of ``text``
    (or the decompressed text, or text without a byte-order mark) copied to a temporary file."""
    columns = {name: _DUCK_TYPES[dtype] for name, dtype in schema.items() if dtype != pl.Null}
    con = duckdb.connect(config=DUCKDB_CONFIG)
    try:
        if text is None and src.compression == "none" and not src.bom and not src.chunk:
            return pl.from_arrow(con.sql(load_query("ingest_read_jsonl"),
                                         params={"path": str(src.path), "columns": columns}).to_arrow_table())
        with tempfile.TemporaryDirectory(prefix="kvctrace-") as tmp:
            plain = Path(tmp) / "trace.jsonl"
            plain.write_bytes(src.data if text is None else text)
            return pl.from_arrow(con.sql(load_query("ingest_read_jsonl"),
                                         params={"path": str(plain), "columns": columns}).to_arrow_table())
    finally:
        # closing returns DuckDB's cached memory (the read's buffers) to the system at once
        con.close()


def _typed_frame(src: Source, schema: dict, columns: dict | None, text=None) -> pl.DataFrame:
    """The lines that passed the scan as the typed columns of ``schema``: the ``columns`` the
    scan read, or, when it declined a value (None), DuckDB's read of ``text`` (a callable giving
    those lines' bytes; default: the whole source)."""
    if columns is not None:
        return pl.DataFrame(columns)
    return _duckdb_frame(src, schema, None if text is None else text())


# With --skip-bad-lines, a file whose flagged lines are at most this share of its lines keeps
# the fast path for the rest; only the flagged lines are parsed one by one.
_FEW_BAD = 0.01


def _fast_without_flagged(src: Source, reader, opts, schema, line_no, ok, columns):
    """(Columns of the unflagged lines, rejects of the flagged ones), or None when a flagged
    line turns out valid or the rest still has a problem (then the per-record path decides)."""
    buf = np.frombuffer(src.data, np.uint8)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [buf.shape[0]]))
    flagged = line_no[~ok].tolist()
    rejects = []
    for number in flagged:
        text = src.data[starts[number - 1]:ends[number - 1]]
        try:
            reader.parse_record(json_object(text), opts)
            return None  # the strict scan flagged a line that is valid (e.g. an optional null)
        except BadLine as err:
            rejects.append((number, text, err.reason))

    def unflagged_text() -> bytes:  # for DuckDB, only when the scan declined a value
        pieces, prev = [], 0
        for number in flagged:
            pieces.append(src.data[prev:starts[number - 1]])
            prev = ends[number - 1] + 1
        return b"".join(pieces + [src.data[prev:]])

    good = line_no[ok]
    df = _typed_frame(src, schema, columns, unflagged_text)
    cols = reader.from_frame(df, good, opts) if df.height == good.shape[0] else None
    return None if cols is None else (cols, rejects)


def _read_jsonl(src: Source, fmt, block_size, partial, skip_bad_lines) -> Columns:
    reader, opts = jsonl_reader(src, fmt, block_size, partial, skip_bad_lines)
    return jsonl_columns(src, reader, opts, skip_bad_lines)


def jsonl_reader(src: Source, fmt, block_size, partial, skip_bad_lines) -> tuple:
    """(reader, its options) of a JSON-lines trace, from its first record."""
    lines = ((i, line) for i, line in src.iter_lines() if not blank(line))
    records = _accepted(src, lines, json_object, skip_bad_lines)
    first = next(records, None)
    if first is None:
        raise TraceFormatError("no line holds a JSON object: nothing to ingest", path=str(src.path),
                               hint="check that this is a JSON-lines trace")
    reader = choose_reader(fmt, first[1].keys(), src.path, first[0], src.settings)
    return reader, _first_options(reader, src, itertools.chain([first], records), block_size, partial,
                                  skip_bad_lines)


def jsonl_columns(src: Source, reader, opts, skip_bad_lines) -> Columns:
    """The records of JSON-lines text (a file, or one chunk of it) as ``reader``'s columns."""
    schema = reader.schema(opts)
    if not schema:  # no columnar path (nested or text records): every record is parsed
        return _slow(_jsonl_lines(src), reader, opts, src, skip_bad_lines, parse=json_object)
    line_no, ok, columns = jsonscan.read_jsonl(src.data, {k: _SCAN_CLASSES[t] for k, t in schema.items()})
    n_flagged = int(line_no.shape[0] - np.count_nonzero(ok))
    fast = None
    try:
        if n_flagged == 0:
            df = _typed_frame(src, schema, columns)
            cols = reader.from_frame(df, line_no, opts) if df.height == line_no.shape[0] else None
            fast = None if cols is None else (cols, [])
        elif skip_bad_lines and n_flagged <= _FEW_BAD * line_no.shape[0]:
            fast = _fast_without_flagged(src, reader, opts, schema, line_no, ok, columns)
    except Exception:  # any reader failure sends the file to the exact per-line path  # noqa: BLE001
        fast = None
    if fast is not None:
        return _finish(fast[0], [], [], fast[1], reader, opts, src)
    return _slow(_jsonl_lines(src), reader, opts, src, skip_bad_lines, parse=json_object)


def _read_records(src: Source, records: list, fmt, block_size, partial, skip_bad_lines,
                  constants: bool = False) -> Columns:
    """A JSON array or a Parquet table: records are numbered 1, 2, ... in file order (the
    rejects table's line_no is that number; its raw text is the record as JSON)."""
    src.unit = "row" if src.kind == "parquet" else "record"
    if not records:
        raise empty_array_error(src.path)
    reader, opts = records_reader(src, records, fmt, block_size, partial, skip_bad_lines, constants)
    return parsed_records(src, records, reader, opts, skip_bad_lines, constants)


def empty_array_error(path) -> TraceFormatError:
    return TraceFormatError("empty trace: no records", path=str(path), line=1, hint="the file holds no requests")


def records_reader(src: Source, records: list, fmt, block_size, partial, skip_bad_lines,
                   constants: bool = False) -> tuple:
    """(reader, its options) of parsed records (a JSON array's, numbered 1, 2, ...), from the
    first record (with --skip-bad-lines, the first usable of the first ``OPTION_CANDIDATES``
    accepted ones: ``_first_options``)."""
    first = records[0] if isinstance(records[0], dict) else {}
    reader = choose_reader(fmt, first.keys(), src.path, 1, src.settings)
    checked = _accepted(src, enumerate(records, 1), lambda rec: checked_record(rec, constants), skip_bad_lines)
    first = next(checked, None) or (1, first)  # every record is bad: the first one's options (or error)
    return reader, _first_options(reader, src, itertools.chain([first], checked), block_size, partial,
                                  skip_bad_lines)


def parsed_records(src: Source, records: list, reader, opts, skip_bad_lines, constants: bool = False) -> Columns:
    """Parsed records (numbered 1, 2, ... from ``src.line_base``) as ``reader``'s columns; a
    rejected one keeps its JSON text."""
    items = ((i, json.dumps(rec, default=str).encode(), rec) for i, rec in enumerate(records, 1))
    return _slow(items, reader, opts, src, skip_bad_lines, parse=lambda rec: checked_record(rec, constants))


def _read_json(src: Source, fmt, block_size, partial, skip_bad_lines) -> Columns:
    try:
        text = src.data.decode("utf-8")
    except UnicodeDecodeError:
        raise not_utf8_error(src.path) from None
    try:
        doc = strict_json(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # several objects, one per line: a JSON-lines file named .json
            return _read_jsonl(src, fmt, block_size, partial, skip_bad_lines)
        raise malformed_json_error(src.path, err.msg, err.lineno, err.colno) from None
    except BadLine as err:
        raise TraceFormatError(err.reason, path=str(src.path), hint=err.hint) from None
    if isinstance(doc, dict):
        return _read_jsonl(src, fmt, block_size, partial, skip_bad_lines)
    if not isinstance(doc, list):
        raise TraceFormatError(f"expected an array of request objects, got a JSON {type(doc).__name__}",
                               path=str(src.path), line=1, hint="a .json trace is one array of request objects")
    return _read_records(src, doc, fmt, block_size, partial, skip_bad_lines, may_hold_constants(text))


def not_utf8_error(path) -> TraceFormatError:
    return TraceFormatError("not UTF-8 text", path=str(path), hint="is this a trace file?")


def malformed_json_error(path, msg: str, line: int, column: int) -> TraceFormatError:
    """A .json trace's JSON error at ``line`` and ``column`` (characters) of the file."""
    return TraceFormatError(f"malformed JSON ({msg} at column {column})", path=str(path), line=line,
                            hint="a .json trace is one array of request objects")


def _cast(df: pl.DataFrame, schema: dict) -> pl.DataFrame:
    """Strict casts to the reader's schema. Text cells (a CSV) must match the integer or number
    syntax of ``common`` first (else ValueError: the per-record path names the cell)."""
    exprs = []
    for name, dtype in schema.items():
        if dtype == pl.Null:  # a field that must be absent (the JSON paths check it)
            continue
        if name not in df.columns:
            exprs.append(pl.lit(None, dtype).alias(name))
            continue
        col = pl.col(name)
        if df[name].dtype == pl.String and dtype != pl.String:
            pattern = TEXT_INT_PATTERN if dtype == pl.Int64 else TEXT_NUMBER_PATTERN
            if not text_matches(df[name], pattern):
                raise ValueError(f"column {name!r} holds a cell that is not a {dtype} text")
            col = col.str.strip_chars(TEXT_SPACE)
        exprs.append(col.cast(dtype, strict=True))
    return df.select(exprs)


def _read_parquet(src: Source, fmt, block_size, partial, skip_bad_lines) -> Columns:
    df, written = parquet_frame(src.path)
    reader, opts = parquet_reader(src, df, fmt, block_size, partial)
    return parquet_columns(src, df, written, reader, opts, skip_bad_lines)


def parquet_reader(src: Source, df: pl.DataFrame, fmt, block_size, partial) -> tuple:
    """(reader, its options) of a Parquet trace, from its first row ``df``."""
    src.unit = "row"
    reader = choose_reader(fmt, df.columns, src.path, 1, src.settings)
    return reader, _options(reader, src, None, df.row(0, named=True), block_size, partial)


def parquet_columns(src: Source, df: pl.DataFrame, written: dict, reader, opts, skip_bad_lines) -> Columns:
    """The rows of a Parquet table (a file, or a batch of its rows) as ``reader``'s columns."""
    schema = reader.schema(opts)
    if schema:
        check_parquet_types(df, written, schema, src.path)
        try:
            cols = reader.from_frame(_cast(df, schema), np.arange(1, df.height + 1, dtype=np.int64), opts)
        except (pl.exceptions.PolarsError, ValueError, OverflowError):
            cols = None
        if cols is not None:
            return _finish(cols, [], [], [], reader, opts, src)
    # no columnar path (every row is parsed), or a row the per-record path must diagnose
    return parsed_records(src, df.to_dicts(), reader, opts, skip_bad_lines)


def _csv_header(src: Source, header_line: int, header_raw: bytes) -> list[str]:
    try:
        header = next(csv.reader([header_raw.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error, StopIteration) as err:
        raise TraceFormatError(f"unreadable CSV header ({err})", path=str(src.path), line=header_line,
                               hint="the first line must name the columns") from None
    header = [h.strip() for h in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise TraceFormatError(f"column '{repeated[0]}' appears more than once in the header", path=str(src.path),
                               line=header_line, field=repeated[0], hint="name each column once")
    return header


def _read_csv(src: Source, fmt, block_size, partial, skip_bad_lines) -> Columns:
    reader, opts, header = csv_reader(src, fmt, block_size, partial, skip_bad_lines)
    return csv_columns(src, reader, opts, header, skip_bad_lines)


def _numbered(src: Source) -> list:
    return [(i, line) for i, line in enumerate(src.lines(), 1) if line.strip()]


def csv_reader(src: Source, fmt, block_size, partial, skip_bad_lines: bool) -> tuple:
    """(reader, its options, the header's column names) of a CSV trace, from its header and
    first row (``_first_options``)."""
    numbered = _numbered(src)
    header_line, header_raw = numbered[0]
    header = _csv_header(src, header_line, header_raw)
    reader = choose_reader(fmt, header, src.path, header_line, src.settings)
    if not reader.CSV:
        flat = csv_formats()
        raise TraceFormatError(f"CSV traces hold {', '.join(flat)} only; a {reader.NAME} trace needs JSON lines",
                               path=str(src.path), line=header_line,
                               hint=f"write the trace as .jsonl (block ids are lists), or use --format {' or '.join(flat)}")
    empty = dict.fromkeys(header, None)
    opts = _options(reader, src, header_line, empty, block_size, partial, text_cells=True)  # the header's errors

    def rows():
        """Well-formed rows (as many cells as the header); without --skip-bad-lines only the
        first row, if it is (a malformed one is its own error; the header sets the options)."""
        for line, raw in numbered[1:]:
            try:
                cells = next(csv.reader([raw.decode("utf-8")]))
            except (UnicodeDecodeError, csv.Error, StopIteration):
                cells = None
            if cells is not None and len(cells) == len(header):
                yield line, dict(zip(header, cells))
            if not skip_bad_lines:
                return
    records = rows()
    first = next(records, None)
    if first is not None:
        records = itertools.chain([first], records)
        opts = _first_options(reader, src, records, block_size, partial, skip_bad_lines, text_cells=True)
    return reader, opts, header


def csv_columns(src: Source, reader, opts, header: list, skip_bad_lines) -> Columns:
    """The rows of CSV text (a file, or a chunk of it after its header line) as ``reader``'s
    columns."""
    numbered = _numbered(src)
    line_no = np.array([i for i, _ in numbered[1:]], np.int64)
    cols = None
    if _cells_per_row_ok(src.data, numbered[1:], len(header)):
        try:
            df = pl.read_csv(io.BytesIO(src.data), infer_schema=False, has_header=True)
            df = df.rename({c: c.strip() for c in df.columns})
            if df.height == line_no.shape[0]:
                cols = reader.from_frame(_cast(df, reader.schema(opts)), line_no, opts)
        except (pl.exceptions.PolarsError, ValueError, OverflowError):
            cols = None
    if cols is not None:
        return _finish(cols, [], [], [], reader, opts, src)

    def parse(raw_line: bytes) -> dict:
        try:
            values = next(csv.reader([raw_line.decode("utf-8")]))
        except (UnicodeDecodeError, csv.Error, StopIteration) as err:
            raise BadLine(f"unreadable CSV line ({err})", None, "check the quoting and encoding") from None
        if len(values) != len(header):
            raise BadLine(f"expected {len(header)} columns ({','.join(header)}), got {len(values)}", None,
                          "every row needs one value per header column")
        return dict(zip(header, values))

    items = ((i, line, line) for i, line in numbered[1:])
    return _slow(items, reader, opts, src, skip_bad_lines, parse=parse)


def _cells_per_row_ok(data: bytes, rows: list, n_cells: int) -> bool:
    """Whether every row holds the header's number of cells, as the per-row path requires
    (polars pads a short row with nulls). Only text without quotes is checked by counting
    commas; quoted text goes to the per-row path."""
    return b'"' not in data and all(line.count(b",") == n_cells - 1 for _, line in rows)


def _document_reader(path: Path, src: Source | None, fmt: str | None):
    """The reader that reads ``path`` itself (a folder, or a file of its documents), or None."""
    documents = document_readers()
    if fmt is not None:
        reader = READERS.get(fmt)
        if src is None and reader not in documents:
            raise TraceFormatError(f"a folder is read as {' or '.join(r.NAME for r in documents)} "
                                   f"conversations, not as {fmt}", path=str(path),
                                   hint=f"pass one trace file, or --format {documents[0].NAME}")
        return reader if reader in documents else None
    if src is None:
        return documents[0]
    return next((reader for reader in documents if reader.sniff(src)), None)


def read_columns(path, *, format: str | None = None, block_size: int | None = None,
                 partial_block: str | None = None, skip_bad_lines: bool = False, tokenizer=None,
                 chat_template=None, progress=None, session_start: str | None = None,
                 seed: int = 0) -> tuple[Columns, Source]:
    """Read any supported trace file (or a folder of kv-cache-tester conversations) into
    canonical columns (rows in file order).

    ``partial_block`` None is the format's own default (drop for text, else include);
    ``tokenizer``, ``chat_template`` and ``progress`` (a callable told how far tokenizing got)
    are the settings of text readers (docs/text-inputs.md); separate conversations are placed on
    one time line by ``session_start`` and ``seed`` (``sessions.place_sessions``)."""
    if partial_block not in (None, "include", "drop"):
        raise TraceFormatError(f"unknown --partial-block {partial_block!r}", hint="use include or drop")
    try:
        check_block_size(block_size)
    except BadLine as err:
        raise TraceFormatError(err.reason, hint=err.hint) from None
    path = Path(path)
    settings = {"tokenizer": tokenizer, "chat_template": chat_template, "partial_block": partial_block,
                "progress": progress, "path": str(path)}
    src = None if path.is_dir() else open_source(path, skip_bad_lines=skip_bad_lines)
    reader = _document_reader(path, src, format)
    if reader is not None:
        choose_reader(reader.NAME, (), path, 1, settings)  # text settings given to it: an error
        cols, src = reader.read_path(path, block_size, skip_bad_lines, src=src, detect=format is None)
    else:
        src.settings = settings
        read = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv, "parquet": _read_parquet}[src.kind]
        cols = read(src, format, block_size, partial_block or "include", skip_bad_lines)
    return place_sessions(cols, session_start, seed), src


def trace_sha256(path: Path) -> str:
    """sha256 of a trace file, or of a folder's trace files (its document reader's digest)."""
    if path.is_dir():
        return document_readers()[0].folder_sha256(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()
