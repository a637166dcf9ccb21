"""Connections to the Redis server ``kvctrace bench-index`` measures, and the run's safety rules.

* Every key the run writes starts with its key prefix (``--key-prefix``, default a fresh
  ``kvctrace:<16 hex>:``); a given prefix that already holds keys is refused, so everything
  under the prefix is the run's own. Cleanup deletes the run's keys by name and then any key
  still matching the prefix (``SCAN MATCH <prefix>*``); nothing else is ever deleted and no
  database is ever flushed.
* Problems become one line naming the URL (password masked) and the problem, with a hint:
  unreachable, authentication required or wrong, read-only replica, out of memory
  (``maxmemory`` with ``noeviction``), or any other refusal.
* The timed path uses redis-py's ``Connection`` directly (``send_packed_command`` /
  ``read_response``, hiredis parser): commands are packed before the timer starts, so a
  measured round trip is a socket write, the server, and one parsed reply.
"""
from __future__ import annotations

import re
import secrets
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from ..errors import KvctraceError

SOCKET_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0
DELETE_BATCH = 1000   # keys per UNLINK while cleaning up
SCAN_COUNT = 1000
ZRANGE_BYSCORE_SINCE = (6, 2)  # ZRANGE ... BYSCORE appeared in Redis 6.2


class RedisBenchError(KvctraceError):
    """The Redis server cannot be reached or refused the benchmark's commands."""


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def fresh_prefix() -> str:
    return f"kvctrace:{secrets.token_hex(8)}:"


def scan_pattern(prefix: bytes) -> bytes:
    """``SCAN MATCH`` pattern of every key starting with ``prefix`` (glob characters escaped)."""
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", prefix) + b"*"


# error codes of Redis error replies (the reply's first word) -> problem kind
_CODES = {"NOAUTH": "auth", "WRONGPASS": "auth", "READONLY": "readonly", "OOM": "oom", "NOPERM": "perm"}


def _problem(err: Exception, text: str) -> str:
    from redis import exceptions as rx
    code = _CODES.get(text.split(" ", 1)[0])
    if code:
        return code
    for cls, kind in ((rx.AuthenticationError, "auth"), (rx.ReadOnlyError, "readonly"),
                      (rx.OutOfMemoryError, "oom"), (rx.NoPermissionError, "perm")):
        if isinstance(err, cls):
            return kind
    if "AUTH" in text and "password" in text:  # e.g. a password given to a server without one
        return "auth"
    if isinstance(err, (rx.ConnectionError, rx.TimeoutError, OSError)):
        return "unreachable"
    return "refused"


_MESSAGES = {
    "auth": ("authentication failed", "put the credentials in the URL: redis://:PASSWORD@HOST:PORT "
                                      "or redis://USER:PASSWORD@HOST:PORT"),
    "readonly": ("the server is a read-only replica",
                 "point --redis at the primary (INFO replication on the replica names it)"),
    "oom": ("the server is out of memory",
            "raise its maxmemory, free memory, or write fewer keys with --max-requests"),
    "perm": ("the user may not run the benchmark's commands",
             "the ACL user needs GET, SET, MGET, MSET, ZADD, ZRANGE, UNLINK, SCAN, INFO and PING on its key prefix"),
    "unreachable": ("cannot reach the server",
                    "is redis-server running and listening there? URL form: redis://HOST:PORT[/DB]"),
    "refused": ("the server refused a command", None),
}


def refusal(url: str, err: Exception) -> RedisBenchError:
    """The one-line error for a redis-py (or socket) exception or an error reply."""
    text = (str(err).splitlines()[0] if str(err) else type(err).__name__).rstrip(".")
    what, hint = _MESSAGES[_problem(err, text)]
    return RedisBenchError(f"{what}: {text}", path=masked_url(url), hint=hint)


def client(url: str):
    """A redis-py client for ``url`` (RESP2, bytes replies); raises RedisBenchError."""
    import redis

    try:
        return redis.Redis.from_url(url, protocol=2, socket_timeout=SOCKET_TIMEOUT_S,
                                    socket_connect_timeout=CONNECT_TIMEOUT_S)
    except ValueError as err:
        raise RedisBenchError(f"not a Redis URL: {err}", path=masked_url(url),
                              hint="e.g. redis://127.0.0.1:6379/0 or unix:///run/redis.sock") from None


@contextmanager
def refused_as_error(url: str):
    """Turn any redis-py (or socket) exception raised inside into ``refusal``."""
    from redis import exceptions as rx
    try:
        yield
    except (rx.RedisError, OSError) as err:
        raise refusal(url, err) from None


def server_version(conn) -> str:
    info = conn.info("server")
    return str(info.get("redis_version", "unknown"))


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def count_keys(conn, prefix: bytes) -> int:
    """Keys whose name starts with ``prefix`` (a full SCAN pass)."""
    return sum(1 for _ in conn.scan_iter(match=scan_pattern(prefix), count=SCAN_COUNT))


def check_ready(url: str, conn, prefix: bytes, designs, *, given_prefix: bool) -> str:
    """Check the server answers, may be written and holds nothing under ``prefix``; returns
    its version. A probe key is written and deleted, so a read-only replica, missing
    permissions or a full ``maxmemory`` show before the run starts."""
    with refused_as_error(url):
        conn.ping()
        version = server_version(conn)
        if given_prefix and count_keys(conn, prefix):
            raise RedisBenchError(f"keys starting with {prefix!r} already exist on the server",
                                  path=masked_url(url),
                                  hint="choose an unused --key-prefix, or leave it out for a fresh random one")
        probe = prefix + b"probe"
        conn.set(probe, b"\0" * 8)
        conn.unlink(probe)
    if "zset" in designs and version_tuple(version) < ZRANGE_BYSCORE_SINCE:
        raise RedisBenchError(f"Redis {version} has no ZRANGE ... BYSCORE (needs 6.2 or later)",
                              path=masked_url(url), hint="leave out --design zset")
    return version


def delete_keys(conn, names) -> int:
    """UNLINK ``names`` in batches; returns how many existed."""
    deleted = 0
    batch = []
    for name in names:
        batch.append(name)
        if len(batch) == DELETE_BATCH:
            deleted += conn.unlink(*batch)
            batch = []
    if batch:
        deleted += conn.unlink(*batch)
    return deleted


def sweep_prefix(conn, prefix: bytes) -> int:
    """Delete every key still under ``prefix`` (the run's own, see module docstring)."""
    return delete_keys(conn, list(conn.scan_iter(match=scan_pattern(prefix), count=SCAN_COUNT)))
