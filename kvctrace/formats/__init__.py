"""Trace readers: detect the format, open the container, and return canonical ``Columns``.

One module per format, each a ``common.Reader``: a fast columnar path (``schema`` +
``from_frame``) and a per-record path (``parse_record`` + ``from_rows``). ``registry.py``
lists the readers and detects the format from a first record's keys; ``containers.py`` reads
JSON lines, JSON, CSV and Parquet (``source.py`` decompresses and checks the file first).
A new format is its module plus its entry in ``registry.py`` (and its tests)."""
from __future__ import annotations

from .common import Columns, Reader
from .containers import read_columns
from .registry import FORMATS, READERS, default_block_size, detect_format

__all__ = ["Columns", "FORMATS", "READERS", "Reader", "detect_format", "default_block_size", "read_columns"]
