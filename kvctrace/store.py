"""DuckDB store: schema, ingest, open.

``open_trace(path)`` reads a trace file (``formats``), orders requests by (timestamp, line),
re-blocks (``--coarsen``, ``--partial-block drop``), maps block ids to dense first-appearance
ids, fills the prefix tree, and writes the tables of DESIGN.md in ONE transaction (an
interrupted ingest leaves no half-written tables). In memory by default; ``db=PATH`` writes a
file, and a file that already holds the same trace (sha256) ingested with the same options is
opened instead of re-ingested. ``open_trace("x.duckdb")`` opens a kvctrace database directly.

All bulk data moves as Arrow tables registered with DuckDB; no per-access Python loops."""
from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from .errors import KvctraceError, TraceFormatError
from .formats import read_columns
from .formats.source import is_duckdb_file
from .kernels.hashing import coarsen as coarsen_ids, dense_ids
from .kernels.tree import access_rows, first_values, gather_csr, prefix_tree, truncate_csr
from .sql import load_query
from .trace import Trace

TABLES = ("requests", "accesses", "blocks", "meta", "rejects")


def _version() -> str:
    from . import __version__
    return __version__


def _nullable_int(values, null_below: int = 0) -> pa.Array:
    """Integers (int32 or int64, kept as they are: no copy) with nulls where below
    ``null_below``; DuckDB widens them to the column's BIGINT on insert."""
    values = np.ascontiguousarray(values)
    if values.dtype not in (np.int32, np.int64):
        values = values.astype(np.int64)
    valid = np.packbits(values >= null_below, bitorder="little")
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), values.shape[0],
                                 [pa.py_buffer(valid), pa.py_buffer(values)])


def _strings(values, n: int) -> pa.Array:
    return pa.array(values, pa.string()) if values is not None else pa.nulls(n, pa.string())


# Request columns a reader may add (``Columns.extra``), in table order, with their Arrow types;
# NULL where a reader has none. Text traces fill them (docs/text-inputs.md).
REQUEST_EXTRAS = {"tokens": pa.large_list(pa.int32()), "msg_offsets": pa.large_list(pa.int32()),
                  "msg_roles": pa.list_(pa.string()), "cached_tokens": pa.int64(),
                  "reported_prompt_tokens": pa.int64(), "model": pa.string()}


def _request_extras(extra: dict | None, n: int) -> dict:
    extra = extra or {}
    return {name: extra[name].cast(kind) if name in extra else pa.nulls(n, kind)
            for name, kind in REQUEST_EXTRAS.items()}


# DuckDB's allocator keeps freed memory for reuse and, without its background threads, returns
# it to the system only when later allocations happen to trigger it: an ingest's transient
# buffers (parsed JSON, uncompressed table data before a checkpoint) would stay resident
# through the analyses. With the threads, freed memory goes back within about a second.
DUCKDB_CONFIG = {"allocator_background_threads": True, "allocator_bulk_deallocation_flush_threshold": "16MB", "allocator_flush_threshold": "16MB"}


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter (malloc.h)


