"""The Ray engine: one Ray session per process, shared arrays put into the object store once,
and module-level functions run as Ray tasks with their results gathered in input order.

* ``connect(address)``: start a local Ray (``address`` None: this machine's CPUs, no
  dashboard, worker logs not forwarded, Ray's own logging at ERROR) or connect to the cluster
  at ``address`` (``host:port``, ``ray://host:10001``, or ``auto`` for ``RAY_ADDRESS`` / the
  cluster ``ray start`` made on this machine). A second call reuses the session.
* Workers get two environment variables through the job's ``runtime_env``:
  ``NUMBA_CACHE_DIR`` (``numba_cache_dir()``), so every worker process loads the compiled
  kernels from one on-disk cache instead of compiling them again, and ``NUMBA_NUM_THREADS=1``,
  since a task holds one CPU and Ray runs one task per CPU.
* ``put_once(tag, owner, build)``: each of the trace's arrays goes into the object store once
  per trace (keyed by the identity of the array it is or is built from), not once per task,
  per call or per computation (a report's sweep and replay study share the block ids).
* ``map_ordered(fn, payloads, shared)``: one task per payload; ``ray.get`` of the list keeps
  the input order whatever order the tasks finish in. A task whose worker process dies (killed,
  out of memory, node lost) is re-run by Ray up to ``MAX_RETRIES`` times (``max_retries``); an
  exception raised by the function itself is not retried (it would fail again) and reaches
  the caller.
"""
from __future__ import annotations

import functools
import logging
import os
import weakref
from pathlib import Path

from .extra import require_ray

MAX_RETRIES = 3
_CLUSTER_CACHE_DIR = "${HOME}/.cache/kvctrace/numba"  # expanded by Ray on each worker node
_shared: dict = {}  # put_once: tag -> (session and owner id, weak owner, object reference)


def numba_cache_dir(address: str | None = None) -> str:
    """Where workers keep compiled Numba kernels: the driver's ``NUMBA_CACHE_DIR`` when set
    (point it at a folder every node can write, e.g. on NFS, to compile once per cluster);
    otherwise ``~/.cache/kvctrace/numba`` (on a cluster: each node's own, compiled once per
    node)."""
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return env
    if address is not None:
        return _CLUSTER_CACHE_DIR
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "kvctrace" / "numba"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def worker_env(address: str | None = None) -> dict:
    """The environment variables every worker of the job gets."""
    return {"NUMBA_CACHE_DIR": numba_cache_dir(address), "NUMBA_NUM_THREADS": "1"}


def connect(address: str | None = None, *, num_cpus: int | None = None) -> dict:
    """Start or join a Ray session (see the module docstring); returns ``session_info()``."""
    ray = require_ray()
    if not ray.is_initialized():
        options = dict(log_to_driver=False, logging_level=logging.ERROR,
                       runtime_env={"env_vars": worker_env(address)})
        if address is None:
            # "local": a new Ray of our own, even if RAY_ADDRESS names another cluster
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                     include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    return session_info()


def session_info() -> dict:
    """Address, nodes and CPUs of the current session."""
    ray = require_ray()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {"address": ray.get_runtime_context().gcs_address, "nodes": len(nodes),
            "cpus": int(ray.cluster_resources().get("CPU", 0))}


def shutdown() -> None:
    """End the session this process started or joined (and forget the shared arrays)."""
    ray = require_ray()
    _shared.clear()
    ray.shutdown()


def _session_key(ray) -> tuple:
    ctx = ray.get_runtime_context()
    return ctx.get_node_id(), ctx.get_job_id()


def put_once(tag: str, owner, build=None):
    """Object reference to ``build()`` (default: ``owner`` itself), put into the object store
    once per ``tag`` (what the value is, e.g. "blocks") and ``owner`` (compared by identity:
    the array the value is, or is computed from, which must not change in place meanwhile).
    One entry per tag is kept: a new trace's array replaces the previous one's."""
    ray = require_ray()
    connect()
    key = (_session_key(ray), id(owner))
    entry = _shared.get(tag)
    if entry and entry[0] == key and entry[1]() is owner:
        return entry[2]
    _shared.pop(tag, None)
    ref = ray.put(owner if build is None else build())
    _shared[tag] = (key, weakref.ref(owner), ref)
    return ref


@functools.lru_cache(maxsize=None)
def _remote(fn):
    ray = require_ray()
    return ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(fn)


def map_ordered(fn, payloads, shared: tuple = ()) -> list:
    """``[fn(*shared, *p) for p in payloads]`` as one Ray task per payload, results in input
    order. ``shared`` should hold object references (``put_once``): Ray resolves a reference
    given as an argument to its value on the worker, zero-copy for numpy arrays, while an
    array given directly would be serialized again for every task."""
    ray = require_ray()
    connect()
    remote = _remote(fn)
    return ray.get([remote.remote(*shared, *p) for p in payloads])
