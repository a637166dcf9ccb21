"""Shared pytest fixtures."""
from .redis_server import redis_url  # noqa: F401  (a live redis-server for the bench-index tests)
