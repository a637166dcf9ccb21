"""The ``Trace`` object: one ingested trace, as the analyses, the replayer and notebooks see it.

Contract (shared by every part of kvctrace):
* ``offsets`` (int64, n_requests + 1) and ``blocks`` (dense ids, first-appearance order
  0, 1, 2, ...; int32, 4 bytes per access, and int64 only past 2**31 - 1 accesses) are the CSR
  form of the ``accesses`` table: request ``r`` accesses ``blocks[offsets[r]:offsets[r+1]]``
  in position order. Requests are in arrival order.
* ``ts`` is float64 seconds from the first request; ``input_len``/``output_len`` are int64 tokens.
* ``con`` is the DuckDB connection holding the tables of docs/data-model.md (requests, accesses, blocks,
  meta, rejects); SQL-shaped statistics run there. A trace ingested into memory writes its
  tables only when ``con`` is first used (``tables_pending`` until then); meanwhile requests,
  meta and rejects are views over its Arrow data, which ``request_sql`` reads: the analyses
  read the arrays and those views, so ``kvctrace analyze`` never writes a table.
* ``has_block_ids`` is False for lengths-only traces (then ``blocks`` is empty).
* The analyses read the block ids through ``access_chunks()``, chunks of whole requests, never
  ``blocks`` itself: a trace in memory gives one chunk of its arrays, a store opened in chunks
  (``load_store(..., chunked=True)``: ``blocks`` is then read whole only if something asks for
  it) streams its accesses table, so a store bigger than memory can be analyzed
  (docs/architecture.md "Memory").
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from .accesses import AccessChunk
from .formats.prompts import text_facts


@dataclass(eq=False)
class Trace:
    path: str
    format: str
    block_size: int
    con: duckdb.DuckDBPyConnection = field(repr=False)
    offsets: np.ndarray = field(repr=False)
    blocks: np.ndarray = field(repr=False)
    ts: np.ndarray = field(repr=False)
    input_len: np.ndarray = field(repr=False)
    output_len: np.ndarray = field(repr=False)
    n_unique_blocks: int = 0
    has_block_ids: bool = True
    sorted_input: bool = True
    rejected_lines: int = 0
    meta: dict = field(default_factory=dict, repr=False)
    # accesses per chunk of ``access_chunks``: None gives a trace in memory one chunk (a store
    # opened in chunks reads STORE_CHUNK_ACCESSES at a time); tests set small values to check
    # that every analysis gives the same result however its input is cut
    chunk_accesses: int | None = field(default=None, repr=False)

    @property
    def n_requests(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def n_accesses(self) -> int:
        return int(self.offsets[-1]) if self.has_block_ids else 0

    @property
    def in_one_chunk(self) -> bool:
        """Whether ``access_chunks`` gives the whole trace as one chunk (its ids in memory, not
        cut by ``chunk_accesses``)."""
        return self.__dict__.get("_blocks") is not None and not self.chunk_accesses

    def access_chunks(self) -> Iterator[AccessChunk]:
        """The block ids as chunks of whole requests, in arrival order (``AccessChunk``: the
        first request's number, CSR offsets from 0, the ids): how the analyses read them. A
        trace whose ids are in memory gives one chunk of its own arrays (or, with
        ``chunk_accesses``, slices of about that many accesses); a store opened in chunks reads
        its accesses table a chunk at a time, on every call (an analysis may make several
        passes)."""
        blocks = self.__dict__.get("_blocks")
        if blocks is None:
            from .accesses import STORE_CHUNK_ACCESSES, iter_access_chunks
            from .memory import small_block_cache
            with self.sql_lock:
                con = self.connection(all_tables=False)
                with small_block_cache(con):
                    yield from iter_access_chunks(con, self.chunk_accesses or STORE_CHUNK_ACCESSES, self.offsets)
            return
        offsets, size, n = self.offsets, self.chunk_accesses, self.n_requests
        if self.in_one_chunk:
            yield AccessChunk(0, offsets, blocks)
            return
        first = 0
        while True:
            stop = min(max(int(np.searchsorted(offsets, offsets[first] + size)), first + 1), n)
            yield AccessChunk(first, offsets[first:stop + 1] - offsets[first], blocks[offsets[first]:offsets[stop]])
            first = stop
            if first >= n:
                return

    @property
    def duration_s(self) -> float:
        return float(self.ts[-1] - self.ts[0]) if self.ts.shape[0] else 0.0

    @property
    def n_blocks_per_request(self) -> np.ndarray:
        return np.diff(self.offsets)

    def request_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(req_id, n_blocks): int64 per request, made once and shared by every analysis's
        per-request frame (polars wraps numpy arrays without copying: one array for all)."""
        cached = self.__dict__.get("_request_columns")
        if cached is None or cached[0].shape[0] != self.n_requests:
            cached = (np.arange(self.n_requests, dtype=np.int64), np.diff(self.offsets))
            cached[0].flags.writeable = cached[1].flags.writeable = False
            self.__dict__["_request_columns"] = cached
        return cached

    def connection(self, all_tables: bool = True) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection; with ``all_tables`` (what ``con`` gives) after writing the
        tables still pending, else as it is (requests, meta and rejects are always there, as
        tables or views)."""
        con = self.__dict__["_con"]
        if all_tables:
            from .tables import write_pending_tables
            write_pending_tables(con)
        return con

    @property
    def tables_pending(self) -> bool:
        """Whether the store is in memory and has not written its tables yet (docs/data-model.md)."""
        from .tables import has_pending_tables
        return has_pending_tables(self.__dict__["_con"])

    def close(self, release_blocks: bool = False) -> None:
        """Close the DuckDB connection, dropping tables still pending (nobody can read them).
        ``release_blocks``: also free the block ids (4 bytes per access) for a caller done with
        them (``kvctrace analyze`` before its report); ``info()`` still counts them."""
        from .tables import drop_pending_tables
        con = self.__dict__["_con"]
        drop_pending_tables(con)
        if con is not None:
            con.close()
        if release_blocks:
            self.blocks = np.empty(0, np.int32)

    @property
    def sql_lock(self) -> threading.RLock:
        """Held while the DuckDB connection is in use: a connection serves one thread at a
        time, and ``analysis.analyze`` runs the workload statistics (DuckDB queries) on a
        thread beside the other analyses. Whoever streams from the connection holds it until
        the stream ends."""
        return self.__dict__.setdefault("_sql_lock", threading.RLock())

    def sql(self, query: str, **params) -> pl.DataFrame:
        """Run SQL against the trace's DuckDB tables and return a polars frame."""
        with self.sql_lock:
            return pl.from_arrow(self.con.sql(query, params=params or None).to_arrow_table())

    def request_sql(self, query: str, **params) -> pl.DataFrame:
        """``sql`` for a query that reads only the requests, meta or rejects tables: it does
        not make an in-memory store write its tables (the analyses' queries)."""
        with self.sql_lock:
            con = self.connection(all_tables=False)
            return pl.from_arrow(con.sql(query, params=params or None).to_arrow_table())

    def requests(self) -> pl.DataFrame:
        return self.request_sql("SELECT * FROM requests ORDER BY req_id")

    def accesses(self) -> pl.DataFrame:
        return self.sql("SELECT * FROM accesses ORDER BY req_id, pos")

    def blocks_table(self) -> pl.DataFrame:
        return self.sql("SELECT * FROM blocks ORDER BY block")

    def rejects(self) -> pl.DataFrame:
        return self.request_sql("SELECT * FROM rejects ORDER BY line_no")

    def info(self) -> dict:
        """The headline facts of the trace as plain JSON-ready values (``kvctrace info``)."""
        meta = self.meta or {}
        return {
            "path": str(self.path), "format": self.format, "block_size": int(self.block_size),
            "requests": self.n_requests, "accesses": self.n_accesses,
            "unique_blocks": int(self.n_unique_blocks), "duration_s": round(self.duration_s, 9),  # ns: no float noise
            "rejected_lines": int(self.rejected_lines), "sorted_input": bool(self.sorted_input),
            "has_block_ids": bool(self.has_block_ids),
            "input_tokens": int(self.input_len.sum()), "output_tokens": int(self.output_len.sum()),
            "source_block_size": int(meta.get("source_block_size", self.block_size)),
            "coarsen": int(meta.get("coarsen", 1)), "partial_block": meta.get("partial_block", "include"),
            "sha256": meta.get("sha256"), "kvctrace_version": meta.get("kvctrace_version"),
            **text_facts(meta),  # text traces: tokenizer (an approximation for bytes), template
        }

    @classmethod
    def from_arrays(cls, offsets, blocks, *, ts=None, input_len=None, output_len=None,
                    block_size: int = 16, path: str = "<arrays>", format: str = "arrays",
                    session_id=None, type=None) -> "Trace":
        """Build a trace from CSR arrays (tests, notebooks, synthetic experiments).

        ``blocks`` may be any integer ids; they are mapped to dense first-appearance ids."""
        # imported here, not at the top: the store writer loads Numba and pyarrow, which
        # ``import kvctrace`` (and so every CLI start) should not pay for
        from .tables import store_arrays
        return cls(**store_arrays(offsets, blocks, ts=ts, input_len=input_len,
                                   output_len=output_len, block_size=block_size, path=path,
                                   format=format, session_id=session_id, type=type))

    def _repr_html_(self) -> str:
        """Jupyter: the facts a user wants on opening a trace, from ``info()`` (escaped HTML)."""
        from pathlib import Path

        from .results import dict_html
        info = self.info()
        no_ids = "n/a (no block ids)"
        facts = {
            "path": info["path"], "format": info["format"], "block size (tokens)": info["block_size"],
            "requests": info["requests"],
            "block accesses": info["accesses"] if info["has_block_ids"] else no_ids,
            "unique blocks": info["unique_blocks"] if info["has_block_ids"] else no_ids,
            "duration (s)": info["duration_s"], "rejected lines": info["rejected_lines"],
        }
        if not info["sorted_input"]:
            facts["note"] = "input was not in timestamp order; requests were sorted"
        return dict_html(f"Trace {Path(info['path']).name}", facts)


def _con(trace: Trace) -> duckdb.DuckDBPyConnection:
    return trace.connection(all_tables=True)


def _set_con(trace: Trace, con: duckdb.DuckDBPyConnection) -> None:
    trace.__dict__["_con"] = con


def _blocks(trace: Trace) -> np.ndarray:
    blocks = trace.__dict__.get("_blocks")
    if blocks is None:  # a store opened in chunks: read whole for a caller that needs every id
        from .accesses import read_block_ids
        from .memory import drop_cached_blocks
        with trace.sql_lock:
            con = trace.connection(all_tables=False)
            blocks = trace.__dict__["_blocks"] = read_block_ids(con, trace.offsets)
            drop_cached_blocks(con)  # the ids are read: DuckDB need not keep the file's blocks
    return blocks


def _set_blocks(trace: Trace, blocks: np.ndarray | None) -> None:
    trace.__dict__["_blocks"] = blocks


# ``blocks`` is a dataclass field read through a property: a store opened in chunks
# (``blocks=None``) reads its ids whole only when something other than ``access_chunks`` asks.
Trace.blocks = property(_blocks, _set_blocks, doc="The dense block ids in CSR order (``offsets``).")

# ``con`` is a dataclass field (constructors pass it) read through a property, so that any use
# of the connection (a SQL query, an export, a notebook) first writes the pending tables.
Trace.con = property(_con, _set_con, doc="The DuckDB connection holding every table of the store.")
