"""What a format reader is (``Reader``), what it produces (``Columns``), and the checks its
two paths share.

Readers have two paths that must agree: a fast columnar one (polars with an explicit schema,
strict about types, validated with vectorised checks) for well-formed files, and a
line-by-line Python one that is used only when the fast path finds a problem; it names the
exact line and field, or (``--skip-bad-lines``) rejects the line with its reason."""
from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl

U64_MASK = (1 << 64) - 1


@dataclass
class Columns:
    """One trace in canonical columns, rows in file order (sorting happens in the store)."""
    format: str
    block_size: int
    ts: np.ndarray                     # float64 seconds (any origin)
    input_len: np.ndarray              # int64 tokens
    output_len: np.ndarray             # int64 tokens
    line_no: np.ndarray                # int64, 1-based line (or record/row) of each request
    offsets: np.ndarray | None = None  # int64 CSR offsets into ids (None: no block ids)
    ids: np.ndarray | None = None      # chained prefix ids (uint64 or int64), partial block included
    session_id: list | None = None     # per request: str or None
    parent_row: np.ndarray | None = None  # int64 row index of the parent request in this file, -1 none
    turn: np.ndarray | None = None     # int64, -1 for unknown
    type: list | None = None           # per request: str or None
    rejects: list = field(default_factory=list)   # (line_no, raw bytes of the line, reason)
    partial_dropped: bool = False      # ids already exclude the last partial block (tokens 'drop')
    conversation: np.ndarray | None = None  # int64 per request: its separate conversation, whose clock ts counts from
    extra: dict = field(default_factory=dict)  # more request columns: name -> values (tables.REQUEST_EXTRAS names)
    links: tuple | None = None         # (chat_id, parent_chat_id) int64 per request, whose parent_row/session_id they
                                       # give: a streamed read (formats/stream.py) relinks them across its chunks
    meta: dict = field(default_factory=dict)   # reader facts for the store's meta table (str -> str)

    @property
    def has_block_ids(self) -> bool:
        return self.ids is not None

    @property
    def n_requests(self) -> int:
        return int(self.ts.shape[0])


@runtime_checkable
class Reader(Protocol):
    """One trace format: a module in ``kvctrace/formats/`` listed in ``registry.READERS``.

    The container code (``containers.py``) finds the reader (``--format`` or ``matches``),
    asks it for its ``options`` from the first record, reads the file's records as a typed
    frame of ``schema(opts)`` and hands it to ``from_frame`` (the fast path). When that fails
    or finds a bad row, every record goes through ``parse_record`` (raising ``BadLine`` with
    the field and a hint) and the parsed rows through ``from_rows`` (the exact path). Both
    paths must give equal ``Columns``."""

    NAME: str                 # the --format name
    DEFAULT_BLOCK_SIZE: int   # tokens per block when --block-size is not given
    SIGNATURE: str            # what ``matches`` looks for, in words (for the "cannot tell" hint)
    CSV: bool                 # records are flat scalars, so a CSV can hold them (cells as text)

    def matches(self, keys: Collection[str]) -> bool:
        """Whether a first record with these keys (a CSV header, a Parquet schema) is this
        format. Detection asks the readers in registry order; the first match wins."""

    def options(self, first_record: Mapping, block_size: int | None, partial: str,
                text_cells: bool = False) -> dict:
        """Reading options for this file (``opts`` below) from its first record, --block-size
        and --partial-block. ``text_cells``: every cell is text (a CSV; only when ``CSV``)."""

    def schema(self, opts: dict) -> dict:
        """Column name -> polars dtype of the typed frame ``from_frame`` receives."""

    def from_frame(self, df: pl.DataFrame, line_no: np.ndarray, opts: dict) -> Columns | None:
        """Fast path: canonical columns of a typed frame, or None when a row needs the
        per-record path's exact diagnosis."""

    def parse_record(self, rec: dict, opts: dict) -> tuple:
        """Exact path: one record's checked values (raises ``BadLine``)."""

    def from_rows(self, rows: list, line_no: np.ndarray, opts: dict) -> Columns:
        """Exact path: canonical columns of the tuples ``parse_record`` returned."""


def has_keys(keys: Collection[str], *required: str) -> bool:
    """A ``matches`` helper: the record carries every one of ``required``."""
    return set(required) <= set(keys)


