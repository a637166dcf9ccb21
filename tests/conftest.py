"""Shared pytest fixtures, the Hypothesis profile of the suite, and its split over workers."""
import os

import pytest
from hypothesis import settings

from .redis_server import redis_url  # noqa: F401  (a live redis-server for the bench-index tests)
from .ray_session import ray_session  # noqa: F401  (one local Ray for the whole session)

# The suite draws the same examples on every run and machine (CI included): a failing example
# that a random search happens upon belongs to a deliberate deeper run, not to the CI of an
# unrelated change. KVCTRACE_HYPOTHESIS=random searches anew (KVCTRACE_FUZZ_EXAMPLES: how many).
settings.register_profile("suite", derandomize=True, database=None, print_blob=True)
settings.register_profile("random", print_blob=True)
settings.load_profile(os.environ.get("KVCTRACE_HYPOTHESIS", "suite"))


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (``-n``, ``--dist loadgroup``: the README's test command) every test
    that needs the local Ray runs on one worker, so the suite starts Ray once."""
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("ray"))
