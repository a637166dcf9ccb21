"""The store's tables, written from arrays: dense block ids, the prefix tree (the ``blocks``
table, the one construction of the tree in kvctrace), and the ``requests``, ``accesses``,
``meta`` and ``rejects`` tables (schema: ``queries/store_create_tables.sql``).

``materialize`` writes them (into memory: views now, tables on first use) and returns the
fields of a ``Trace``: ``Trace.from_arrays`` (via
``store_arrays``) and the ingest (``store.py``) build their ``Trace`` from those fields. This
module sits below trace.py and store.py, so neither imports the other to write a store.

All bulk data moves as Arrow tables registered with DuckDB; no per-access Python loops."""
from __future__ import annotations

import json
import tempfile
import weakref

import duckdb
import numpy as np
import pyarrow as pa

from ._version import __version__
from .errors import KvctraceError
from .kernels.dense_stream import DenseIdMap
from .kernels.arrays import id_type
from .kernels.hashing import dense_ids
from .kernels.tree import access_rows, first_values, prefix_tree
from .memory import DUCKDB_CONFIG, offload_table_data, release_freed_memory
from .sql import load_query

TABLES = ("requests", "accesses", "blocks", "meta", "rejects")

# Accesses go into the store in pieces of about this many rows (split at request bounds), so
# the row arrays built for one piece stay small.
ACCESS_CHUNK_ROWS = 1 << 20
BLOCK_CHUNK_ROWS = 1 << 19  # blocks rows are ~2x wider
TREE_COLUMNS = ("parent", "depth", "first_req", "tokens")
STREAM_DUCKDB_MEMORY = "128MB"  # DuckDB's memory limit while a streamed ingest writes (TableStream)


def kvctrace_version() -> str:
    """The version recorded in (and checked against) a store's meta table."""
    return __version__


def memory_connection() -> duckdb.DuckDBPyConnection:
    """A new in-memory database that compresses its tables (as a database file does) and is
    the connection's default catalog. DuckDB's default in-memory database keeps tables
    uncompressed: ~260 MB for 5.6M accesses and 2.4M blocks, against ~35 MB compressed."""
    con = duckdb.connect(config=DUCKDB_CONFIG)
    con.execute("ATTACH ':memory:' AS kvctrace (COMPRESS)")
    con.execute("USE kvctrace")
    return con


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
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return _arrow(values).cast(pa.string())
    return pa.array(values, pa.string()) if values is not None else pa.nulls(n, pa.string())


# The request columns a reader may add (``Columns.extra``) beyond the fixed ones of
# queries/store_create_tables.sql, declared once here: name -> (Arrow type, DuckDB type). Every
# store has all of them (NULL where its reader has none), so SQL and the analyses can rely on
# them; a reader fills those it knows (docs/data-model.md says which).
REQUEST_EXTRAS = {
    "tokens": (pa.large_list(pa.int32()), "INTEGER[]"),        # text and token traces: the prompt's tokens
    "msg_offsets": (pa.large_list(pa.int32()), "INTEGER[]"),   # chat logs: token offset of each message
    "msg_roles": (pa.list_(pa.string()), "VARCHAR[]"),         # chat logs: role of each message
    "cached_tokens": (pa.int64(), "BIGINT"),                   # the server's reported cached prompt tokens
    "reported_prompt_tokens": (pa.int64(), "BIGINT"),          # the server's reported prompt tokens
    "model": (pa.string(), "VARCHAR"),
    "request_id": (pa.string(), "VARCHAR"),                    # the trace's own request id (lmcache, servegen)
    "think_time": (pa.float64(), "DOUBLE"),                    # kv-cache-tester: s before the request
    "api_time": (pa.float64(), "DOUBLE"),                      # kv-cache-tester: s the API call took
    "prefix_shared_tokens": (pa.int64(), "BIGINT"),            # ingest, when tokens are kept: token-exact
    "prefix_match_req": (pa.int64(), "BIGINT"),                # shared prefix and its earliest request
}


