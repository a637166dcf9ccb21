"""What a format reader is (``Reader``), what it produces (``Columns``), and the checks its
two paths share.

Readers have two paths that must agree: a fast columnar one (polars with an explicit schema,
strict about types, validated with vectorised checks) for well-formed files, and a
line-by-line Python one that is used only when the fast path finds a problem; it names the
exact line and field, or (``--skip-bad-lines``) rejects the line with its reason."""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
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
    rejects: list = field(default_factory=list)   # (line_no, raw, reason)
    partial_dropped: bool = False      # ids already exclude the last partial block (tokens 'drop')
    extra: dict = field(default_factory=dict)  # more request columns: name -> pyarrow array (store.REQUEST_EXTRAS)
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


def _typename(value) -> str:
    return {bool: "boolean", str: "string", float: "number", list: "list", dict: "object",
            type(None): "null"}.get(type(value), type(value).__name__)


def require(rec: dict, name: str):
    if name not in rec:
        raise BadLine(f"missing field '{name}'", name,
                      f"every record of this format needs '{name}'; keys here: {', '.join(sorted(rec)) or 'none'}")
    value = rec[name]
    if value is None:
        raise BadLine(f"field '{name}' is null", name, f"give '{name}' a value")
    return value


def get_int(rec: dict, name: str, *, nonnegative: bool = True, optional: bool = False, default=0) -> int:
    """An integer field (JSON booleans and floats are mistyped, not silently converted)."""
    if optional and rec.get(name) is None:
        return default
    value = require(rec, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadLine(f"field '{name}' should be an integer, got {_typename(value)} {value!r:.40}", name,
                      f"write '{name}' as a JSON integer, e.g. 512")
    if nonnegative and value < 0:
        raise BadLine(f"field '{name}' is negative ({value})", name, f"'{name}' counts tokens; it must be >= 0")
    if not -(1 << 63) <= value < (1 << 63):
        raise BadLine(f"field '{name}' is out of the 64-bit range", name, "use a smaller value")
    return value


def get_number(rec: dict, name: str) -> float:
    value = require(rec, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise BadLine(f"field '{name}' should be a number, got {_typename(value)} {value!r:.40}", name,
                      f"write '{name}' as a JSON number")
    return float(value)


def get_str(rec: dict, name: str, *, optional: bool = False):
    """A label field: strings as they are, integers as their decimal text."""
    if optional and rec.get(name) is None:
        return None
    value = require(rec, name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadLine(f"field '{name}' should be a string, got {_typename(value)} {value!r:.40}", name,
                      f"write '{name}' as a JSON string")
    return str(value)


def get_int_list(rec: dict, name: str) -> list:
    """A list of 64-bit integer ids (signed or unsigned; stored modulo 2**64)."""
    value = require(rec, name)
    if not isinstance(value, list):
        raise BadLine(f"field '{name}' should be a list of integers, got {_typename(value)}", name,
                      f"write '{name}' as a JSON list such as [0, 1, 2]")
    for i, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, int):
            raise BadLine(f"field '{name}' item {i} should be an integer, got {_typename(x)} {x!r:.40}", name,
                          f"every element of '{name}' must be a JSON integer")
        if not -(1 << 63) <= x <= U64_MASK:
            raise BadLine(f"field '{name}' item {i} does not fit in 64 bits", name,
                          "ids must be 64-bit integers")
    return value


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
    offsets = np.asarray(arr.offsets).astype(np.int64, copy=False)
    values = np.asarray(arr.values)
    if offsets[0] != 0:
        values = values[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
    return values, offsets


def valid_lengths(input_len, output_len, counts, block_size) -> bool:
    """Vectorised form of the per-record checks (lengths >= 0, one id per block)."""
    return bool((input_len >= 0).all() and (output_len >= 0).all()
                and np.array_equal(counts, (input_len + block_size - 1) // block_size))


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
