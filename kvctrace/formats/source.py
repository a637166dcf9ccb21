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
    line_base: int = 0             # lines (records) of the file before ``data``: a chunk of a streamed file
    chunk: bool = False            # ``data`` is one chunk of a streamed file (formats/stream.py)

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


# ---- streaming: a large file a chunk of whole lines at a time (``formats/stream.py``) ---------
# A text trace bigger than one chunk is never held whole: the file is read (and decompressed)
# in blocks, hashed as it goes, and handed on as chunks of whole lines. The file-level checks
# are those of ``open_source``, made on the first chunk (binary, byte-order mark) or at the end
# (only blank lines, a truncated stream).

CHUNK_BYTES = 16 << 20   # decompressed text per chunk
_HEAD_BYTES = 3 + 65536  # a byte-order mark and the 64 KiB the binary check reads
_READ_BYTES = 4 << 20    # raw bytes read (and hashed) at a time


class _Inflater:
    """gzip (every member) or zstd (every frame) decompressed block by block; ``error`` is
    what stopped the stream (a corrupt block, or its end before the end marker)."""

    def __init__(self, compression: str):
        self.compression = compression
        self.error: Exception | None = None
        self._dec = self._new()
        self._ended = False

    def _new(self):
        if self.compression == "gzip":
            return zlib.decompressobj(wbits=31)
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj()

    def feed(self, raw: bytes) -> bytes:
        out = []
        try:
            while raw and self.error is None:
                if self._ended:  # a new member / frame starts
                    if self.compression == "gzip":
                        raw = raw.lstrip(b"\x00")  # gzip writers may pad between members
                        if not raw:
                            break
                    self._dec, self._ended = self._new(), False
                out.append(self._dec.decompress(raw))
                if not self._dec.eof:
                    break
                self._ended = True
                raw = self._dec.unused_data
        except zlib.error as err:
            self.error = err
        except Exception as err:  # zstandard.ZstdError
            if type(err).__module__.startswith("zstandard") or "zstd" in type(err).__name__.lower():
                self.error = err
            else:
                raise
        return b"".join(out)

    def finish(self) -> None:
        if self.error is None and not self._ended:
            self.error = EOFError("the stream ends before its end marker")


