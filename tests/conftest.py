"""Shared pytest fixtures."""
from .redis_server import redis_url  # noqa: F401  (a live redis-server for the bench-index tests)
from .ray_session import ray_session  # noqa: F401  (one local Ray for the whole session)
