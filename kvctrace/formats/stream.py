"""Reading a trace file bigger than one chunk, a bounded chunk at a time (``--db`` ingests).

``stream_columns`` gives the file's records as a sequence of ``Columns``, one per chunk of
whole lines (JSON lines and CSV, read and decompressed a block at a time by
``source.TextStream``), per chunk of whole elements of a JSON array (``.json``: the array is
cut between its top-level elements by ``kernels/json_array.py``) or per batch of Parquet rows,
so no more than one chunk of the file is ever in memory. Each chunk goes through the same
container code as a whole file (``containers.jsonl_columns``, ``csv_columns``,
``parquet_columns``, ``parsed_records``) with the reader and options taken once from the
file's first record, so validation, messages and rejects are the same; line (record) numbers
count from the start of the file.

It returns None when the file is read whole instead (``containers.read_columns``): a file that
fits one chunk, a ``.json`` file that is not one array (JSON lines, one object), a folder or a
file of conversations (document readers), and traces whose readers keep more than block ids
per request: lengths-only traces (one small row per request) and token or text traces, whose
per-token ``tokens`` column and token-exact prefix (``store._prefix_columns``) need every
request's tokens at once."""
from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import TraceFormatError
from ..kernels.json_array import element_ends, new_state
from .common import BadLine, Columns, check_block_size
from . import containers
from .containers import (_document_reader, blank, csv_columns, csv_reader, empty_array_error, jsonl_columns,
                         jsonl_reader, malformed_json_error, not_utf8_error, parquet_columns, parquet_reader,
                         parsed_records, records_reader, trace_sha256)
from .parquet import _as_text
from .sessions import place_sessions
from .source import PARQUET_MAGIC, Source, TextStream, _kind_from_name
from .strict_json import checked_record, json_object, may_hold_constants, strict_json

PARQUET_ROWS = 1 << 18  # rows per Parquet batch (~8M accesses at 30 blocks a request)


@dataclass
class ChunkedRead:
    """A trace file being read chunk by chunk: ``chunks`` yields each chunk's ``Columns``
    (rows in file order, line numbers of the file, that chunk's rejects); ``pre_rejects``
    (a line lost to a truncated stream), ``sha256()`` and ``fraction()`` (share of the file
    read) are complete once ``chunks`` is exhausted."""
    path: Path
    compression: str
    chunks: Iterator[Columns]
    sha256: Callable[[], str]
    fraction: Callable[[], float]
    pre_rejects: list = field(default_factory=list)


def _shifted(cols: Columns, base: int, session_start, seed) -> Columns:
    """A chunk's columns with line numbers of the file (the chunk's are 1-based)."""
    cols.line_no = cols.line_no + base
    cols.rejects = [(line + base, raw, reason) for line, raw, reason in cols.rejects]
    return place_sessions(cols, session_start, seed)


# Readers of token ids, read whole: the store keeps their tokens (a per-token column) and the
# token-exact prefix of every request over all earlier ones (module doc).
TOKEN_FORMATS = ("tokens", "prompts")


def _streams(reader, cols: Columns) -> bool:
    """Whether chunks of this reader's columns can be ingested one by one (module doc)."""
    return reader.NAME not in TOKEN_FORMATS and cols.ids is not None and cols.conversation is None