class TextStream:
    """The decompressed text of a trace file as chunks of whole lines (``chunks()``), with its
    sha256 and the file-level checks of ``open_source``. On construction it reads up to one
    chunk: ``whole`` is then True when that is the whole file, which ``open_source`` reads as
    before (this object is not used further)."""

    def __init__(self, path: Path, skip_bad_lines: bool, chunk_bytes: int = 0):
        self.path, self.skip_bad_lines = path, skip_bad_lines
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self.size = path.stat().st_size
        self.read_bytes = 0  # raw bytes read so far (progress)
        self._fh = open(path, "rb")
        self._hash = hashlib.sha256()
        # hashed in a thread, in order (one worker), while the chunks are parsed: hashlib
        # releases the GIL, so on two cores the sha256 costs no wall time (as ``Sha256``)
        from concurrent.futures import ThreadPoolExecutor
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvctrace-sha256")
        raw = self._read()
        self.compression = ("gzip" if raw[:2] == GZIP_MAGIC else "zstd" if raw[:4] == ZSTD_MAGIC else "none")
        self._inflater = _Inflater(self.compression) if self.compression != "none" else None
        self._pending = self._inflate(raw)
        self._eof = not raw
        self.pre_rejects: list = []
        self.lines_before = 0  # lines handed out so far
        self.bom = False
        self._fill(self.chunk_bytes)
        self.whole = self._eof
        if self.whole:
            self.close()

    def _read(self) -> bytes:
        raw = self._fh.read(_READ_BYTES)
        if raw:
            self._hasher.submit(self._hash.update, raw)
        self.read_bytes += len(raw)
        return raw

    def _inflate(self, raw: bytes) -> bytes:
        return raw if self._inflater is None else self._inflater.feed(raw)

    def _fill(self, target: int) -> None:
        """Read until ``target`` bytes of text are pending or the file (or stream) ends."""
        parts = [self._pending]
        size = len(self._pending)
        while size < target and not self._eof:
            raw = b"" if self._inflater is not None and self._inflater.error is not None else self._read()
            if not raw:
                self._eof = True
                if self._inflater is not None:
                    self._inflater.finish()
                break
            text = self._inflate(raw)
            parts.append(text)
            size += len(text)
        self._pending = b"".join(parts)

    def _next_text(self) -> bytes:
        """The next chunk: whole lines up to about ``chunk_bytes`` (a longer line whole); the
        last one is checked for a damaged compressed stream."""
        self._fill(self.chunk_bytes)
        target = self.chunk_bytes
        while not self._eof and b"\n" not in self._pending:  # one line longer than a chunk
            target *= 2
            self._fill(target)
        data = self._pending
        cut = data.rfind(b"\n", 0, self.chunk_bytes) + 1 or data.find(b"\n") + 1
        if self._eof and (len(data) <= self.chunk_bytes or cut in (0, len(data))):  # the last chunk
            self._pending = b""
            return self._cut_at_damage(data)
        self._pending = data[cut:]
        return data[:cut]

    def _cut_at_damage(self, data: bytes) -> bytes:
        """At the end of a damaged compressed stream: keep the complete lines, and reject the
        cut one (or refuse the file without --skip-bad-lines), as ``open_source`` does."""
        if self.damage is None:
            return data
        complete = data.rfind(b"\n") + 1
        n_complete = self.lines_before + data.count(b"\n", 0, complete)
        if not self.skip_bad_lines:
            raise self.truncated(n_complete)
        self.pre_rejects.append(self.truncated_reject(n_complete, data[complete:]))
        return data[:complete]

    @property
    def damage(self) -> Exception | None:
        """What cut the compressed stream short (known once it is read to its end), or None."""
        return self._inflater.error if self._inflater is not None else None

    def truncated(self, n_complete: int) -> TraceFormatError:
        """``open_source``'s error for a damaged stream after ``n_complete`` whole lines."""
        return TraceFormatError(
            f"{self.compression} stream is truncated or corrupt ({self.damage}) after {n_complete:,} complete lines",
            path=str(self.path), line=n_complete + 1,
            hint="re-download or re-compress the file, or pass --skip-bad-lines to ingest "
                 "the complete lines before the damage")

    def truncated_reject(self, n_complete: int, tail: bytes) -> tuple:
        """The reject (with --skip-bad-lines) of the cut line after ``n_complete`` whole lines."""
        return (n_complete + 1, tail, f"{self.compression} stream truncated or corrupt here ({self.damage})")

    def _check_start(self, data: bytes) -> bytes:
        self.bom = data.startswith(b"\xef\xbb\xbf")
        if self.bom:
            data = data[3:]
        head = data[:65536]
        if b"\x00" in head or _mostly_undecodable(head):
            raise TraceFormatError("binary file, not a text trace", path=str(self.path), line=1,
                                   hint="expected JSON lines, JSON, CSV or Parquet (optionally .gz/.zst compressed)")
        return data

    def chunks(self):
        """(lines before the chunk, the chunk's text) of every chunk; raises ``open_source``'s
        error for a file of blank lines only (after reading it all)."""
        try:
            self._fill(_HEAD_BYTES)  # the file-level checks see the head open_source sees
            self._pending = self._check_start(self._pending)
            data = self._next_text()
            seen_text = False
            while True:
                seen_text = seen_text or bool(data.strip(_SPACE))
                if data:
                    yield self.lines_before, data
                    self.lines_before += data.count(b"\n") + (not data.endswith(b"\n"))
                if self._eof and not self._pending:
                    break
                data = self._next_text()
        finally:
            self._fh.close()
        if not seen_text and not self.pre_rejects:
            raise TraceFormatError("empty file: only blank lines, no requests to ingest", path=str(self.path),
                                   line=1, hint="the trace has no records; check that it was written completely")

    def pieces(self, size: int):
        """The text in pieces of ``size`` bytes, cut anywhere (a JSON array, which may be one
        long line, is cut into elements by its own scan: formats/stream.py), after the
        file-level checks of the start; at the end, ``damage`` says whether the stream was cut."""
        try:
            self._fill(_HEAD_BYTES)
            self._pending = self._check_start(self._pending)
            while True:
                self._fill(size)
                data = self._pending
                self._pending = data[size:]
                if data:
                    yield data[:size]
                if self._eof and not self._pending:
                    break
        finally:
            self._fh.close()

    def sha256(self) -> str:
        """The file's sha256 (complete once ``chunks()`` has run to the end)."""
        self._hasher.shutdown(wait=True)
        return self._hash.hexdigest()

    def close(self) -> None:
        self._fh.close()
        self._hasher.shutdown(wait=False, cancel_futures=True)
