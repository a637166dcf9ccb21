"""Real ``redis-server`` processes for the tests (no mocks): each listens on a free loopback port
with persistence off, in its own temporary directory, and is stopped afterwards.

``redis_url`` (session-scoped) is one shared server; ``redis_server(tmp_path, *args)`` starts
another with extra options (``--requirepass``, ``--replicaof``, ``--maxmemory`` ...). Tests skip
only when the ``redis-server`` binary is absent (``.ci/run`` installs Debian's package).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int, password: str | None) -> bool:
    """PING answered (with the password, if the server wants one)."""
    import redis
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=1.0,
                                socket_connect_timeout=1.0).ping())
    except redis.exceptions.RedisError:
        return False


def require_redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; .ci/run installs it)")
    return binary


@contextmanager
def redis_server(folder: Path, *args: str, password: str | None = None):
    """Start ``redis-server`` on a free loopback port in ``folder``; yields its URL (without
    the password); stops it on exit."""
    binary = require_redis_server()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(folder / f"redis-{port}.log", "w")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--dir", str(folder), *args],
                            stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port, password):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(folder / f'redis-{port}.log').read_text()[-2000:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """URL of a redis-server shared by the session's tests."""
    require_redis_server()
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
