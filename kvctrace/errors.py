"""Typed errors. Each carries where the problem is (file, line, field) and a hint, so the
CLI can print one readable line instead of a traceback."""
from __future__ import annotations


class KvctraceError(Exception):
    """Base class: ``str(err)`` is the one-line message the CLI prints."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(str(self.path))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field '{self.field}'")
        text = (": ".join([", ".join(where), self.message]) if where else self.message)
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class TraceFormatError(KvctraceError):
    """A trace line or file that cannot be read as the detected/declared format."""


class ConfigError(KvctraceError):
    """A replay/recommend config that is invalid."""


class UnknownNameError(KvctraceError):
    """A policy/index/preset name that is not registered; the message lists valid names."""


class NoBlockIdsError(KvctraceError):
    """A reuse analysis was asked of a trace that has no block ids (lengths-only)."""


class KvctraceWarning(UserWarning):
    """A result kvctrace computes but that is probably not what was meant (e.g. an HBM tier
    larger than the GPU); the CLI prints it as one 'warning: ...' line on stderr."""
