"""Shared pytest fixtures."""
from .ray_session import ray_session  # noqa: F401  (one local Ray for the whole session)
