"""DuckDB store: ingest and open.

``open_trace(path)`` reads a trace file (``formats``), orders requests by (timestamp, line),
re-blocks (``--coarsen``, ``--partial-block drop``), maps block ids to dense first-appearance
ids, and has ``tables.materialize`` fill the prefix tree and write the tables (in ONE
transaction into a database file: an interrupted ingest leaves no half-written tables). In
memory by default; ``db=PATH`` writes a file, and a file that already holds the same trace
(sha256) ingested with the same options is opened instead of re-ingested.
``open_trace("x.duckdb")`` opens a kvctrace database directly."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pyarrow as pa

from .errors import KvctraceError, TraceFormatError
from .formats import read_columns
from .formats.common import MAX_TOKENS
from .formats.containers import trace_sha256
from .formats.source import is_duckdb_file
from .kernels.hashing import coarsen as coarsen_ids
from .kernels.tree import gather_csr, truncate_csr
from .memory import map_large_arrays
from .spool import Spool, arrival_batches, dense_in_batches
from .sql import load_query
from .tables import TABLES, dense_block_ids, kvctrace_version, materialize, memory_connection
from .trace import Trace


# ---- ingest -----------------------------------------------------------------------------------

def _options_key(format, block_size, partial_block, coarsen, skip_bad_lines, tokenizer=None, chat_template=None,
                 session_start=None, seed=0) -> str:
    key = {"format": format, "block_size": block_size, "partial_block": partial_block,
           "coarsen": coarsen, "skip_bad_lines": bool(skip_bad_lines),
           "session_start": session_start, "seed": seed}
    if tokenizer is not None or chat_template is not None:  # a text trace: which tokenizer, which files
        from .tokenize import fingerprint
        key["text"] = fingerprint(tokenizer, chat_template)
    return json.dumps(key, sort_keys=True)


def _prefix_columns(offsets, dense, n_unique: int, block_size: int, input_len, tokens: pa.Array) -> dict:
    """``prefix_shared_tokens`` and ``prefix_match_req``: each request's token-exact longest
    prefix shared with an earlier request and the earliest such request
    (``kernels.divergence.token_prefix``), computed while the tokens are in memory so that the
    divergence analysis need not read them back. Left out when a request's ``input_len`` is not
    its token count (the analysis then reads the tokens)."""
    from .kernels.divergence import token_prefix
    tokens = pa.concat_arrays(tokens.chunks) if isinstance(tokens, pa.ChunkedArray) else tokens
    if tokens.offset != 0 or tokens.null_count:
        return {}
    token_offsets = np.asarray(tokens.offsets).astype(np.int64, copy=False)
    values = np.asarray(tokens.values)[token_offsets[0]:token_offsets[-1]]
    token_offsets = token_offsets - token_offsets[0]
    if not np.array_equal(np.diff(token_offsets), input_len):
        return {}
    shared, match = token_prefix(offsets, dense, n_unique, block_size, values, token_offsets)
    return {"prefix_shared_tokens": pa.array(shared), "prefix_match_req": pa.array(match)}


def _order_requests(cols) -> tuple[np.ndarray | None, bool]:
    """Permutation to (timestamp, line) order, or None when the file is already in order."""
    ts = cols.ts
    if ts.shape[0] < 2 or bool((ts[1:] >= ts[:-1]).all()):
        return None, True
    return np.lexsort((cols.line_no, ts)), False


def ingest(path, *, format: str | None = None, block_size: int | None = None,
           partial_block: str | None = None, coarsen: int = 1, skip_bad_lines: bool = False,
           con: duckdb.DuckDBPyConnection | None = None, replace: bool = False,
           options_key: str | None = None, progress=None, tokenizer=None, chat_template=None,
           session_start: str | None = None, seed: int = 0) -> Trace:
    """Read a trace file (or a folder of kv-cache-tester conversations) and write the store
    into ``con`` (a new in-memory database if None).

    ``progress``: optional callable told the current stage (for a status line).
    ``partial_block`` None: the format's own default (drop for text traces, else include).
    ``session_start``, ``seed``: where separate conversations start on the time line."""
    stage = progress or (lambda text: None)
    stage("reading")
    map_large_arrays()
    if coarsen < 1:
        raise TraceFormatError(f"--coarsen must be >= 1, got {coarsen}", hint="e.g. --coarsen 4")
    key = options_key or _options_key(format, block_size, partial_block, coarsen, skip_bad_lines, tokenizer,
                                      chat_template, session_start, seed)
    if con is None:  # in memory: a file bigger than one chunk is never held whole either
        from .formats.stream import stream_columns
        read = stream_columns(path, format=format, block_size=block_size, partial_block=partial_block,
                              skip_bad_lines=skip_bad_lines, progress=progress, session_start=session_start,
                              seed=seed)
        if read is not None:
            return _ingest_chunks_in_memory(read, coarsen=coarsen, partial_block=partial_block,
                                            skip_bad_lines=skip_bad_lines, key=key, stage=stage)
    cols, src = read_columns(path, format=format, block_size=block_size, partial_block=partial_block,
                             skip_bad_lines=skip_bad_lines, tokenizer=tokenizer, chat_template=chat_template,
                             progress=progress, session_start=session_start, seed=seed)
    if cols.block_size * coarsen > MAX_TOKENS:
        raise TraceFormatError(f"--coarsen {coarsen} makes blocks of {cols.block_size * coarsen:,} tokens, "
                               f"above the limit of {MAX_TOKENS:,}", hint="use a smaller --coarsen")
    partial_block = partial_block or ("drop" if cols.partial_dropped else "include")
    stage("ordering and re-blocking")
    src.data = b""  # the decompressed text is no longer needed: free it before the big arrays
    order, sorted_input = _order_requests(cols)
    offsets, ids = cols.offsets, cols.ids
    cols.ids = None  # the local below is the only reference: dropped once ids are dense
    req = _arrival_order(order, _request_columns(cols))
    if order is not None and ids is not None:
        ids, offsets = gather_csr(ids, offsets, order)
    bs = cols.block_size
    if ids is not None:
        ids, offsets = _reblock(ids, offsets, req["input_len"], bs, coarsen, partial_block)
    meta = _ingest_meta(cols.meta, src.path, src.sha256.value(), src.compression, bs, coarsen, partial_block,
                        skip_bad_lines, key)
    stage("dense ids")
    blocks = None if ids is None else dense_block_ids(ids)
    del ids
    return _stored(con, blocks, offsets, req, path=str(src.path), fmt=cols.format, block_size=bs * coarsen, meta=meta,
                   rejects=cols.rejects, sorted_input=sorted_input, replace=replace, stage=stage)


def _stored(con, blocks: tuple | None, offsets, req: dict, *, block_size: int, stage, **fields) -> Trace:
    """The Trace of requests in arrival order (``req``: ``_arrival_order``'s columns) and
    their blocks (``tables.dense_block_ids``' (dense ids, distinct count, raw id of each);
    None: a lengths-only trace), stored into ``con`` (None: a new in-memory database)."""
    stage("prefix tree, tables")
    has_ids = blocks is not None
    dense, n_unique, raw_hash = blocks if has_ids else dense_block_ids(None)
    del blocks
    extra = req.pop("extra")
    if has_ids and "tokens" in extra:
        extra.update(_prefix_columns(offsets, dense, n_unique, block_size, req["input_len"], extra["tokens"]))
    return Trace(**materialize(con if con is not None else memory_connection(), block_size=block_size,
                               offsets=offsets, dense=dense, n_unique=n_unique, raw_hash=raw_hash, has_ids=has_ids,
                               extra=extra, **fields, **req))


def _request_columns(cols) -> dict:
    """The per-request columns of ``cols`` under ``materialize``'s names (rows in file order)."""
    return {"ts": cols.ts, "input_len": cols.input_len, "output_len": cols.output_len, "line_no": cols.line_no,
            "session_id": cols.session_id, "type": cols.type, "turn": cols.turn, "parent_id": cols.parent_row,
            "extra": {name: values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
                      for name, values in cols.extra.items()}}


def _arrival_order(order: np.ndarray | None, req: dict) -> dict:
    """Request columns (numpy arrays, Arrow arrays or lists; None where absent) reordered by
    ``order`` (None: already in order), the parent rows renumbered, and ``ts`` counted from
    the first request."""
    if order is not None:
        def take(values):
            if values is None:
                return None
            if isinstance(values, (pa.Array, pa.ChunkedArray)):
                return values.take(pa.array(order))
            return [values[i] for i in order.tolist()] if isinstance(values, list) else values[order]
        parent_row = req["parent_id"]
        req = {name: ({k: take(v) for k, v in values.items()} if name == "extra" else take(values))
               for name, values in req.items()}
        if parent_row is not None:
            new_pos = np.empty_like(order)
            new_pos[order] = np.arange(order.shape[0])
            req["parent_id"] = np.where(req["parent_id"] >= 0, new_pos[np.maximum(req["parent_id"], 0)], -1)
    req["ts"] = req["ts"] - req["ts"][0]
    return req


def _reblock(ids, offsets, input_len, block_size: int, coarsen: int, partial_block: str):
    """``--coarsen`` and ``--partial-block drop`` applied to each request's block ids."""
    if coarsen > 1:
        ids, offsets = coarsen_ids(ids, offsets, coarsen, "include")
    if partial_block == "drop":
        keep = input_len // (block_size * coarsen)
        if (np.diff(offsets) > keep).any():
            ids, offsets = truncate_csr(ids, offsets, keep)
    return ids, offsets


def _ingest_meta(reader_meta: dict, path: Path, sha256: str, compression: str, block_size: int, coarsen: int,
                 partial_block: str, skip_bad_lines: bool, key: str) -> dict:
    return {**reader_meta, "source_path": str(path), "source_name": path.name, "sha256": sha256,
            "compression": compression, "source_block_size": str(block_size), "coarsen": str(coarsen),
            "partial_block": partial_block, "skip_bad_lines": json.dumps(bool(skip_bad_lines)), "options": key}


# ---- streamed ingest: the trace a bounded chunk at a time (the passes: spool.py) -------------

def _concat(parts: list):
    """Chunks of one request column: numpy arrays, Arrow arrays, or None where a chunk has none."""
    if all(p is None for p in parts):
        return None
    if isinstance(next(p for p in parts if p is not None), np.ndarray):
        return np.concatenate(parts)
    return pa.chunked_array([p for p in parts if p is not None]).combine_chunks()


def _chunk_requests(cols) -> dict:
    """One chunk's request columns, compactly (labels as Arrow strings, not Python lists)."""
    n = cols.n_requests
    req = _request_columns(cols)
    for name in ("session_id", "type"):
        req[name] = pa.array(req[name], pa.string()) if req[name] is not None else pa.nulls(n, pa.string())
    req["turn"] = pa.array(req["turn"], pa.int64()) if req["turn"] is not None else pa.nulls(n, pa.int64())
    req["parent_id"] = None  # relinked across chunks from ``links``
    req["links"] = cols.links
    return req


def _read_streamed(read, spool: Spool, coarsen: int, partial_block: str | None, stage) -> dict:
    """Pass 1 (see above): the request columns of the whole file, in file order."""
    from .progress import bar_text
    parts: dict = {}
    first = None
    for cols in read.chunks:
        if first is None:
            first = cols
            partial_block = partial_block or ("drop" if cols.partial_dropped else "include")
        ids, offsets = _reblock(cols.ids, cols.offsets, cols.input_len, cols.block_size, coarsen, partial_block)
        spool.write(ids)
        req = _chunk_requests(cols)
        req["n_blocks"] = np.diff(offsets)
        req["rejects"] = cols.rejects
        for name, values in req.items():
            parts.setdefault(name, []).append(values)
        stage(f"reading {bar_text(read.fraction())}")
    extras = {name for chunk in parts["extra"] for name in chunk}
    req = {name: _concat(values) for name, values in parts.items() if name not in ("extra", "rejects", "links")}
    req["extra"] = {name: _concat([chunk.get(name) for chunk in parts["extra"]]) for name in extras}
    if any(links is not None for links in parts["links"]):
        from .formats.stream import relink
        req["parent_id"], req["session_id"] = relink(*(np.concatenate(x) for x in zip(*parts["links"])))
    return {"first": first, "partial_block": partial_block, "requests": req,
            "rejects": read.pre_rejects + [r for chunk in parts["rejects"] for r in chunk]}


def ingest_streamed(read, con, *, coarsen: int, partial_block: str | None, skip_bad_lines: bool,
                    key: str, progress=None) -> None:
    """Write the store of the chunked read ``read`` (``formats.stream.stream_columns``) into
    ``con`` (a database file) in bounded memory; the caller opens it with ``load_store``."""
    from .tables import TableStream, store_meta
    stage = progress or (lambda text: None)
    map_large_arrays()
    spool = Spool(_database_folder(con))
    try:
        p = _streamed_pass(read, spool, coarsen, partial_block, stage)
        req, rejects, order = p.requests, p.rejects, p.order
        n_blocks = p.n_blocks[order] if order is not None else p.n_blocks
        stage("writing tables")
        block_size = p.first.block_size * coarsen
        table = TableStream(con, block_size=block_size)
        for start, stop, keys, offsets in arrival_batches(spool, p.file_offsets, order, n_blocks, stage,
                                                           "writing tables"):
            table.add(keys, offsets, req["input_len"][start:stop])
        meta = store_meta(_streamed_meta(read, p, coarsen, skip_bad_lines, key),
                          path=str(read.path), fmt=p.first.format, block_size=block_size,
                          sorted_input=p.sorted_input, n_rejects=len(rejects), has_ids=True, ts=req["ts"],
                          n_accesses=table.n_accesses, n_unique=table.ids.count)
        offsets = np.concatenate(([0], np.cumsum(n_blocks))).astype(np.int64)
        table.finish({**req, "n": req["ts"].shape[0], "offsets": offsets}, meta, rejects)
    finally:
        spool.close()


def _ingest_chunks_in_memory(read, *, coarsen: int, partial_block: str | None, skip_bad_lines: bool, key: str,
                             stage) -> Trace:
    """``ingest`` into memory of a file bigger than one chunk, its text never held whole: pass 1
    of the streamed ingest (block ids to a temporary spool file, request columns in memory),
    then the ids read back in arrival order and stored as a whole-file read would be."""
    import tempfile
    spool = Spool(Path(tempfile.gettempdir()))
    try:
        p = _streamed_pass(read, spool, coarsen, partial_block, stage)
        n_blocks = p.n_blocks[p.order] if p.order is not None else p.n_blocks
        offsets = np.concatenate(([0], np.cumsum(n_blocks))).astype(np.int64)
        blocks = dense_in_batches(arrival_batches(spool, p.file_offsets, p.order, n_blocks, stage, "dense ids"),
                                   int(offsets[-1]))
    finally:
        spool.close()
    req = p.requests
    for name in ("session_id", "type", "turn"):  # columns of labels a chunk's reader does not give: none
        if name in req and isinstance(req[name], pa.Array) and req[name].null_count == len(req[name]):
            req[name] = None
    return _stored(None, blocks, offsets, req, path=str(read.path), fmt=p.first.format,
                   block_size=p.first.block_size * coarsen, meta=_streamed_meta(read, p, coarsen, skip_bad_lines, key),
                   rejects=p.rejects, sorted_input=p.sorted_input, replace=False, stage=stage)


def _streamed_pass(read, spool: Spool, coarsen: int, partial_block: str | None, stage) -> SimpleNamespace:
    """Pass 1 of a streamed ingest (into a file or into memory), checked: ``first`` (the first
    chunk's columns), ``requests`` (their columns in arrival order), ``rejects``,
    ``partial_block``, ``n_blocks`` and ``file_offsets`` (file order), ``order`` (file rows in
    arrival order, None when the file is sorted) and ``sorted_input``."""
    got = _read_streamed(read, spool, coarsen, partial_block, stage)
    first, req = got["first"], got["requests"]
    _check_streamed(read, first, req, got["rejects"], coarsen)
    n_blocks = req.pop("n_blocks")
    order, sorted_input = _order_requests(SimpleNamespace(ts=req["ts"], line_no=req["line_no"]))
    return SimpleNamespace(first=first, requests=_arrival_order(order, req), rejects=got["rejects"],
                           partial_block=got["partial_block"], n_blocks=n_blocks,
                           file_offsets=np.concatenate(([0], np.cumsum(n_blocks))).astype(np.int64),
                           order=order, sorted_input=sorted_input)


def _streamed_meta(read, p: SimpleNamespace, coarsen: int, skip_bad_lines: bool, key: str) -> dict:
    """The ingest facts of a streamed read (waits for its sha256)."""
    return _ingest_meta(p.first.meta, Path(read.path), read.sha256(), read.compression, p.first.block_size,
                        coarsen, p.partial_block, skip_bad_lines, key)


def _check_streamed(read, first, req: dict, rejects: list, coarsen: int) -> None:
    from .formats.containers import no_requests_error
    if first.block_size * coarsen > MAX_TOKENS:
        raise TraceFormatError(f"--coarsen {coarsen} makes blocks of {first.block_size * coarsen:,} tokens, "
                               f"above the limit of {MAX_TOKENS:,}", hint="use a smaller --coarsen")
    if req["ts"].shape[0] == 0:
        raise no_requests_error(read.path, rejects)


def _database_folder(con) -> Path:
    """The folder of the database file ``con`` writes (the spool goes beside it)."""
    rows = con.sql("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return Path(rows[0][0]).resolve().parent if rows and rows[0][0] else Path(".")


# ---- open -------------------------------------------------------------------------------------
# Commands that only read open a database file read-only: DuckDB lets any number of processes
# do so side by side, while a writer (an ingest) needs the file alone. When the two meet, the
# message names the other process (DuckDB's lock error carries its PID).

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def _lock_error(db: Path, err: Exception, read_only: bool) -> KvctraceError:
    text = str(err)
    held = _LOCK_HOLDER.search(text)
    if held is None:
        return KvctraceError(f"cannot open the DuckDB database ({text.splitlines()[0]})", path=str(db),
                             hint="is it a DuckDB file? is the disk full or read-only?")
    program, pid = held.group(1), held.group(2)
    if read_only:
        return KvctraceError(f"the database is being written by another process (PID {pid}, {program})",
                             path=str(db), hint=f"wait for PID {pid} to finish its ingest, then run this again")
    return KvctraceError(f"the database is in use by another process (PID {pid}, {program})", path=str(db),
                         hint=f"an ingest needs the database alone: wait for PID {pid} to finish (any number of "
                              "read-only commands such as info, analyze, report can share it)")


def _connect(db: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(db), read_only=read_only)
    except duckdb.ConnectionException as err:
        if read_only and "different configuration" in str(err):
            # this process already holds the file open for writing: share that database
            return _connect(db, read_only=False)
        raise _lock_error(db, err, read_only) from None
    except duckdb.Error as err:
        raise _lock_error(db, err, read_only) from None


def _read_meta(con) -> dict | None:
    present = {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not set(TABLES) <= present:
        return None
    meta = dict(con.sql(load_query("store_meta")).fetchall())
    return meta if "kvctrace_version" in meta else None


def load_store(con, path: str, *, chunked: bool = False) -> Trace:
    """A Trace from the tables of an existing store (no re-ingest). ``chunked``: do not read
    the block ids now; the analyses stream them from the accesses table (``Trace.access_chunks``)
    and anything else that needs them reads them whole on first use."""
    meta = _read_meta(con)
    if meta is None:
        raise KvctraceError("not a kvctrace database (no kvctrace tables/meta)", path=path,
                            hint="create one with: kvctrace ingest TRACE --db PATH")
    req = con.sql(load_query("store_load_requests")).to_arrow_table()
    n_blocks = req.column("n_blocks").to_numpy()
    offsets = np.zeros(n_blocks.shape[0] + 1, np.int64)
    np.cumsum(n_blocks, out=offsets[1:])
    has_ids = json.loads(meta.get("has_block_ids", "true"))
    trace = Trace(path=meta.get("source_path", path), format=meta["format"], block_size=int(meta["block_size"]),
                 con=con, offsets=offsets, blocks=None if has_ids else np.empty(0, np.int32),
                 ts=req.column("ts").to_numpy().astype(np.float64, copy=False),
                 input_len=req.column("input_len").to_numpy().astype(np.int64, copy=False),
                 output_len=req.column("output_len").to_numpy().astype(np.int64, copy=False),
                 n_unique_blocks=int(meta.get("unique_blocks", 0)), has_block_ids=has_ids,
                 sorted_input=json.loads(meta.get("sorted_input", "true")),
                 rejected_lines=int(meta.get("rejected_lines", 0)), meta=meta)
    if not chunked:
        trace.blocks  # noqa: B018 - read the ids now (Trace.blocks reads a store's ids on first use)
    return trace


def _reusable(meta: dict | None, path: Path, key: str) -> bool:
    """The store holds ``path`` ingested with these options by this kvctrace version."""
    return (meta is not None and path.exists() and meta.get("options") == key
            and meta.get("kvctrace_version") == kvctrace_version() and meta.get("sha256") == trace_sha256(path))


def _check_not_foreign(con, meta: dict | None, db: Path) -> None:
    if meta is None and con.sql("SELECT count(*) FROM duckdb_tables()").fetchall()[0][0]:
        raise KvctraceError("--db holds tables that kvctrace did not write; refusing to overwrite them",
                            path=str(db), hint="choose a new database file")


def _remove(db: Path) -> None:
    for name in (db, db.with_name(db.name + ".wal")):
        name.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(db: Path) -> None:
    """Temporary files of earlier ingests into ``db`` whose process is gone (killed)."""
    for tmp in db.parent.glob(f".{db.name}.*.ingesting"):
        pid = tmp.name[len(db.name) + 2:-len(".ingesting")]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _remove(tmp)


def _ingest_new_file(path: Path, db: Path, options: dict, lock=None, chunked: bool = False) -> Trace:
    """Ingest into a new database file: written under a temporary name beside it and renamed
    once complete (over ``db`` when it holds an earlier store, whose connection ``lock`` is
    held meanwhile so that no other process opens it), so a failed or interrupted ingest (even
    kill -9) leaves ``db`` as it was."""
    _remove_stale_temporaries(db)
    tmp = db.with_name(f".{db.name}.{os.getpid()}.ingesting")
    _remove(tmp)
    con = None
    try:
        con = _connect(tmp)
        trace = _ingest_into(path, con, options)
        con.close()  # checkpointed: the file is complete, with no write-ahead log beside it
        if lock is not None:
            lock.close()
            _remove(db.with_name(db.name + ".wal"))
        os.replace(tmp, db)
    except BaseException:
        if con is not None:
            con.close()
        _remove(tmp)
        raise
    if trace is None:  # streamed: the arrays are read from the file
        return load_store(_connect(db, read_only=True), str(db), chunked=chunked)
    trace.con = _connect(db, read_only=True)
    return trace


def _ingest_into(path: Path, con, options: dict) -> Trace | None:
    """Ingest into the database file of ``con``: streamed in bounded chunks when the trace is
    bigger than one chunk and its reader allows (``formats.stream``; returns None, the caller
    opens the store), else read whole (returns the Trace)."""
    from .formats.stream import stream_columns
    if options.get("coarsen", 1) < 1:
        raise TraceFormatError(f"--coarsen must be >= 1, got {options['coarsen']}", hint="e.g. --coarsen 4")
    reading = {k: options.get(k) for k in ("format", "block_size", "partial_block", "skip_bad_lines", "tokenizer",
                                           "chat_template", "progress", "session_start")}
    read = stream_columns(path, seed=options.get("seed", 0), **reading)
    if read is None:
        return ingest(path, con=con, **options)
    ingest_streamed(read, con, coarsen=options.get("coarsen", 1),
                    partial_block=options.get("partial_block"), skip_bad_lines=bool(options.get("skip_bad_lines")),
                    key=options["options_key"], progress=options.get("progress"))
    return None


def open_trace(path, *, format: str | None = None, block_size: int | None = None,
               partial_block: str | None = None, coarsen: int = 1, skip_bad_lines: bool = False,
               db=None, progress=None, tokenizer=None, chat_template=None, session_start: str | None = None,
               seed: int = 0, chunked: bool = False) -> Trace:
    """Ingest a trace file or a folder of kv-cache-tester conversations (or open a kvctrace
    ``.duckdb``) and return a ``Trace``.

    ``db``: a DuckDB file to write; if it already holds this trace ingested with the same
    options, it is opened as is (read-only, as a ``.duckdb`` given as the trace is).
    ``partial_block`` None: the format's own default (drop for text traces, else include).
    ``tokenizer`` / ``chat_template``: for text traces (docs/text-inputs.md); part of the
    options that decide whether ``db`` is re-used. ``session_start`` (``zero``, ``stagger:S``,
    ``poisson:R``; default: see ``formats.sessions``) and ``seed`` place separate
    conversations on one time line. ``chunked``: a trace read from a database file (a
    ``.duckdb``, or ``db``) leaves its block ids there until used; the analyses stream them
    (``Trace.access_chunks``), anything else reads them whole on first use."""
    path = Path(path)
    if path.is_file() and is_duckdb_file(path):
        if db is not None and Path(db).resolve() != path.resolve():
            raise KvctraceError("the trace is already a DuckDB database; --db does not apply", path=str(path),
                                hint="drop --db, or pass the original trace file")
        given = {"--format": format is not None, "--block-size": block_size is not None,
                 "--partial-block": partial_block not in (None, "include"), "--coarsen": coarsen != 1,
                 "--skip-bad-lines": bool(skip_bad_lines), "--tokenizer": tokenizer is not None,
                 "--chat-template": chat_template is not None, "--session-start": session_start is not None,
                 "--seed": seed != 0}
        if any(given.values()):
            raise KvctraceError(f"{', '.join(k for k, v in given.items() if v)} apply when a trace file is ingested, "
                                "not to an existing database", path=str(path),
                                hint="re-ingest the original trace with these options (kvctrace ingest TRACE --db PATH ...)")
        return load_store(_connect(path, read_only=True), str(path), chunked=chunked)
    key = _options_key(format, block_size, partial_block, coarsen, skip_bad_lines, tokenizer, chat_template,
                       session_start, seed)
    options = dict(format=format, block_size=block_size, partial_block=partial_block, coarsen=coarsen,
                   skip_bad_lines=skip_bad_lines, options_key=key, progress=progress, tokenizer=tokenizer,
                   chat_template=chat_template, session_start=session_start, seed=seed)
    if db is None:
        return ingest(path, **options)
    db = Path(db)
    if not db.exists():
        return _ingest_new_file(path, db, options, chunked=chunked)
    if not is_duckdb_file(db):
        raise KvctraceError("--db exists and is not a DuckDB database", path=str(db),
                            hint="choose a new file name ending in .duckdb")
    con = _connect(db, read_only=True)
    try:
        meta = _read_meta(con)
        _check_not_foreign(con, meta, db)
        if _reusable(meta, path, key):
            return load_store(con, str(db), chunked=chunked)
    except BaseException:
        con.close()
        raise
    con.close()
    con = _connect(db)  # re-ingest: the database alone while the new one is written beside it
    try:
        _check_not_foreign(con, _read_meta(con), db)
        return _ingest_new_file(path, db, options, lock=con, chunked=chunked)
    finally:
        con.close()