class BadLine(Exception):
    """One record that cannot be ingested: the reason, the field and a hint."""

    def __init__(self, reason: str, field: str | None = None, hint: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.hint = hint


# ---- valid values (docs/data-model.md, "Valid values") ---------------------------------------
# Every reader checks its fields against these, on the fast path (vectorised: ``counts_ok``,
# ``timestamps_ok``, ``text_matches``) and on the per-record path (``get_*``, ``text_*``), so
# a value outside them is a bad line in every format and container, never a crash later.

# Tokens of one request (input or output) and the largest (effective) block size. The prefix
# tree keeps token positions as int32: a request rounded up to whole blocks stays below 2**31.
MAX_TOKENS = 1 << 30
# Largest |timestamp| in seconds: float64 still counts every whole second up to 2**53, and the
# time windows of the analyses stay finite.
MAX_ABS_SECONDS = float(1 << 53)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# Block and token ids are 64-bit patterns: signed or unsigned, stored modulo 2**64.
ID_MIN, ID_MAX = -(1 << 63), U64_MASK
# Text cells (CSV, numeric strings): ASCII digits only, spaces/tabs around; no '_', no nan/inf.
TEXT_SPACE = " \t"
TEXT_INT_PATTERN = r"^[ \t]*[+-]?[0-9]+[ \t]*$"
TEXT_NUMBER_PATTERN = r"^[ \t]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*$"
_TEXT_INT = re.compile(TEXT_INT_PATTERN)
_TEXT_NUMBER = re.compile(TEXT_NUMBER_PATTERN)


def _typename(value) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "list"),
                       (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def require(rec: dict, name: str):
    if name not in rec:
        raise BadLine(f"missing field '{name}'", name,
                      f"every record of this format needs '{name}'; keys here: {', '.join(sorted(rec)) or 'none'}")
    value = rec[name]
    if value is None:
        raise BadLine(f"field '{name}' is null", name, f"give '{name}' a value")
    return value


def _in_range(value: int, name: str, lo: int, hi: int, what: str) -> int:
    if not lo <= value <= hi:
        raise BadLine(f"field '{name}' is {value}, outside the valid range {lo:,} .. {hi:,}", name,
                      f"'{name}' is {what}")
    return value


def get_int(rec: dict, name: str, *, nonnegative: bool = True, optional: bool = False, default=0) -> int:
    """A 64-bit integer field (booleans and floats, even integral ones such as 5.0, are
    mistyped, not converted)."""
    if optional and rec.get(name) is None:
        return default
    value = require(rec, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadLine(f"field '{name}' should be an integer, got {_typename(value)} {value!r:.40}", name,
                      f"write '{name}' as an integer, e.g. 512 (not 512.0)")
    if nonnegative and value < 0:
        raise BadLine(f"field '{name}' is negative ({value})", name, f"'{name}' must be >= 0")
    return _in_range(value, name, INT64_MIN, INT64_MAX, "a 64-bit signed integer")


def get_count(rec: dict, name: str, *, optional: bool = False) -> int:
    """A token count: an integer 0 .. MAX_TOKENS."""
    value = get_int(rec, name, optional=optional)
    if value > MAX_TOKENS:
        raise BadLine(f"field '{name}' is {value:,} tokens, above the limit of {MAX_TOKENS:,} tokens per request",
                      name, "kvctrace keeps token positions as 32-bit integers; is the field in tokens?")
    return value


def _not_finite(value: float, name: str) -> BadLine:
    what = "NaN" if math.isnan(value) else f"{'-' if value < 0 else ''}infinite (beyond a 64-bit float's range)"
    return BadLine(f"field '{name}' is {what}, not a finite number", name,
                   f"'{name}' must be a finite number")


def get_number(rec: dict, name: str) -> float:
    """A finite number (integers are read as the nearest double)."""
    value = require(rec, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadLine(f"field '{name}' should be a number, got {_typename(value)} {value!r:.40}", name,
                      f"write '{name}' as a number, e.g. 12.5")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a double's range
        number = math.copysign(math.inf, value)
    if not math.isfinite(number):
        raise _not_finite(number, name)
    return number


def _unit(unit_s: float) -> str:
    return {1.0: "s", 1e-3: "ms", 1e-6: "us", 1e-9: "ns"}.get(unit_s, f"x {unit_s:g} s")


def check_timestamp(value: float, name: str, unit_s: float = 1.0) -> float:
    """A finite timestamp (in units of ``unit_s`` seconds) within +-MAX_ABS_SECONDS."""
    if not abs(value) * unit_s <= MAX_ABS_SECONDS:
        raise BadLine(f"field '{name}' is {value!r:.40}, outside the valid range "
                      f"+-{MAX_ABS_SECONDS / unit_s:.4g} {_unit(unit_s)} (2**53 seconds)", name,
                      f"timestamps must be within 2**53 seconds of 0; is '{name}' in {_unit(unit_s)}?")
    return value


def get_timestamp(rec: dict, name: str, unit_s: float = 1.0) -> float:
    """A finite timestamp in the format's unit (``unit_s`` seconds each) within the valid range."""
    return check_timestamp(get_number(rec, name), name, unit_s)


def timestamps_ok(values: np.ndarray, unit_s: float = 1.0) -> bool:
    """Vectorised ``get_timestamp`` range check (NaN fails the comparison)."""
    return bool((np.abs(values) * unit_s <= MAX_ABS_SECONDS).all())


def counts_ok(*arrays: np.ndarray) -> bool:
    """Vectorised ``get_count`` range check."""
    return all(bool(((a >= 0) & (a <= MAX_TOKENS)).all()) for a in arrays)


def get_str(rec: dict, name: str, *, optional: bool = False):
    """A label field: strings as they are (valid Unicode), integers as their decimal text."""
    if optional and rec.get(name) is None:
        return None
    value = require(rec, name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadLine(f"field '{name}' should be a string, got {_typename(value)} {value!r:.40}", name,
                      f"write '{name}' as a string (or an integer)")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadLine(f"field '{name}' holds an unpaired UTF-16 surrogate (a lone \\ud800-\\udfff escape)",
                          name, "labels must be valid Unicode text") from None
    return str(value)


def get_int_list(rec: dict, name: str) -> list:
    """A list of 64-bit integer ids (signed or unsigned; stored modulo 2**64)."""
    value = require(rec, name)
    if not isinstance(value, list):
        raise BadLine(f"field '{name}' should be a list of integers, got {_typename(value)}", name,
                      f"write '{name}' as a list such as [0, 1, 2]")
    for i, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, int):
            raise BadLine(f"field '{name}' item {i} should be an integer, got {_typename(x)} {x!r:.40}", name,
                          f"every element of '{name}' must be an integer (not a float, even 5.0)")
        if not ID_MIN <= x <= ID_MAX:
            raise BadLine(f"field '{name}' item {i} does not fit in 64 bits", name,
                          f"ids must be within {ID_MIN} .. {ID_MAX}")
    return value


def get_token_ids(rec: dict, name: str) -> list:
    """A request's token ids: 64-bit ids, at most MAX_TOKENS of them."""
    value = get_int_list(rec, name)
    if len(value) > MAX_TOKENS:
        raise BadLine(f"field '{name}' holds {len(value):,} tokens, above the limit of {MAX_TOKENS:,}",
                      name, "split the request")
    return value


def text_int(text: str, name: str) -> int:
    """An integer cell: optional sign and ASCII digits (no '5.0', '1e3' or '5_000')."""
    if not _TEXT_INT.match(text):
        raise BadLine(f"field '{name}' should be an integer, got {text!r:.40}", name,
                      f"write '{name}' as a whole number, e.g. 512 (not 512.0)")
    return int(text.strip(TEXT_SPACE))


def text_number(text: str, name: str) -> float:
    """A number cell: a decimal number such as 12, -0.5 or 1.5e3 (no nan, inf or '_')."""
    if not _TEXT_NUMBER.match(text):
        raise BadLine(f"field '{name}' should be a number, got {text!r:.40}", name,
                      f"write '{name}' as a decimal number such as 12.5 (nan and inf are not numbers)")
    number = float(text.strip(TEXT_SPACE))
    if not math.isfinite(number):
        raise _not_finite(number, name)
    return number


def is_number_text(text: str) -> bool:
    return bool(_TEXT_NUMBER.match(text))


def text_matches(series: pl.Series, pattern: str) -> bool:
    """Vectorised ``text_int`` / ``text_number`` syntax check of a text column (nulls pass)."""
    return bool(series.str.contains(pattern).fill_null(True).all())


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FRACTION = re.compile(r"[0-9]:[0-9]{2}[.,]([0-9]+)")
DATETIME_HINT = "use an ISO date-time such as 2023-11-16 18:17:03.97 (naive ones are UTC)"


def datetime_ns(text: str, name: str) -> int:
    """An ISO date-time text as integer nanoseconds since the epoch (naive = UTC), exact to the
    nanosecond as polars reads it on the fast path (Python's datetime keeps microseconds)."""
    stripped = text.strip(TEXT_SPACE)
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise BadLine(f"field '{name}' is neither a number nor a date-time: {text!r:.40}", name,
                      DATETIME_HINT) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    ns = (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    digits = _FRACTION.search(stripped)
    if digits and len(digits.group(1)) > 6:
        ns += int(digits.group(1)[6:9].ljust(3, "0"))
    if not INT64_MIN <= ns <= INT64_MAX:
        raise BadLine(f"field '{name}' is {text!r:.40}, outside the valid range 1677-09-21 .. 2262-04-11",
                      name, "date-times must fit 64-bit nanoseconds since 1970")
    return ns


def ns_to_seconds(ns: np.ndarray) -> np.ndarray:
    """Nanosecond timestamps (int64) as float64 seconds from the earliest; the difference is
    taken modulo 2**64 and read unsigned, so a span beyond 2**63 ns does not wrap."""
    if not ns.shape[0]:
        return ns.astype(np.float64)
    return (ns - ns.min()).view(np.uint64).astype(np.float64) / 1e9


def check_block_size(block_size: int | None, what: str = "--block-size") -> None:
    if block_size is not None and not 1 <= block_size <= MAX_TOKENS:
        raise BadLine(f"{what} must be 1 .. {MAX_TOKENS:,} tokens, got {block_size}", None,
                      "e.g. --block-size 16")


def check_block_count(n_ids: int, input_len: int, block_size: int, name: str = "hash_ids") -> None:
    """A hashed trace names every block of the prompt, the last partial one included."""
    expected = -(-input_len // block_size)
    if n_ids != expected:
        raise BadLine(
            f"field '{name}' has {n_ids} ids but input_length {input_len} at block size {block_size} "
            f"needs ceil({input_len}/{block_size}) = {expected}", name,
            "the trace's block size may differ: pass --block-size, or fix the line")


def ids_array(flat: list) -> np.ndarray:
    """Python ints (signed or unsigned 64-bit) as a numpy id array (slow path only)."""
    try:
        return np.array(flat, dtype=np.int64)
    except OverflowError:
        return np.array([x & U64_MASK for x in flat], dtype=np.uint64)


def csr_offsets(lengths) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(np.asarray(lengths, np.int64), out=out[1:])
    return out


def tokens_column(tokens: np.ndarray, offsets: np.ndarray) -> dict:
    """The ``tokens`` request column (``Columns.extra``) of token ids in CSR form, or nothing
    when an id does not fit the column's 32 bits (ids of the tokens format may be any 64-bit
    integer; real vocabularies fit)."""
    import pyarrow as pa
    if tokens.shape[0] and (tokens.min() < -(1 << 31) or tokens.max() >= (1 << 31)):
        return {}
    return {"tokens": pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(tokens.astype(np.int32, copy=False)))}


def list_column(series) -> tuple[np.ndarray, np.ndarray]:
    """Flat values and int64 offsets of a polars List column, zero-copy from Arrow where possible."""
    import pyarrow as pa
    arr = series.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.offset != 0 or arr.null_count:
        arr = pa.concat_arrays([arr])  # normalise slices
    if arr.values.null_count:  # [1, null]: numpy would make the ids floats
        raise ValueError("a list holds a null element")
    # a copy: a view would pin every buffer of the Arrow import, the ids included (8 bytes per
    # access held for the whole run after the ids are dropped)
    offsets = np.array(arr.offsets, dtype=np.int64)
    values = np.asarray(arr.values)
    if offsets[0] != 0:
        values = values[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
    return values, offsets


def valid_lengths(input_len, output_len, counts, block_size) -> bool:
    """Vectorised form of the per-record checks (token counts in range, one id per block)."""
    return counts_ok(input_len, output_len) and np.array_equal(counts, (input_len + block_size - 1) // block_size)


def checked_block_columns(df: pl.DataFrame, fields, block_size: int):
    """``(ids, offsets, input_len, output_len)`` of a frame with ``hash_ids`` lists, or None
    when a field is missing or a row's lengths do not fit (the slow path then says which)."""
    if any(df[c].null_count() for c in fields):
        return None
    ids, offsets = list_column(df["hash_ids"])
    input_len = df["input_length"].to_numpy()
    output_len = df["output_length"].to_numpy()
    if not valid_lengths(input_len, output_len, np.diff(offsets), block_size):
        return None
    return ids, offsets, input_len, output_len