@functools.cache
def map_large_arrays() -> None:
    """Have glibc give every allocation over 256 KiB its own mapping, returned to the system
    on free. By default glibc raises that threshold after each large free (up to 32 MiB), so
    the many freed 10-40 MB arrays of an ingest and the analyses land in its heap, which
    fragments and stays resident (~45 MB more peak RSS on 5.6M accesses). Process-wide and
    once; a no-op where glibc is absent."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
    except (OSError, AttributeError):
        pass


def release_freed_memory() -> None:
    """Return the memory DuckDB has freed but keeps cached to the system now. Its allocator
    (jemalloc) keeps freed pages for a second or more, so an ingest's transient buffers would
    still be resident while the analyses allocate theirs; closing a database instance purges
    the cache of every instance in the process (DuckDB's cleanup on close), so closing a
    throwaway one does it on demand (about 140 MB at once on 5.6M accesses)."""
    duckdb.connect(config=DUCKDB_CONFIG).close()


def memory_connection() -> duckdb.DuckDBPyConnection:
    """A new in-memory database that compresses its tables (as a database file does) and is
    the connection's default catalog. DuckDB's default in-memory database keeps tables
    uncompressed: ~260 MB for 5.6M accesses and 2.4M blocks, against ~35 MB compressed."""
    con = duckdb.connect(config=DUCKDB_CONFIG)
    con.execute("ATTACH ':memory:' AS kvctrace (COMPRESS)")
    con.execute("USE kvctrace")
    return con


def _is_fresh_memory(con: duckdb.DuckDBPyConnection) -> bool:
    """True for a connection made by ``memory_connection`` that holds no tables yet."""
    rows = con.sql("SELECT current_database(), (SELECT count(*) FROM duckdb_tables() "
                   "WHERE database_name = current_database())").fetchall()
    return rows[0][0] == "kvctrace" and rows[0][1] == 0


def _offload_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Move a fresh in-memory store's table data to DuckDB's temporary storage (a private
    folder under the system temp directory, removed when the connection closes): the
    analyses work from the numpy arrays and read only the small requests table, and DuckDB
    reads any block back when a query needs it. A momentary 8 MB memory limit makes DuckDB
    evict its buffers; the limit is then reset. Saves ~30 MB resident on 5.6M accesses;
    best effort (kept in memory when DuckDB cannot evict)."""
    folder = Path(tempfile.gettempdir()) / f"kvctrace-duckdb-{os.getpid()}-{id(con):x}"
    try:
        con.execute("SET temp_directory = $dir", {"dir": str(folder)})
        con.execute("SET memory_limit = '8MB'")
    except duckdb.Error:
        pass
    finally:
        con.execute("RESET memory_limit")


def _insert(con, name: str, table) -> None:
    view = f"_kvctrace_ingest_{name}"
    con.register(view, table)
    try:
        con.execute(f"INSERT INTO {name} SELECT * FROM {view}")  # names are our constants
    finally:
        con.unregister(view)


def _write_tables(con: duckdb.DuckDBPyConnection, tables: dict, *, replace: bool) -> None:
    """Create the store and insert every table. A table may be given as a function returning
    it (or an iterator of Arrow chunks), so each big one is built just before its insert and
    freed right after (peak memory holds one at a time).

    Into a database that may hold an earlier store (a file), everything is one transaction:
    an interrupted ingest leaves no half-written tables. Into a fresh in-memory database
    (nobody else sees it; a failed ingest discards it) each table is committed and
    checkpointed on its own, which compresses it before the next one is built; inside one
    transaction all tables would wait uncompressed until the end."""
    fresh = not replace and _is_fresh_memory(con)

    def inserts():
        for name in TABLES:
            table = tables.pop(name)
            table = table() if callable(table) else table
            for chunk in (table if not isinstance(table, pa.Table) else (table,)):
                _insert(con, name, chunk)
                del chunk
                if fresh:  # compress this chunk before the next arrives
                    con.execute("CHECKPOINT")
            del table
            if fresh and name in ("accesses", "blocks"):
                release_freed_memory()  # ~30 ms each: once per big table, not per chunk

    if fresh:
        con.execute(load_query("store_create_tables"))
        inserts()
        _offload_tables(con)
        release_freed_memory()
        return
    con.execute("BEGIN TRANSACTION")
    try:
        if replace:
            con.execute(load_query("store_drop_tables"))
        con.execute(load_query("store_create_tables"))
        inserts()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# Accesses go into the store in pieces of about this many rows (split at request bounds), so
# the row arrays built for one piece stay small.
ACCESS_CHUNK_ROWS = 1 << 20
BLOCK_CHUNK_ROWS = 1 << 19  # blocks rows are ~2x wider


def _access_chunks(offsets: np.ndarray, dense: np.ndarray):
    """The accesses table as Arrow tables of about ACCESS_CHUNK_ROWS rows, in order."""
    n_req = offsets.shape[0] - 1
    cuts = np.searchsorted(offsets, np.arange(ACCESS_CHUNK_ROWS, offsets[-1], ACCESS_CHUNK_ROWS))
    cuts = np.unique(np.concatenate(([0], np.minimum(cuts, n_req), [n_req])))
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
        req_col, pos_col = access_rows(offsets[a:b + 1] - offsets[a])
        req_col += a
        yield pa.table({"req_id": req_col, "pos": pos_col, "block": dense[offsets[a]:offsets[b]]})


def _dense(ids: np.ndarray | None) -> tuple[np.ndarray, int, np.ndarray]:
    """(dense first-appearance ids, distinct count, raw id of each dense id as uint64). The
    caller can drop the raw per-access ids right after (the blocks table needs only these)."""
    if ids is None:
        return np.empty(0, np.int64), 0, np.empty(0, np.uint64)
    dense, n_unique = dense_ids(ids)
    raw = first_values(dense, ids, n_unique)
    raw = raw.view(np.uint64) if raw.dtype == np.int64 else raw.astype(np.uint64, copy=False)
    return dense, n_unique, raw


def _materialize(con, *, path: str, fmt: str, block_size: int, ts, input_len, output_len, line_no,
                 offsets, dense, n_unique: int, raw_hash, has_ids: bool, session_id=None,
                 parent_id=None, turn=None, type=None, meta: dict | None = None, rejects=(),
                 sorted_input: bool = True, replace: bool = False, extra: dict | None = None) -> Trace:
    """Prefix tree and tables for requests already in arrival order (ids made dense by
    ``_dense``)."""
    n = ts.shape[0]
    if not has_ids:
        offsets = np.zeros(n + 1, np.int64)

    def blocks():
        first_req, parent_block, depth, tokens, _ = prefix_tree(
            dense, offsets, n_unique, input_len, block_size, with_first_access=False)
        table = pa.table({"block": np.arange(n_unique, dtype=np.int32 if n_unique < 2**31 else np.int64),
                          "raw_hash": raw_hash,
                          "first_req": first_req, "parent_block": _nullable_int(parent_block),
                          "depth": depth, "tokens": tokens})
        del first_req, parent_block, depth, tokens
        # zero-copy slices: DuckDB's uncompressed copy of one slice at a time (see _write_tables)
        return (table.slice(start, BLOCK_CHUNK_ROWS) for start in range(0, max(n_unique, 1), BLOCK_CHUNK_ROWS))
    duration = float(ts[-1] - ts[0]) if n else 0.0
    rejects = list(rejects)
    meta = dict(meta or {})
    meta.update(format=fmt, block_size=str(block_size), kvctrace_version=_version(),
                sorted_input=json.dumps(bool(sorted_input)), rejected_lines=str(len(rejects)),
                has_block_ids=json.dumps(has_ids), requests=str(n), accesses=str(dense.shape[0]),
                unique_blocks=str(n_unique), duration_s=repr(duration))
    meta.setdefault("source_path", path)
    tables = {
        "requests": pa.table({
            "req_id": np.arange(n, dtype=np.int64), "ts": ts, "input_len": input_len,
            "output_len": output_len, "n_blocks": np.diff(offsets),
            "session_id": _strings(session_id, n),
            "parent_id": _nullable_int(parent_id) if parent_id is not None else pa.nulls(n, pa.int64()),
            "turn": pa.array(turn, pa.int64()) if turn is not None else pa.nulls(n, pa.int64()),
            "type": _strings(type, n), "line_no": line_no, **_request_extras(extra, n)}),
        "accesses": lambda: _access_chunks(offsets, dense),
        "blocks": blocks,
        "meta": pa.table({"key": list(meta), "value": [str(v) for v in meta.values()]}),
        "rejects": pa.table({"line_no": pa.array([r[0] for r in rejects], pa.int64()),
                             "raw": pa.array([r[1] for r in rejects], pa.string()),
                             "reason": pa.array([r[2] for r in rejects], pa.string())}),
    }
    _write_tables(con, tables, replace=replace)
    return Trace(path=path, format=fmt, block_size=block_size, con=con, offsets=offsets, blocks=dense,
                 ts=ts, input_len=input_len, output_len=output_len, n_unique_blocks=int(n_unique),
                 has_block_ids=has_ids, sorted_input=bool(sorted_input), rejected_lines=len(rejects),
                 meta=meta)


def trace_from_arrays(offsets, blocks, *, ts=None, input_len=None, output_len=None,
                      block_size=16, path="<arrays>", format="arrays", session_id=None, type=None):
    """A Trace from CSR arrays (requests taken in the given order; any integer block ids)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    raw = np.ascontiguousarray(blocks)
    if raw.dtype.kind not in "iu":
        raw = raw.astype(np.int64)
    n_req = offsets.shape[0] - 1
    n_blocks = np.diff(offsets)
    ts = np.zeros(n_req) if ts is None else np.asarray(ts, dtype=np.float64)
    if ts.shape[0]:
        ts = ts - ts[0]
    input_len = n_blocks * block_size if input_len is None else np.asarray(input_len, np.int64)
    output_len = np.zeros(n_req, np.int64) if output_len is None else np.asarray(output_len, np.int64)
    dense, n_unique, raw_hash = _dense(raw)
    return _materialize(memory_connection(), path=path, fmt=format, block_size=block_size, ts=ts,
                        input_len=input_len, output_len=output_len,
                        line_no=np.arange(1, n_req + 1, dtype=np.int64), offsets=offsets, dense=dense,
                        n_unique=n_unique, raw_hash=raw_hash, has_ids=True, session_id=session_id,
                        type=type)


# ---- ingest -----------------------------------------------------------------------------------

def _options_key(format, block_size, partial_block, coarsen, skip_bad_lines, tokenizer=None, chat_template=None) -> str:
    key = {"format": format, "block_size": block_size, "partial_block": partial_block,
           "coarsen": coarsen, "skip_bad_lines": bool(skip_bad_lines)}
    if tokenizer is not None or chat_template is not None:  # a text trace: which tokenizer, which files
        from .tokenize import fingerprint
        key["text"] = fingerprint(tokenizer, chat_template)
    return json.dumps(key, sort_keys=True)


def _order_requests(cols) -> tuple[np.ndarray | None, bool]:
    """Permutation to (timestamp, line) order, or None when the file is already in order."""
    ts = cols.ts
    if ts.shape[0] < 2 or bool((ts[1:] >= ts[:-1]).all()):
        return None, True
    return np.lexsort((cols.line_no, ts)), False


def ingest(path, *, format: str | None = None, block_size: int | None = None,
           partial_block: str | None = None, coarsen: int = 1, skip_bad_lines: bool = False,
           con: duckdb.DuckDBPyConnection | None = None, replace: bool = False,
           options_key: str | None = None, progress=None, tokenizer=None, chat_template=None) -> Trace:
    """Read a trace file and write the store into ``con`` (a new in-memory database if None).

    ``progress``: optional callable told the current stage (for a status line).
    ``partial_block`` None: the format's own default (drop for text traces, else include)."""
    stage = progress or (lambda text: None)
    stage("reading")
    map_large_arrays()
    if coarsen < 1:
        raise TraceFormatError(f"--coarsen must be >= 1, got {coarsen}", hint="e.g. --coarsen 4")
    cols, src = read_columns(path, format=format, block_size=block_size, partial_block=partial_block,
                             skip_bad_lines=skip_bad_lines, tokenizer=tokenizer, chat_template=chat_template,
                             progress=progress)
    key = options_key or _options_key(format, block_size, partial_block, coarsen, skip_bad_lines, tokenizer,
                                      chat_template)
    partial_block = partial_block or ("drop" if cols.partial_dropped else "include")
    stage("ordering and re-blocking")
    src.data = b""  # the decompressed text is no longer needed: free it before the big arrays
    order, sorted_input = _order_requests(cols)
    ts, input_len, output_len, line_no = cols.ts, cols.input_len, cols.output_len, cols.line_no
    offsets, ids = cols.offsets, cols.ids
    cols.ids = None  # the local below is the only reference: dropped once ids are dense
    session, typ, turn, parent_row = cols.session_id, cols.type, cols.turn, cols.parent_row
    extra = {name: column.take(pa.array(order)) for name, column in cols.extra.items()} if order is not None \
        else cols.extra
    if order is not None:
        ts, input_len, output_len, line_no = ts[order], input_len[order], output_len[order], line_no[order]
        if ids is not None:
            ids, offsets = gather_csr(ids, offsets, order)
        session = [session[i] for i in order.tolist()] if session is not None else None
        typ = [typ[i] for i in order.tolist()] if typ is not None else None
        turn = turn[order] if turn is not None else None
        if parent_row is not None:
            new_pos = np.empty_like(order)
            new_pos[order] = np.arange(order.shape[0])
            parent_row = parent_row[order]
            parent_row = np.where(parent_row >= 0, new_pos[np.maximum(parent_row, 0)], -1)
    ts = ts - ts[0]
    bs = cols.block_size
    if ids is not None and coarsen > 1:
        ids, offsets = coarsen_ids(ids, offsets, coarsen, "include")
    bs_eff = bs * coarsen
    if ids is not None and partial_block == "drop":
        keep = input_len // bs_eff
        if (np.diff(offsets) > keep).any():
            ids, offsets = truncate_csr(ids, offsets, keep)
    meta = {**cols.meta, "source_path": str(src.path), "source_name": src.path.name, "sha256": src.sha256.value(),
            "compression": src.compression, "source_block_size": str(bs), "coarsen": str(coarsen),
            "partial_block": partial_block, "skip_bad_lines": json.dumps(bool(skip_bad_lines)), "options": key}
    stage("dense ids, prefix tree, tables")
    has_ids = ids is not None
    dense, n_unique, raw_hash = _dense(ids)
    del ids
    return _materialize(con if con is not None else memory_connection(), path=str(src.path), fmt=cols.format,
                        block_size=bs_eff, ts=ts, input_len=input_len, output_len=output_len,
                        line_no=line_no, offsets=offsets, dense=dense, n_unique=n_unique,
                        raw_hash=raw_hash, has_ids=has_ids, session_id=session,
                        parent_id=parent_row, turn=turn, type=typ, meta=meta, rejects=cols.rejects,
                        sorted_input=sorted_input, replace=replace, extra=extra)


# ---- open -------------------------------------------------------------------------------------

def _connect(db: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(db))
    except duckdb.Error as err:
        raise KvctraceError(f"cannot open the DuckDB database ({err})".splitlines()[0], path=str(db),
                            hint="is another process using it? is it a DuckDB file?") from None


def _read_meta(con) -> dict | None:
    present = {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not set(TABLES) <= present:
        return None
    meta = dict(con.sql(load_query("store_meta")).fetchall())
    return meta if "kvctrace_version" in meta else None


def load_store(con, path: str) -> Trace:
    """A Trace from the tables of an existing store (no re-ingest)."""
    meta = _read_meta(con)
    if meta is None:
        raise KvctraceError("not a kvctrace database (no kvctrace tables/meta)", path=path,
                            hint="create one with: kvctrace ingest TRACE --db PATH")
    req = con.sql(load_query("store_load_requests")).to_arrow_table()
    n_blocks = req.column("n_blocks").to_numpy()
    offsets = np.zeros(n_blocks.shape[0] + 1, np.int64)
    np.cumsum(n_blocks, out=offsets[1:])
    has_ids = json.loads(meta.get("has_block_ids", "true"))
    blocks = (con.sql(load_query("store_load_accesses")).to_arrow_table().column("block").to_numpy()
              .astype(np.int64, copy=False) if has_ids else np.empty(0, np.int64))
    return Trace(path=meta.get("source_path", path), format=meta["format"], block_size=int(meta["block_size"]),
                 con=con, offsets=offsets, blocks=blocks,
                 ts=req.column("ts").to_numpy().astype(np.float64, copy=False),
                 input_len=req.column("input_len").to_numpy().astype(np.int64, copy=False),
                 output_len=req.column("output_len").to_numpy().astype(np.int64, copy=False),
                 n_unique_blocks=int(meta.get("unique_blocks", 0)), has_block_ids=has_ids,
                 sorted_input=json.loads(meta.get("sorted_input", "true")),
                 rejected_lines=int(meta.get("rejected_lines", 0)), meta=meta)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def open_trace(path, *, format: str | None = None, block_size: int | None = None,
               partial_block: str | None = None, coarsen: int = 1, skip_bad_lines: bool = False,
               db=None, progress=None, tokenizer=None, chat_template=None) -> Trace:
    """Ingest a trace file (or open a kvctrace ``.duckdb``) and return a ``Trace``.

    ``db``: a DuckDB file to write; if it already holds this trace ingested with the same
    options, it is opened as is. ``partial_block`` None: the format's own default (drop for
    text traces, else include). ``tokenizer`` / ``chat_template``: for text traces
    (docs/text-inputs.md); part of the options that decide whether ``db`` is re-used."""
    text = {"tokenizer": tokenizer, "chat_template": chat_template}
    path = Path(path)
    if path.is_file() and is_duckdb_file(path):
        if db is not None and Path(db).resolve() != path.resolve():
            raise KvctraceError("the trace is already a DuckDB database; --db does not apply", path=str(path),
                                hint="drop --db, or pass the original trace file")
        given = {"--format": format is not None, "--block-size": block_size is not None,
                 "--partial-block": partial_block not in (None, "include"), "--coarsen": coarsen != 1,
                 "--skip-bad-lines": bool(skip_bad_lines), "--tokenizer": tokenizer is not None,
                 "--chat-template": chat_template is not None}
        if any(given.values()):
            raise KvctraceError(f"{', '.join(k for k, v in given.items() if v)} apply when a trace file is ingested, "
                                "not to an existing database", path=str(path),
                                hint="re-ingest the original trace with these options (kvctrace ingest TRACE --db PATH ...)")
        return load_store(_connect(path), str(path))
    key = _options_key(format, block_size, partial_block, coarsen, skip_bad_lines, tokenizer, chat_template)
    if db is None:
        return ingest(path, format=format, block_size=block_size, partial_block=partial_block,
                      coarsen=coarsen, skip_bad_lines=skip_bad_lines, options_key=key, progress=progress, **text)
    db = Path(db)
    if db.exists() and not is_duckdb_file(db):
        raise KvctraceError("--db exists and is not a DuckDB database", path=str(db),
                            hint="choose a new file name ending in .duckdb")
    con = _connect(db)
    try:
        meta = _read_meta(con)
        if meta is None and con.sql("SELECT count(*) FROM duckdb_tables()").fetchall()[0][0]:
            raise KvctraceError("--db holds tables that kvctrace did not write; refusing to overwrite them",
                                path=str(db), hint="choose a new database file")
        if (meta is not None and path.is_file() and meta.get("options") == key
                and meta.get("kvctrace_version") == _version() and meta.get("sha256") == _file_sha256(path)):
            return load_store(con, str(db))
        return ingest(path, format=format, block_size=block_size, partial_block=partial_block, coarsen=coarsen,
                      skip_bad_lines=skip_bad_lines, con=con, replace=meta is not None, options_key=key,
                      progress=progress, **text)
    except BaseException:
        con.close()
        raise
