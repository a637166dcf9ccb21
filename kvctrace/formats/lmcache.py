"""LMCache lookup-hash logs: one JSON object per lookup,
``{"timestamp": s, "request_id", "model_name", "chunk_size": 256, "seq_len",
"chunk_hashes": ["0x…", ...]}``. ``chunk_hashes`` are LMCache's prefix hashes of the request's
token chunks (a chunk's hash covers the whole prefix up to it), written as hexadecimal text;
they become the trace's chained block ids, parsed to unsigned 64-bit integers (a wider hash is
folded to 64 bits by XOR of its 64-bit words). The block size is the first record's
``chunk_size`` (default 256); every record must use it. A record hashes either its full chunks
only (``len == seq_len // chunk_size``) or the last partial one too (``ceil``), as LMCache's
``save_unfull_chunk`` setting decides. ``request_id`` and ``model_name`` are kept as the
``request_id`` and ``model`` request columns.

The hashes are text, which the strict columnar pre-check does not type, so every record takes
the per-record path (``from_frame`` declines)."""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from .common import BadLine, Columns, csr_offsets, get_int, get_number, get_str, require

NAME = "lmcache"
DEFAULT_BLOCK_SIZE = 256
SIGNATURE = "chunk_hashes"
CSV = False  # chunk_hashes are lists
_HEX = re.compile(r"(0[xX])?([0-9a-fA-F]{1,64})")
_M64 = (1 << 64) - 1


def matches(keys) -> bool:
    return "chunk_hashes" in set(keys)


def options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False) -> dict:
    chunk = first_record.get("chunk_size")
    valid = isinstance(chunk, int) and not isinstance(chunk, bool) and chunk > 0
    return {"block_size": block_size or (chunk if valid else DEFAULT_BLOCK_SIZE)}


def schema(opts: dict) -> dict:
    return {}


def from_frame(df, line_no: np.ndarray, opts: dict) -> Columns | None:
    return None


def parse_hash(value, index: int) -> int:
    """One ``chunk_hashes`` item: hexadecimal text (``0x`` optional) as an unsigned 64-bit id."""
    match = _HEX.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise BadLine(f"field 'chunk_hashes' item {index} should be a hexadecimal string such as \"0x1f\", "
                      f"got {value!r:.40}", "chunk_hashes", "LMCache writes chunk hashes as hex text")
    number = int(match.group(2), 16)
    folded = 0
    while number:
        folded ^= number & _M64
        number >>= 64
    return folded


def parse_record(rec: dict, opts: dict) -> tuple:
    block_size = opts["block_size"]
    ts = get_number(rec, "timestamp")
    seq_len = get_int(rec, "seq_len")
    chunk = get_int(rec, "chunk_size", optional=True, default=block_size)
    if chunk != block_size:
        raise BadLine(f"field 'chunk_size' is {chunk} but the trace is read at block size {block_size}",
                      "chunk_size", "every record of a log needs the same chunk size (or pass --block-size)")
    hashes = require(rec, "chunk_hashes")
    if not isinstance(hashes, list):
        raise BadLine("field 'chunk_hashes' should be a list of hex strings", "chunk_hashes",
                      "write it as [\"0x…\", ...]")
    full, ceil = seq_len // block_size, -(-seq_len // block_size)
    if len(hashes) not in (full, ceil):
        raise BadLine(f"field 'chunk_hashes' has {len(hashes)} hashes but seq_len {seq_len} at chunk size "
                      f"{block_size} needs {full} (full chunks) or {ceil} (with the partial one)",
                      "chunk_hashes", "the log's chunk size may differ: pass --block-size")
    ids = [parse_hash(h, i) for i, h in enumerate(hashes)]
    return (ts, seq_len, ids, get_str(rec, "request_id", optional=True), get_str(rec, "model_name", optional=True))


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    ts, seq_len, ids, request_id, model = zip(*rows) if rows else ((), (), (), (), ())
    return Columns(format=NAME, block_size=opts["block_size"], ts=np.array(ts, np.float64),
                   input_len=np.array(seq_len, np.int64), output_len=np.zeros(len(rows), np.int64),
                   line_no=line_no, offsets=csr_offsets([len(x) for x in ids]),
                   ids=np.array([x for row in ids for x in row], np.uint64),
                   extra={"request_id": pa.array(request_id, pa.string()), "model": pa.array(model, pa.string())})