def stream_columns(path, *, format: str | None = None, block_size: int | None = None,
                   partial_block: str | None = None, skip_bad_lines: bool = False, tokenizer=None,
                   chat_template=None, progress=None, session_start: str | None = None, seed: int = 0,
                   chunk_bytes: int = 0, parquet_rows: int = 0) -> ChunkedRead | None:
    """The file at ``path`` as chunks of columns, or None when it is read whole (module doc).
    Options as ``containers.read_columns``; ``chunk_bytes`` / ``parquet_rows`` override the
    chunk size (tests)."""
    if partial_block not in (None, "include", "drop") or tokenizer is not None or chat_template is not None:
        return None  # the whole-file path says what is wrong, or tokenizes
    try:
        check_block_size(block_size)
    except BadLine:
        return None
    path = Path(path)
    if not path.is_file() or path.suffix.lower() == ".duckdb" or path.stat().st_size == 0:
        return None
    with open(path, "rb") as fh:
        magic = fh.read(4)
    settings = {"tokenizer": None, "chat_template": None, "partial_block": partial_block, "progress": progress,
                "path": str(path)}
    options = (format, block_size, partial_block or "include", skip_bad_lines)
    if magic == PARQUET_MAGIC:
        return _parquet_stream(path, settings, options, session_start, seed, parquet_rows or PARQUET_ROWS)
    kind = _kind_from_name(path)
    text = TextStream(path, skip_bad_lines, chunk_bytes)
    if text.whole:
        return None
    if kind == "json":
        return _array_stream(path, text, settings, options, session_start, seed)
    return _text_stream(path, kind, text, settings, options, session_start, seed)


def _text_stream(path: Path, kind: str, text: TextStream, settings: dict, options: tuple, session_start,
                 seed) -> ChunkedRead | None:
    fmt, block_size, partial, skip_bad_lines = options
    chunks = text.chunks()
    base, data = _first_chunk(chunks, kind, skip_bad_lines)
    first = Source(path=path, kind=kind, data=data, compression=text.compression, bom=text.bom,
                   settings=settings, chunk=True)
    if _document_reader(path, first, fmt) is not None:
        text.close()
        return None
    if kind == "jsonl":
        reader, opts = jsonl_reader(first, fmt, block_size, partial, skip_bad_lines)
        header = None
    else:
        reader, opts, header = csv_reader(first, fmt, block_size, partial, skip_bad_lines)
        header_raw = next(line for line in first.data.split(b"\n") if line.strip())
    first_cols = _shifted(_chunk_columns(first, reader, opts, header, skip_bad_lines), base, session_start, seed)
    if not _streams(reader, first_cols):
        text.close()
        return None

    def rest() -> Iterator[Columns]:
        yield first_cols
        for lines_before, data in chunks:
            if header is not None:  # each chunk is read as a CSV of its own: the header, then its lines
                data, lines_before = header_raw + b"\n" + data, lines_before - 1
            src = Source(path=path, kind=kind, data=data, compression=text.compression, settings=settings,
                         chunk=True, line_base=lines_before)
            yield _shifted(_chunk_columns(src, reader, opts, header, skip_bad_lines), lines_before,
                           session_start, seed)

    read = ChunkedRead(path=path, compression=text.compression, chunks=rest(), sha256=text.sha256,
                       fraction=lambda: text.read_bytes / max(text.size, 1))
    read.pre_rejects = text.pre_rejects  # filled when the stream turns out to be cut
    return read


def _has_start(data: bytes, kind: str) -> bool:
    """Whether text holds what a reader's options come from: a JSON object line (JSON lines),
    or a header and a first row (CSV)."""
    if kind == "csv":
        return sum(1 for line in data.split(b"\n") if line.strip()) >= 2
    for line in data.split(b"\n"):
        if not blank(line):
            try:
                json_object(line)
                return True
            except BadLine:
                pass
    return False


def _first_chunk(chunks, kind: str, skip_bad_lines: bool) -> tuple[int, bytes]:
    """The first chunk, joined with the next ones until it holds the file's first record (as
    the whole-file read finds it, however many blank or bad lines come first) and, with
    --skip-bad-lines, every record the options may come from (``containers.OPTION_CANDIDATES``)."""
    base, data = next(chunks)
    while not _has_start(data, kind) or (skip_bad_lines and data.count(b"\n") <= containers.OPTION_CANDIDATES):
        more = next(chunks, None)
        if more is None:
            break
        data += more[1]
    return base, data


def _chunk_columns(src: Source, reader, opts, header, skip_bad_lines) -> Columns:
    if header is None:
        return jsonl_columns(src, reader, opts, skip_bad_lines)
    return csv_columns(src, reader, opts, header, skip_bad_lines)


