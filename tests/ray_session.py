"""One real local Ray for the whole test session (``num_cpus=2``, as in CI): starting Ray
costs seconds, so every test that needs it shares this session; it is shut down at the end.
Registered in tests/conftest.py. Tests using it are skipped when Ray is not installed."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """The ``ray`` module with a session of two CPUs started by kvctrace's own ``connect``."""
    ray = pytest.importorskip("ray")
    from kvctrace.engines import ray_engine

    info = ray_engine.connect(num_cpus=2)
    assert info["cpus"] == 2, info
    yield ray
    ray_engine.shutdown()
