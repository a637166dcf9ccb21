"""Where the independent pieces of a computation run: ``local`` (this process, as before) or
``ray`` (tasks on a Ray cluster, started locally or reached at an address).

Layer: engines/ imports only the base modules (errors) and, lazily, Ray. It sits beside
kernels/: the analyses and the replayer (one layer up) hand it module-level functions and
their arguments; it never imports them. Which pieces a computation splits into is the caller's
business (one replay configuration, one block partition); the engine only runs them and gives
the results back in input order.

``ray`` is an optional extra (``pip install 'kvctrace[ray]'``); asking for it without Ray
installed raises ``MissingExtraError`` with a one-line message and hint.
"""
from __future__ import annotations

from ..errors import UnknownNameError
from . import extra
from .extra import MissingExtraError, require_ray  # noqa: F401  (public names)

ENGINES = ("local", "ray")


def check_engine(engine: str, address: str | None = None) -> str:
    """``engine`` when it names an engine, else ``UnknownNameError``; for ``ray``, also checks
    that the extra is installed, and an ``address`` needs ``ray``. Cheap: commands call it
    before any work, so these mistakes fail at once."""
    if engine not in ENGINES:
        raise UnknownNameError(f"unknown engine '{engine}'", field="engine",
                               hint="valid engines: " + ", ".join(ENGINES))
    if engine == "ray":
        require_ray()
    elif address is not None:
        raise UnknownNameError("--ray-address needs --engine ray", field="ray_address",
                               hint="add --engine ray, or drop --ray-address")
    return engine


def start(engine: str, address: str | None = None, num_cpus: int | None = None) -> None:
    """Make ``engine`` ready: for ``ray``, start a local Ray (``address`` None, ``num_cpus``
    default: this machine's CPUs) or connect to the cluster at ``address``; no-op for ``local``
    and when a Ray session is already up."""
    if check_engine(engine, address) == "ray":
        from . import ray_engine
        ray_engine.connect(address, num_cpus=num_cpus)


def map_ordered(engine: str, fn, payloads, shared: tuple = ()) -> list:
    """``[fn(*shared, *p) for p in payloads]``, run by ``engine``; results in input order.
    ``fn`` must be a module-level function (Ray workers import it by name)."""
    if check_engine(engine) == "local":
        return [fn(*shared, *p) for p in payloads]
    from . import ray_engine
    return ray_engine.map_ordered(fn, payloads, shared=shared)