# ---- a JSON array (``.json``), a chunk of whole elements at a time -------------------------

_JSON_SPACE = b" \t\n\r"
# A JSON array's records weigh about ten times their text as Python objects (dicts, lists,
# ints) while a chunk is parsed: its chunks hold this share of a chunk of text (2 MiB), so
# that their objects take about what a chunk of JSON lines takes in DuckDB's read.
ARRAY_CHUNK_SHARE = 8


@dataclass
class _Place:
    """A place in the text as Python's json names it: line, and column in characters (1-based)."""
    line: int = 1
    column: int = 1

    def advance(self, text: str) -> None:
        newline = text.rfind("\n")
        if newline < 0:
            self.column += len(text)
        else:
            self.line += text.count("\n")
            self.column = len(text) - newline


class _ExtraData(Exception):
    """Text after the array's closing bracket (``place``): the whole-file read takes such a file
    for JSON lines (``containers._read_json``)."""

    def __init__(self, place: _Place):
        super().__init__(place)
        self.place = place


class _ArrayChunks:
    """The elements of the one top-level JSON array of a ``TextStream``, parsed a chunk of whole
    elements (about one piece of text) at a time.

    Each chunk is parsed by ``strict_json`` in the context it has in the file: the first as
    ``[`` + its elements, a later one as ``[0,`` + its elements (the 0 is dropped), each with the
    comma or bracket that ends it in the file (after a comma, ``0]`` completes the text and its
    0 is dropped). So a JSON error is met at the place where the whole-file parse meets it, and
    with the same message; ``place`` (where the chunk starts in the file) makes its line and
    column the file's. A piece may end anywhere: ``kernels.json_array.element_ends`` carries
    strings, escapes and depth across pieces, and a chunk is decoded only once whole (no
    character is cut)."""

    def __init__(self, text: TextStream, path: Path):
        self.text, self.path = text, path
        self.place = _Place()  # where the text not yet parsed starts
        self.state = new_state()
        self.first = True
        self.closed = False
        self.newlines = 0  # in the text read so far (a damaged stream's count of whole lines)
        self.newline_after_close = False
        self.tail = b""  # after the close: the text after its last newline (whitespace)
        self.pre_rejects: list = []
        self._pieces = self._counted(text.pieces(max(1, text.chunk_bytes // ARRAY_CHUNK_SHARE)))
        self._rest = b""

    def _counted(self, pieces) -> Iterator[bytes]:
        for piece in pieces:
            self.newlines += piece.count(b"\n")
            yield piece

    def opens(self) -> bool:
        """Whether the text's first character (after whitespace) opens an array; reads it."""
        for piece in self._pieces:
            start = len(piece) - len(piece.lstrip(_JSON_SPACE))
            self.place.advance(piece[:start + 1].decode("latin-1"))
            if start < len(piece):
                self._rest = piece[start + 1:]
                return piece[start:start + 1] == b"["
        return False

    def chunks(self) -> Iterator[tuple[list, bool]]:
        """(the records of a chunk, whether its text may hold NaN/Infinity) in file order; then
        the end of the file is checked (only whitespace after the array: else ``_ExtraData``;
        a damaged stream; an array left open)."""
        pending: list[bytes] = []
        pieces = self._pieces if not self._rest else itertools.chain([self._rest], self._pieces)
        for piece in pieces:
            if self.closed:
                self._after_close(piece)
                continue
            comma, close = element_ends(np.frombuffer(piece, np.uint8), self.state)
            if close >= 0:
                last = self._parsed(b"".join(pending) + piece[:close], piece[close:close + 1])
                self.closed = True
                yield last
                self._after_close(piece[close + 1:])
            elif comma >= 0:
                yield self._parsed(b"".join(pending) + piece[:comma], b",")
                pending = [piece[comma + 1:]]
            else:
                pending.append(piece)
        self._end(b"".join(pending))

    def _parsed(self, elements: bytes, end: bytes) -> tuple[list, bool]:
        """The records of ``elements`` (whole top-level elements and the commas between them),
        ended in the file by ``end`` (a comma, the closing bracket, or nothing: the file ends)."""
        try:
            body = elements.decode("utf-8")
        except UnicodeDecodeError:
            raise not_utf8_error(self.path) from None
        head = "[" if self.first else "[0,"
        tail = end.decode("latin-1") + ("0]" if end == b"," else "")
        text = head + body + tail
        try:
            doc = strict_json(text)
        except json.JSONDecodeError as err:
            at = _Place(self.place.line, self.place.column)
            at.advance(text[len(head):err.pos])
            raise malformed_json_error(self.path, err.msg, at.line, at.column) from None
        except BadLine as err:
            raise TraceFormatError(err.reason, path=str(self.path), hint=err.hint) from None
        records = doc[0 if self.first else 1:len(doc) - (end == b",")]
        self.first = False
        self.place.advance(body)
        self.place.advance(end.decode("latin-1"))
        return records, may_hold_constants(body)

    def _after_close(self, text: bytes) -> None:
        """Only whitespace may follow the array (kept: the line a damaged stream cuts)."""
        rest = text.lstrip(_JSON_SPACE)
        if rest:
            self.place.advance(text[:len(text) - len(rest)].decode("latin-1"))
            raise _ExtraData(self.place)
        newline = text.rfind(b"\n")
        self.newline_after_close = self.newline_after_close or newline >= 0
        self.tail = self.tail + text if newline < 0 else text[newline + 1:]

    def _end(self, pending: bytes) -> None:
        damage = self.text.damage
        if damage is not None:
            n_complete = self.newlines
            if not self.text.skip_bad_lines:
                raise self.text.truncated(n_complete)
            if not (self.closed and self.newline_after_close):
                raise TraceFormatError(
                    f"{self.text.compression} stream is truncated or corrupt ({damage}) inside the JSON array, "
                    f"after {n_complete:,} complete lines", path=str(self.path), line=n_complete + 1,
                    hint="re-download or re-compress the file (--skip-bad-lines cannot keep part of one array)")
            # the array ends before the cut line: as open_source, its tail is a reject
            self.pre_rejects.append(self.text.truncated_reject(n_complete, self.tail))
        elif not self.closed:  # the parse of the open array's last elements names the error
            self._parsed(pending, b"")
            raise malformed_json_error(self.path, "the array is not closed", self.place.line, self.place.column)


def _enough_for_options(records: list, skip_bad_lines: bool, constants: bool) -> bool:
    """Whether the first records hold what ``containers.records_reader`` takes the options from
    (the first record; with --skip-bad-lines, ``OPTION_CANDIDATES`` accepted ones)."""
    if not skip_bad_lines:
        return bool(records)
    accepted = 0
    for rec in records:
        try:
            checked_record(rec, constants)
        except BadLine:
            continue
        accepted += 1
        if accepted >= containers.OPTION_CANDIDATES:
            return True
    return False


def _array_stream(path: Path, text: TextStream, settings: dict, options: tuple, session_start,
                  seed) -> ChunkedRead | None:
    fmt, block_size, partial, skip_bad_lines = options
    array = _ArrayChunks(text, path)
    if not array.opens():  # JSON lines or one object: read whole, as before
        text.close()
        return None
    chunks = array.chunks()
    records, constants = [], False
    try:
        for part, holds in chunks:
            records.extend(part)
            constants = constants or holds
            if _enough_for_options(records, skip_bad_lines, constants):
                break
        if array.closed:
            for _ in chunks:  # checks the end: an array followed by more text is read whole
                pass
    except _ExtraData:
        text.close()
        return None
    if not records:
        raise empty_array_error(path)
    sniffed = Source(path=path, kind="json", data=json.dumps(records[:1], default=str).encode(), settings=settings,
                     chunk=True)
    if _document_reader(path, sniffed, fmt) is not None:
        text.close()
        return None
    src = Source(path=path, kind="json", settings=settings, chunk=True, unit="record")
    reader, opts = records_reader(src, records, fmt, block_size, partial, skip_bad_lines, constants)
    first_cols = _shifted(parsed_records(src, records, reader, opts, skip_bad_lines, constants), 0,
                          session_start, seed)
    if not _streams(reader, first_cols):
        text.close()
        return None
    done = [len(records)]
    del records

    def rest() -> Iterator[Columns]:
        yield first_cols
        try:
            for part, holds in chunks:
                base = done[0]
                done[0] += len(part)
                src = Source(path=path, kind="json", settings=settings, chunk=True, unit="record", line_base=base)
                cols = parsed_records(src, part, reader, opts, skip_bad_lines, holds)
                del part  # before the next chunk's records are parsed: one chunk's objects at a time
                yield _shifted(cols, base, session_start, seed)
        except _ExtraData as extra:
            raise malformed_json_error(path, "Extra data", extra.place.line, extra.place.column) from None

    read = ChunkedRead(path=path, compression=text.compression, chunks=rest(), sha256=text.sha256,
                       fraction=lambda: text.read_bytes / max(text.size, 1))
    read.pre_rejects = array.pre_rejects  # filled when the stream turns out to be cut
    return read


def _parquet_stream(path: Path, settings: dict, options: tuple, session_start, seed, rows: int) -> ChunkedRead | None:
    import pyarrow.parquet as pq
    fmt, block_size, partial, skip_bad_lines = options
    try:
        file = pq.ParquetFile(path)
    except Exception:  # noqa: BLE001 - the whole-file path reports the unreadable file
        return None
    total = file.metadata.num_rows
    if total <= rows:
        return None
    batches = file.iter_batches(batch_size=rows)

    def frame(batch) -> tuple[pl.DataFrame, dict]:
        df = pl.from_arrow(batch)
        return _as_text(df), dict(df.schema)

    try:
        df, written = frame(next(batches))
    except Exception as err:  # noqa: BLE001 - corrupt pages, as parquet_frame says
        raise TraceFormatError(f"cannot read Parquet ({str(err).splitlines()[0]})", path=str(path),
                               hint="the file may be truncated or not Parquet") from None
    src = Source(path=path, kind="parquet", settings=settings, chunk=True)
    reader, opts = parquet_reader(src, df, fmt, block_size, partial)
    first_cols = _shifted(parquet_columns(src, df, written, reader, opts, skip_bad_lines), 0, session_start, seed)
    if not _streams(reader, first_cols):
        return None
    done = [df.height]

    def rest() -> Iterator[Columns]:
        yield first_cols
        while True:
            try:
                batch = next(batches, None)
            except Exception as err:  # noqa: BLE001
                raise TraceFormatError(f"cannot read Parquet ({str(err).splitlines()[0]})", path=str(path),
                                       hint="the file may be truncated or not Parquet") from None
            if batch is None:
                return
            chunk, types = frame(batch)
            base = done[0]
            done[0] += chunk.height
            part = Source(path=path, kind="parquet", settings=settings, chunk=True, unit="row", line_base=base)
            yield _shifted(parquet_columns(part, chunk, types, reader, opts, skip_bad_lines), base,
                           session_start, seed)

    return ChunkedRead(path=path, compression="none", chunks=rest(), sha256=lambda: trace_sha256(path),
                       fraction=lambda: done[0] / total)


def relink(chat_id: np.ndarray, parent_chat_id: np.ndarray) -> tuple[np.ndarray, list]:
    """(parent_row, session_id) of every request from the ``Columns.links`` of all chunks
    (a chunk alone finds only the parents inside it): what the whole-file read computes."""
    from .bailian import chat_sessions
    parent_row, session = chat_sessions(chat_id, parent_chat_id)
    return parent_row, [str(s) for s in session.tolist()]
