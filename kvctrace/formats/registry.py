"""The trace formats kvctrace reads: one list of readers (modules satisfying
``common.Reader``), and format detection from a first record's keys.

Adding a format: write its module (``formats/<name>.py``, the ``Reader`` members), import it
here and put it into ``_REGISTERED`` at its detection precedence."""
from __future__ import annotations

from pathlib import Path

from ..errors import TraceFormatError
from . import bailian, burstgpt, kv_cache_tester, lengths, lmcache, mooncake, prompts, servegen, tokens
from .common import Reader

# Detection precedence: ``detect_format`` asks the readers in this order and the first whose
# ``matches`` holds wins, so a format whose signature extends another's comes before it
# (servegen's request_id + hash_ids without a timestamp, then bailian's chat_id + hash_ids,
# before mooncake's hash_ids; prompts' prompt or messages before tokens; burstgpt's named CSV
# columns before lengths); lengths, which matches any timestamp-and-length record, comes last.
_REGISTERED: tuple[Reader, ...] = (kv_cache_tester, lmcache, servegen, bailian, mooncake, prompts, tokens,
                                   burstgpt, lengths)
TEXT_SETTINGS = ("tokenizer", "chat_template")  # reader settings only text readers (with bind()) take

READERS: dict[str, Reader] = {reader.NAME: reader for reader in _REGISTERED}
FORMATS = tuple(READERS)


def detect_format(keys) -> str | None:
    """The format whose signature the first record's keys carry (None if none fits)."""
    keys = tuple(keys)
    for reader in _REGISTERED:
        if reader.matches(keys):
            return reader.NAME
    return None


def document_readers() -> tuple[Reader, ...]:
    """The readers that read whole files and folders themselves (``sniff`` and ``read_path``:
    documents spanning lines, such as kv-cache-tester conversations), in registry order."""
    return tuple(reader for reader in _REGISTERED if hasattr(reader, "read_path"))


def default_block_size(fmt: str) -> int:
    return READERS[fmt].DEFAULT_BLOCK_SIZE


def csv_formats() -> tuple[str, ...]:
    """The formats a CSV can hold (flat records)."""
    return tuple(name for name, reader in READERS.items() if reader.CSV)


def _bind(reader, settings: dict, path: Path) -> Reader:
    """A reader with ``bind`` gets the command's reader settings (``read_columns``); given to
    any other reader, a text setting is an error rather than silently ignored."""
    if hasattr(reader, "bind"):
        return reader.bind(settings)
    given = [f"--{k.replace('_', '-')}" for k in TEXT_SETTINGS if settings.get(k) is not None]
    if given:
        raise TraceFormatError(f"{', '.join(given)} apply to text traces (format prompts), not to a "
                               f"{reader.NAME} trace", path=str(path), hint=f"drop {', '.join(given)}")
    return reader


def choose_reader(fmt: str | None, keys, path: Path, line: int, settings: dict | None = None) -> Reader:
    """The reader named by ``--format`` (``fmt``), else the one detected from ``keys`` (the
    first record's, at ``line`` of ``path``), given the command's reader ``settings``."""
    if fmt is not None:
        if fmt not in READERS:
            raise TraceFormatError(f"unknown format {fmt!r}", path=str(path),
                                   hint=f"use one of: {', '.join(FORMATS)}")
        return _bind(READERS[fmt], settings or {}, path)
    keys = tuple(keys)
    found = detect_format(keys)
    if found is None:
        needs = ", ".join(f"{reader.NAME} {reader.SIGNATURE}" for reader in _REGISTERED)
        raise TraceFormatError(
            f"cannot tell the trace format from the first record's keys ({', '.join(sorted(map(str, keys))) or 'none'})",
            path=str(path), line=line, hint=f"formats and the keys they need: {needs}; or pass --format")
    return _bind(READERS[found], settings or {}, path)
