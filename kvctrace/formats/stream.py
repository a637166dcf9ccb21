"""Reading a trace file bigger than one chunk, a bounded chunk at a time (``--db`` ingests).

``stream_columns`` gives the file's records as a sequence of ``Columns``, one per chunk of
whole lines (JSON lines and CSV, read and decompressed a block at a time by
``source.TextStream``) or per batch of Parquet rows, so no more than one chunk of the file is
ever in memory. Each chunk goes through the same container code as a whole file
(``containers.jsonl_columns``, ``csv_columns``, ``parquet_columns``) with the reader and
options taken once from the file's first record, so validation, messages and rejects are the
same; line numbers count from the start of the file.

It returns None when the file is read whole instead (``containers.read_columns``): a file that
fits one chunk, a JSON array (one document), a folder or a file of conversations (document
readers), and traces whose readers keep more than block ids per request: lengths-only traces
(one small row per request) and token or text traces, whose per-token ``tokens`` column and
token-exact prefix (``store._prefix_columns``) need every request's tokens at once."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import TraceFormatError
from .common import BadLine, Columns, check_block_size
from . import containers
from .containers import (_document_reader, blank, csv_columns, csv_reader, jsonl_columns, jsonl_reader, parquet_columns,
                         parquet_reader, trace_sha256)
from .parquet import _as_text
from .sessions import place_sessions
from .source import PARQUET_MAGIC, Source, TextStream, _kind_from_name
from .strict_json import json_object

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
    if kind not in ("jsonl", "csv"):
        return None  # a JSON array is one document
    text = TextStream(path, skip_bad_lines, chunk_bytes)
    if text.whole:
        return None
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
