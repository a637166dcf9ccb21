"""Opening a trace file: container detection (by content, not only by name), decompression,
binary / empty / truncated checks, line bookkeeping, and the file's sha256.

Everything a reader needs arrives as one ``Source``: the decompressed bytes of a text trace
(or the path of a Parquet file), its kind, and any line that was lost to a truncated stream
(kept as a reject, never silently dropped)."""
from __future__ import annotations

import hashlib
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TraceFormatError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"
_SPACE = b" \t\r\n"


def is_duckdb_file(path: Path) -> bool:
    """DuckDB database files carry 'DUCK' at byte 8 of their header."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[8:12] == b"DUCK"


class Sha256:
    """sha256 of a file, computed in a thread while the trace is parsed (hashlib releases
    the GIL on large buffers, so on two cores this costs almost no wall time)."""

    def __init__(self, raw: bytes):
        self._value: str | None = None
        self._thread = threading.Thread(target=self._run, args=(raw,), daemon=True)
        self._thread.start()

    def _run(self, raw: bytes) -> None:
        self._value = hashlib.sha256(raw).hexdigest()

    def value(self) -> str:
        self._thread.join()
        assert self._value is not None
        return self._value


@dataclass
class Source:
    path: Path
    kind: str                      # "jsonl" | "json" | "csv" | "parquet"
    data: bytes = b""              # decompressed text (empty for parquet)
    sha256: Sha256 | None = None
    compression: str = "none"
    bom: bool = False              # a UTF-8 byte-order mark was removed: data differs from the file
    unit: str = "line"             # what a record number counts: line, or record/row (JSON array, Parquet)
    pre_rejects: list = field(default_factory=list)   # (line_no, raw bytes, reason) lost before parsing
    settings: dict = field(default_factory=dict)     # reader settings of the command (read_columns)

    def iter_lines(self):
        """(line number, bytes) of every line, without splitting the whole text at once."""
        data, start, number = self.data, 0, 0
        while start < len(data):
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            number += 1
            yield number, data[start:end]
            start = end + 1

    def lines(self) -> list[bytes]:
        """The text split into lines (line i+1 is element i); a final newline adds no line."""
        lines = self.data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return lines


def _decompress(raw: bytes, compression: str, path: Path) -> tuple[bytes, Exception | None]:
    """Decompress every member/frame as far as the stream allows; return the bytes and the
    error that stopped it (None when the stream ended cleanly). Incremental decompressor
    objects keep the output produced before a cut or a corrupt block."""
    chunks: list[bytes] = []
    rest = raw
    try:
        while rest:
            if compression == "gzip":
                dec = zlib.decompressobj(wbits=31)
            else:
                import zstandard
                dec = zstandard.ZstdDecompressor().decompressobj()
            chunks.append(dec.decompress(rest))
            if not dec.eof:
                return b"".join(chunks), EOFError("the stream ends before its end marker")
            rest = dec.unused_data
            if compression == "gzip":
                rest = rest.lstrip(b"\x00")  # gzip writers may pad between members
    except zlib.error as err:
        return b"".join(chunks), err
    except Exception as err:  # zstandard.ZstdError
        if type(err).__module__.startswith("zstandard") or "zstd" in type(err).__name__.lower():
            return b"".join(chunks), err
        raise
    return b"".join(chunks), None


def _kind_from_name(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".zst", ".zstd")]
    last = suffixes[-1] if suffixes else ""
    if last == ".csv" or last == ".tsv":
        return "csv"
    if last == ".json":
        return "json"
    if last == ".parquet":
        return "parquet"
    return "jsonl"


def open_source(path, *, skip_bad_lines: bool = False) -> Source:
    """Read ``path`` and return its decompressed text (or Parquet path) with checks applied."""
    path = Path(path)
    if not path.exists():
        raise TraceFormatError("no such file", path=str(path), hint="check the path")
    if path.is_dir():
        raise TraceFormatError("is a directory, not a trace file", path=str(path),
                               hint="pass one trace file (.jsonl[.gz|.zst], .json, .csv, .parquet)")
    if path.suffix.lower() == ".duckdb":  # a real DuckDB file never gets here (store.open_trace)
        raise TraceFormatError("named .duckdb but not a DuckDB database (no DuckDB header), so not read as a trace",
                               path=str(path), hint="pass a trace file, or a database written by kvctrace ingest")
    raw = path.read_bytes()
    sha = Sha256(raw)
    if not raw:
        raise TraceFormatError("empty file: no requests to ingest", path=str(path), line=1,
                               hint="the trace has no lines; check that it was written completely")
    if raw[:4] == PARQUET_MAGIC:
        return Source(path=path, kind="parquet", sha256=sha)
    compression = "none"
    data = raw
    pre_rejects: list = []
    if raw[:2] == GZIP_MAGIC or raw[:4] == ZSTD_MAGIC:
        compression = "gzip" if raw[:2] == GZIP_MAGIC else "zstd"
        data, err = _decompress(raw, compression, path)
        if err is not None:
            complete = data.rfind(b"\n") + 1
            n_complete = data.count(b"\n", 0, complete)
            tail = data[complete:]
            if not skip_bad_lines:
                raise TraceFormatError(
                    f"{compression} stream is truncated or corrupt ({err}) after {n_complete:,} complete lines",
                    path=str(path), line=n_complete + 1,
                    hint="re-download or re-compress the file, or pass --skip-bad-lines to ingest "
                         "the complete lines before the damage")
            data = data[:complete]
            pre_rejects.append((n_complete + 1, tail, f"{compression} stream truncated or corrupt here ({err})"))
        if _blank(data) and not pre_rejects:
            raise TraceFormatError("empty file after decompression: no requests to ingest",
                                   path=str(path), line=1, hint="the archive holds no lines")
    bom = data.startswith(b"\xef\xbb\xbf")
    if bom:
        data = data[3:]
    head = data[:65536]
    if b"\x00" in head or _mostly_undecodable(head):
        raise TraceFormatError("binary file, not a text trace", path=str(path), line=1,
                               hint="expected JSON lines, JSON, CSV or Parquet (optionally .gz/.zst compressed)")
    if _blank(data) and not pre_rejects:
        raise TraceFormatError("empty file: only blank lines, no requests to ingest", path=str(path),
                               line=1, hint="the trace has no records; check that it was written completely")
    kind = _kind_from_name(path)
    if kind == "parquet":  # named .parquet but not Parquet: read as text by content
        kind = "jsonl"
    return Source(path=path, kind=kind, data=data, sha256=sha, compression=compression, bom=bom,
                  pre_rejects=pre_rejects)


def _blank(data: bytes) -> bool:
    """Only JSON whitespace and newlines (checked on a prefix first: stripping a whole large
    file copies it)."""
    return not data[:65536].strip(_SPACE) and not data.strip(_SPACE)


def _mostly_undecodable(head: bytes) -> bool:
    """True when the start of the file is not text: more than 1% of it fails UTF-8 decoding
    (a stray bad byte in a text trace is a bad line, reported as such, not a binary file)."""
    text = head.decode("utf-8", errors="replace")
    return text.count("\ufffd") > max(2, len(head) // 100)