def _arrow(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return pa.concat_arrays(values.chunks) if values.num_chunks != 1 else values.chunk(0)
    return values if isinstance(values, pa.Array) else pa.array(values)


def request_extras(extra: dict | None, n: int) -> dict:
    """Every ``REQUEST_EXTRAS`` column as an Arrow array of its declared type (nulls where
    ``extra`` has none); a name not declared there is a programming error."""
    extra = extra or {}
    unknown = set(extra) - set(REQUEST_EXTRAS)
    if unknown:
        raise KvctraceError(f"request columns {sorted(unknown)} are not declared in tables.REQUEST_EXTRAS",
                            hint="declare a reader's extra request columns there")
    return {name: _arrow(extra[name]).cast(kind) if name in extra else pa.nulls(n, kind)
            for name, (kind, _) in REQUEST_EXTRAS.items()}


def _create_tables(con) -> None:
    con.execute(load_query("store_create_tables"))
    for name, (_, duck_type) in REQUEST_EXTRAS.items():  # names and types are our constants
        con.execute(f"ALTER TABLE requests ADD COLUMN {name} {duck_type}")


def _is_fresh_memory(con: duckdb.DuckDBPyConnection) -> bool:
    """True for a connection made by ``memory_connection`` that holds no tables yet."""
    rows = con.sql("SELECT current_database(), (SELECT count(*) FROM duckdb_tables() "
                   "WHERE database_name = current_database()), (SELECT path FROM duckdb_databases() "
                   "WHERE database_name = current_database())").fetchall()
    # a file named kvctrace.duckdb has that database name too: in memory means no path
    return rows[0][0] == "kvctrace" and rows[0][1] == 0 and rows[0][2] is None


def _insert(con, name: str, table) -> None:
    view = f"_kvctrace_ingest_{name}"
    con.register(view, table)
    try:
        con.execute(f"INSERT INTO {name} SELECT * FROM {view}")  # names are our constants
    finally:
        try:
            con.unregister(view)
        except duckdb.Error:  # an insert interrupted (Ctrl-C) aborted the transaction: the
            pass              # error that matters is the one propagating; the store is discarded


def write_tables(con: duckdb.DuckDBPyConnection, tables: dict, *, replace: bool) -> None:
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
        _create_tables(con)
        inserts()
        offload_table_data(con)
        release_freed_memory()
        return
    con.execute("BEGIN TRANSACTION")
    try:
        if replace:
            con.execute(load_query("store_drop_tables"))
        _create_tables(con)
        inserts()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# ---- in-memory stores: views now, tables on first use ---------------------------------------
# Writing the tables is most of an in-memory ingest's time (0.7 s of 3.7 s on 5.6M accesses)
# and `kvctrace analyze` reads none of them: the analyses work from the arrays, and their SQL
# reads only the requests table. So an in-memory ingest registers the requests, meta and
# rejects tables as views over its Arrow data (DuckDB scans it in place; an absent column is a
# typed NULL in the view, not a column of nulls in memory) and writes the five tables on the
# first use of the connection (``Trace.con``; ``write_pending_tables``). What is still to write
# belongs to the connection, not to a ``Trace`` object: every copy of a trace (dataclasses.replace,
# a Ray worker's) sees the same database.

# The declared type of each fixed requests column, in table order (the schema is
# queries/store_create_tables.sql; tests/test_store.py checks that the two agree).
REQUEST_COLUMNS = {"req_id": "BIGINT", "ts": "DOUBLE", "input_len": "BIGINT", "output_len": "BIGINT",
                   "n_blocks": "BIGINT", "session_id": "VARCHAR", "parent_id": "BIGINT", "turn": "BIGINT",
                   "type": "VARCHAR", "line_no": "BIGINT"}
VIEWS = ("requests", "meta", "rejects")
_REQUEST_DATA = "_kvctrace_request_data"


class SpilledArray:
    """A numpy array kept in an anonymous temporary file until ``load()``: the raw block ids
    the blocks table needs (8 bytes per distinct block) are not resident until it is written."""

    def __init__(self, array: np.ndarray):
        self.dtype, self.size = array.dtype, array.shape[0]
        self.file = tempfile.TemporaryFile(prefix="kvctrace-")  # removed when closed
        array.tofile(self.file)
        self.file.flush()

    def load(self) -> np.ndarray:
        self.file.seek(0)
        array = np.fromfile(self.file, self.dtype, count=self.size)
        self.file.close()
        return array


def _register_views(con, requests: pa.Table, meta: pa.Table, rejects: pa.Table) -> None:
    """The requests, meta and rejects tables as views over Arrow tables. ``requests`` holds
    the columns with data; the view gives every column of the table, with its type."""
    con.register(_REQUEST_DATA, requests)
    declared = {**REQUEST_COLUMNS, **{name: duck for name, (_, duck) in REQUEST_EXTRAS.items()}}
    present = set(requests.column_names)
    columns = ", ".join(f"CAST({name if name in present else 'NULL'} AS {duck}) AS {name}"
                        for name, duck in declared.items())  # names and types are our constants
    con.execute(f"CREATE TEMP VIEW requests AS SELECT {columns} FROM {_REQUEST_DATA}")
    con.register("meta", meta)
    con.register("rejects", rejects)


_PENDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> its tables' writer


def has_pending_tables(con) -> bool:
    """Whether ``con`` is an in-memory store that has not written its tables yet."""
    return con is not None and con in _PENDING


def write_pending_tables(con) -> None:
    """Write the tables of an in-memory store in place of its views (a no-op for any other
    connection, and once written)."""
    write = _PENDING.pop(con, None) if con is not None else None
    if write is not None:
        write(con)


def drop_pending_tables(con) -> None:
    """Forget the tables ``con`` would write (it is being closed: nobody can read them)."""
    if con is not None:
        _PENDING.pop(con, None)


def _tables_writer(big_tables: dict):
    """A function of the connection writing the store's tables in place of the views (then
    compressed and offloaded as any in-memory ingest's): called once, on first use of the
    connection. It holds no reference to the connection (a value of ``_PENDING`` that did
    would keep its weak key alive, and the trace's arrays with it)."""
    def write(con) -> None:
        tables = {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in VIEWS}  # noqa: S608
        con.execute("DROP VIEW requests")
        for name in (_REQUEST_DATA, "meta", "rejects"):
            con.unregister(name)
        write_tables(con, {**tables, **big_tables}, replace=False)
    return write


def _access_chunks(offsets: np.ndarray, dense: np.ndarray):
    """The accesses table as Arrow tables of about ACCESS_CHUNK_ROWS rows, in order."""
    n_req = offsets.shape[0] - 1
    cuts = np.searchsorted(offsets, np.arange(ACCESS_CHUNK_ROWS, offsets[-1], ACCESS_CHUNK_ROWS))
    cuts = np.unique(np.concatenate(([0], np.minimum(cuts, n_req), [n_req])))
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
        req_col, pos_col = access_rows(offsets[a:b + 1] - offsets[a])
        req_col += a
        yield pa.table({"req_id": req_col, "pos": pos_col, "block": dense[offsets[a]:offsets[b]]})


def dense_block_ids(ids: np.ndarray | None) -> tuple[np.ndarray, int, np.ndarray]:
    """(dense first-appearance ids, distinct count, raw id of each dense id as uint64). The
    caller can drop the raw per-access ids right after (the blocks table needs only these)."""
    if ids is None:
        return np.empty(0, np.int32), 0, np.empty(0, np.uint64)
    dense, n_unique = dense_ids(ids, dtype=id_type(ids.shape[0]))  # int32: 4 bytes per access
    raw = first_values(dense, ids, n_unique)
    raw = raw.view(np.uint64) if raw.dtype == np.int64 else raw.astype(np.uint64, copy=False)
    return dense, n_unique, raw


def _blocks_chunks(dense, offsets, n_unique: int, raw_hash, input_len, block_size: int):
    """The blocks table (the prefix tree) as zero-copy slices: DuckDB makes its uncompressed
    copy of one slice at a time (see write_tables)."""
    first_req, parent_block, depth, tokens, _ = prefix_tree(
        dense, offsets, n_unique, input_len, block_size, with_first_access=False)
    table = pa.table({"block": np.arange(n_unique, dtype=np.int32 if n_unique < 2**31 else np.int64),
                      "raw_hash": raw_hash,
                      "first_req": first_req, "parent_block": _nullable_int(parent_block),
                      "depth": depth, "tokens": tokens})
    del first_req, parent_block, depth, tokens
    return (table.slice(start, BLOCK_CHUNK_ROWS) for start in range(0, max(n_unique, 1), BLOCK_CHUNK_ROWS))


def _requests_table(n: int, ts, input_len, output_len, offsets, line_no, session_id, parent_id,
                    turn, type, extra, present_only: bool = False) -> pa.Table:
    """The requests table; ``present_only``: only the columns a trace has (the view adds the
    others as NULL)."""
    columns = {
        "req_id": np.arange(n, dtype=np.int64), "ts": ts, "input_len": input_len,
        "output_len": output_len, "n_blocks": np.diff(offsets),
        "session_id": _strings(session_id, n) if session_id is not None else None,
        "parent_id": _nullable_int(parent_id) if parent_id is not None else None,
        "turn": None if turn is None else _arrow(turn).cast(pa.int64()) if isinstance(turn, (pa.Array, pa.ChunkedArray))
        else pa.array(turn, pa.int64()),
        "type": _strings(type, n) if type is not None else None, "line_no": line_no}
    if present_only:
        if n < 2**31 - 1:  # counts and numbers the view casts back to BIGINT: 4 bytes each here
            for name in ("req_id", "n_blocks", "line_no"):
                columns[name] = np.asarray(columns[name]).astype(np.int32)
        return pa.table({**{k: v for k, v in columns.items() if v is not None},
                         **{k: _arrow(v) for k, v in (extra or {}).items()}})
    nulls = {"session_id": pa.string(), "parent_id": pa.int64(), "turn": pa.int64(), "type": pa.string()}
    return pa.table({**{k: v if v is not None else pa.nulls(n, nulls[k]) for k, v in columns.items()},
                     **request_extras(extra, n)})


def _raw_bytes(raw) -> bytes:
    return raw if isinstance(raw, bytes) else str(raw).encode("utf-8", errors="surrogateescape")


def _rejects_table(rejects: list) -> pa.Table:
    """(line_no, raw, reason) tuples, raw as bytes (or text): kept exactly in ``raw_bytes``,
    and readable in ``raw`` (invalid UTF-8 as U+FFFD, a CR before the newline dropped)."""
    raw = [_raw_bytes(r[1]) for r in rejects]
    return pa.table({"line_no": pa.array([r[0] for r in rejects], pa.int64()),
                     "raw": pa.array([b.decode("utf-8", errors="replace").rstrip("\r") for b in raw], pa.string()),
                     "reason": pa.array([r[2] for r in rejects], pa.string()),
                     "raw_bytes": pa.array(raw, pa.binary())})


def store_meta(meta: dict | None, *, path: str, fmt: str, block_size: int, sorted_input: bool, n_rejects: int,
               has_ids: bool, ts: np.ndarray, n_accesses: int, n_unique: int) -> dict:
    """The ``meta`` table's rows: the reader's and ingest's facts plus the store's counts."""
    n = ts.shape[0]
    meta = dict(meta or {})
    meta.update(format=fmt, block_size=str(block_size), kvctrace_version=kvctrace_version(),
                sorted_input=json.dumps(bool(sorted_input)), rejected_lines=str(n_rejects),
                has_block_ids=json.dumps(has_ids), requests=str(n), accesses=str(int(n_accesses)),
                unique_blocks=str(int(n_unique)), duration_s=repr(float(ts[-1] - ts[0]) if n else 0.0))
    meta.setdefault("source_path", path)
    return meta


def materialize(con, *, path: str, fmt: str, block_size: int, ts, input_len, output_len, line_no,
                offsets, dense, n_unique: int, raw_hash, has_ids: bool, session_id=None,
                parent_id=None, turn=None, type=None, meta: dict | None = None, rejects=(),
                sorted_input: bool = True, replace: bool = False, extra: dict | None = None) -> dict:
    """Write the tables for requests already in arrival order (ids made dense by
    ``dense_block_ids``) and return the fields of their ``Trace``. ``extra``: more request
    columns (``REQUEST_EXTRAS`` names, in arrival order)."""
    n = ts.shape[0]
    if not has_ids:
        offsets = np.zeros(n + 1, np.int64)
    rejects = list(rejects)
    meta = store_meta(meta, path=path, fmt=fmt, block_size=block_size, sorted_input=sorted_input,
                      n_rejects=len(rejects), has_ids=has_ids, ts=ts, n_accesses=dense.shape[0], n_unique=n_unique)
    views = not replace and _is_fresh_memory(con)  # in memory: views now, tables on first use
    # until the blocks table is written, the raw ids wait in a temporary file, not in RAM
    raw = SpilledArray(raw_hash) if views else raw_hash
    del raw_hash
    requests = _requests_table(n, ts, input_len, output_len, offsets, line_no, session_id,
                               parent_id, turn, type, extra, present_only=views)
    small = {"meta": pa.table({"key": list(meta), "value": [str(v) for v in meta.values()]}),
             "rejects": _rejects_table(rejects)}
    big = {"accesses": lambda: _access_chunks(offsets, dense),
           "blocks": lambda: _blocks_chunks(dense, offsets, n_unique, raw.load() if views else raw,
                                            input_len, block_size)}
    if views:
        _register_views(con, requests, **small)
        _PENDING[con] = _tables_writer(big)
    else:
        write_tables(con, {"requests": requests, **small, **big}, replace=replace)
    del requests, small
    return dict(path=path, format=fmt, block_size=block_size, con=con, offsets=offsets, blocks=dense,
                ts=ts, input_len=input_len, output_len=output_len, n_unique_blocks=int(n_unique),
                has_block_ids=has_ids, sorted_input=bool(sorted_input), rejected_lines=len(rejects),
                meta=meta)


def store_arrays(offsets, blocks, *, ts=None, input_len=None, output_len=None, block_size=16,
                 path="<arrays>", format="arrays", session_id=None, type=None) -> dict:
    """The fields of a ``Trace`` stored from CSR arrays (requests taken in the given order;
    any integer block ids), in a new in-memory database."""
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
    dense, n_unique, raw_hash = dense_block_ids(raw)
    return materialize(memory_connection(), path=path, fmt=format, block_size=block_size, ts=ts,
                       input_len=input_len, output_len=output_len,
                       line_no=np.arange(1, n_req + 1, dtype=np.int64), offsets=offsets, dense=dense,
                       n_unique=n_unique, raw_hash=raw_hash, has_ids=True, session_id=session_id,
                       type=type)


def read_tree(con: duckdb.DuckDBPyConnection, n_unique: int) -> dict[str, np.ndarray]:
    """The prefix tree as the ingest stored it (the ``blocks`` table): ``parent`` (-1 at a
    root), ``depth``, ``first_req`` and ``tokens``, int32 per dense block id. Streamed a
    batch at a time into the arrays, so the read holds no second full-size copy."""
    out = {name: np.empty(n_unique, np.int32) for name in TREE_COLUMNS}
    filled = 0
    for batch in con.sql(load_query("store_tree")).to_arrow_reader(1 << 17):
        ids = batch.column("block").to_numpy()
        if np.array_equal(ids, np.arange(filled, filled + ids.shape[0], dtype=ids.dtype)):
            where = slice(filled, filled + ids.shape[0])  # rows in block order, as inserted
        elif ids.shape[0] and 0 <= int(ids.min()) and int(ids.max()) < n_unique:
            where = ids
        else:
            filled = -1
            break
        for name in TREE_COLUMNS:
            out[name][where] = batch.column(name).to_numpy()
        filled += batch.num_rows
    if filled != n_unique:
        raise KvctraceError(f"the store's blocks table does not hold the {n_unique:,} blocks its meta names",
                            hint="re-ingest the trace")
    return out


def read_rejects(con: duckdb.DuckDBPyConnection, limit: int = 0) -> tuple[int, list[dict]]:
    """(number of rejected lines, the first ``limit`` of them (0: all) in line order), each
    ``{"line", "reason", "raw", "raw_bytes"}``; a store written before ``raw_bytes`` existed
    gives its text encoded."""
    columns = {r[0] for r in con.sql("SELECT column_name FROM duckdb_columns() "
                                     "WHERE table_name = 'rejects' AND database_name = current_database()").fetchall()}
    raw_bytes = "raw_bytes" if "raw_bytes" in columns else "NULL"
    total = con.sql("SELECT count(*) FROM rejects").fetchall()[0][0]
    rows = con.sql(f"SELECT line_no, reason, raw, {raw_bytes} FROM rejects ORDER BY line_no"  # noqa: S608 - a constant
                   + (" LIMIT $n" if limit else ""), params={"n": limit} if limit else None).fetchall()
    return int(total), [{"line": line, "reason": reason, "raw": raw,
                         "raw_bytes": data if data is not None else (raw or "").encode("utf-8")}
                        for line, reason, raw, data in rows]



class TableStream:
    """The tables of a streamed ingest (``store.py``), written while the requests arrive in
    arrival order, a batch at a time: each batch's accesses, and the prefix-tree rows of the
    blocks it shows first (dense ids are first-appearance ids, so a batch's new blocks are
    the next ids, in order). Between batches it holds only the dense-id map
    (``kernels.dense_stream.DenseIdMap``) and two counters.

    For a new database file only (``store._ingest_new_file`` renames it into place once
    complete): each insert commits on its own, since DuckDB keeps a transaction's inserted
    rows in memory until it commits (about 45 bytes per access), not bounded."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, block_size: int):
        self.con, self.block_size = con, block_size
        self.ids = DenseIdMap()
        self.n_requests = self.n_accesses = 0
        # DuckDB keeps the blocks it has written in its buffer pool up to its memory limit (80% of
        # the machine's memory by default): they are on disk, so a small pool loses nothing here
        con.execute(f"SET memory_limit = '{STREAM_DUCKDB_MEMORY}'")
        for name, value in DUCKDB_CONFIG.items():  # and returns what it frees (memory.py)
            con.execute(f"SET {name} = {value!r}")
        _create_tables(con)

    def add(self, keys: np.ndarray, offsets: np.ndarray, input_len: np.ndarray) -> None:
        """The next requests in arrival order: their block ids (CSR ``keys``, ``offsets``
        from 0) and input lengths."""
        seen = self.ids.count
        dense = self.ids.map(keys)
        first_req, parent, depth, tokens, first_access = prefix_tree(
            dense - seen, offsets, self.ids.count - seen, input_len, self.block_size)
        raw = np.ascontiguousarray(keys[first_access])
        parent = np.where(depth > 0, parent.astype(np.int64) + seen, -1)  # ids of earlier batches are < 0 here
        req_col, pos_col = access_rows(offsets)
        req_col += self.n_requests
        _insert(self.con, "accesses", pa.table({"req_id": req_col, "pos": pos_col, "block": dense}))
        del req_col, pos_col
        _insert(self.con, "blocks", pa.table({
            "block": np.arange(seen, self.ids.count, dtype=np.int64),
            "raw_hash": raw.view(np.uint64) if raw.dtype == np.int64 else raw.astype(np.uint64),
            "first_req": first_req.astype(np.int64) + self.n_requests, "parent_block": _nullable_int(parent),
            "depth": depth, "tokens": tokens}))
        self.n_requests += offsets.shape[0] - 1
        self.n_accesses += dense.shape[0]

    def finish(self, requests: dict, meta: dict, rejects: list) -> None:
        """Write the requests (the arguments of ``_requests_table``), meta and rejects."""
        # one insert of every request (10M rows with their labels and list columns) needs more
        # than the writing pool: DuckDB's default limit again (a 300M-access trace failed here)
        self.con.execute("RESET memory_limit")
        _insert(self.con, "requests", _requests_table(**requests))
        _insert(self.con, "meta", pa.table({"key": list(meta), "value": [str(v) for v in meta.values()]}))
        _insert(self.con, "rejects", _rejects_table(rejects))
