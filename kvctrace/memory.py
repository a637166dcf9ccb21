"""Memory tuning, in one place: how the process and DuckDB hand freed memory back to the system.

kvctrace's ingest and analyses allocate many short-lived arrays of 10-100 MB; without these
settings the freed memory stays resident under the next step's peak. Everything here changes
where memory lives, never a result:

* ``tune_allocators()``: polars' allocator returns freed memory at once (before polars loads).
* ``map_large_arrays()``: glibc maps large allocations on their own (process-wide, once).
* ``DUCKDB_CONFIG``: every DuckDB database kvctrace opens returns freed memory promptly.
* ``release_freed_memory()``: return DuckDB's cached free memory now.
* ``drop_cached_blocks(con)``: evict the database-file blocks DuckDB cached while reading.
* ``offload_table_data(con)``: move a fresh in-memory store's table data to temporary storage.
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

# DuckDB's allocator keeps freed memory for reuse and, without its background threads, returns
# it to the system only when later allocations happen to trigger it: an ingest's transient
# buffers (parsed JSON, uncompressed table data before a checkpoint) would stay resident
# through the analyses. With the threads, freed memory goes back within about a second.
DUCKDB_CONFIG = {"allocator_background_threads": True, "allocator_bulk_deallocation_flush_threshold": "16MB", "allocator_flush_threshold": "16MB"}

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter (malloc.h)

# polars' jemalloc keeps freed pages for seconds (its decay), so the frames the analyses build
# and drop would stay resident under the next one's peak: ~60 MB more at the end of the
# analyses on 28.8M accesses, ~50 MB more right after a 5.6M-access ingest. Read once, when
# polars loads; a user's own setting wins.
_POLARS_MALLOC_CONF = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")


def tune_allocators() -> None:
    """Have polars' allocator return freed memory to the system at once. Effective only before
    polars is imported (``import kvctrace`` does it first); a no-op afterwards."""
    if "polars" not in sys.modules:
        os.environ.setdefault(*_POLARS_MALLOC_CONF)


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
    """Return the memory DuckDB and Arrow have freed but keep cached to the system now.
    DuckDB's allocator (jemalloc) keeps freed pages for a second or more, so an ingest's
    transient buffers would still be resident while the analyses allocate theirs; closing a
    database instance purges the cache of every instance in the process (DuckDB's cleanup on
    close), so closing a throwaway one does it on demand (about 140 MB at once on 5.6M
    accesses). Arrow's pool (mimalloc) keeps the pages of the tables built for DuckDB (about
    100 MB on 28.8M accesses) until asked to release them."""
    import duckdb
    import pyarrow as pa  # both loaded by then wherever there is anything to release

    duckdb.connect(config=DUCKDB_CONFIG).close()
    pa.default_memory_pool().release_unused()


def drop_cached_blocks(con) -> None:
    """Drop the blocks of a database file that DuckDB keeps cached after reading them (up to
    its memory limit, 80% of RAM by default): ~130 MB after a trace's arrays are read from a
    28.8M-access store, held under every later step otherwise. A momentary small memory limit
    evicts them; a later query reads what it needs from the file again. Best effort."""
    import duckdb

    try:
        con.execute("SET memory_limit = '16MB'")
    except duckdb.Error:
        pass
    finally:
        con.execute("RESET memory_limit")


@contextmanager
def small_block_cache(con, limit: str = "128MB"):
    """While a store's table is streamed (``Trace.access_chunks``), keep DuckDB's cache of the
    file's blocks small: it would otherwise keep every block it scanned (up to 80% of RAM),
    which over a trace bigger than memory is what streaming is there to avoid. A scan keeps
    only its current batch, well under the limit."""
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        drop_cached_blocks(con)


def offload_table_data(con) -> None:
    """Move a fresh in-memory store's table data to DuckDB's temporary storage (a private
    folder under the system temp directory, removed when the connection closes): the
    analyses work from the numpy arrays and read only the small requests table, and DuckDB
    reads any block back when a query needs it. A momentary 8 MB memory limit makes DuckDB
    evict its buffers; the limit is then reset. Saves ~30 MB resident on 5.6M accesses;
    best effort (kept in memory when DuckDB cannot evict)."""
    import duckdb

    folder = Path(tempfile.gettempdir()) / f"kvctrace-duckdb-{os.getpid()}-{id(con):x}"
    try:
        con.execute("SET temp_directory = $dir", {"dir": str(folder)})
        con.execute("SET memory_limit = '8MB'")
    except duckdb.Error:
        pass
    finally:
        con.execute("RESET memory_limit")
