"""Strict parsing of JSON integer lists straight from the bytes of a document (Numba).

Documents such as kv-cache-tester conversations hold millions of block ids in ``hash_ids``
lists; ``json.loads`` turns each into a Python int (about 20 MB/s). The reader finds the lists'
text spans (the characters between ``[`` and ``]``) and this kernel parses them in one pass.
A span parses only if it is exactly a JSON list body of integers that fit in a signed 64-bit
integer: optional whitespace, ``-?(0|[1-9][0-9]*)`` separated by commas. Any other span is
flagged, and the caller leaves it to ``json.loads`` and the exact per-field checks."""
from __future__ import annotations

import numba as nb
import numpy as np

from .hashing import fmix64

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

_INT64_MAX_DIV10 = (1 << 63) // 10  # 922337203685477580


@nb.njit(cache=True, inline="always")
def _space(c):
    return c == 32 or c == 9 or c == 10 or c == 13


@nb.njit(cache=True)
def _parse_span(buf, lo, hi, out, at):
    """Parse one list body into ``out[at:]``; returns the count, or -1 if it is not strict."""
    i = lo
    n = 0
    while i < hi and _space(buf[i]):
        i += 1
    if i == hi:
        return 0
    while True:
        neg = False
        if i < hi and buf[i] == 45:  # '-'
            neg = True
            i += 1
        if i >= hi or buf[i] < 48 or buf[i] > 57:
            return -1
        if buf[i] == 48 and i + 1 < hi and 48 <= buf[i + 1] <= 57:
            return -1  # a leading zero is not JSON
        v = 0
        while i < hi and 48 <= buf[i] <= 57:
            d = buf[i] - 48
            if v > _INT64_MAX_DIV10 or (v == _INT64_MAX_DIV10 and d > 7 + (1 if neg else 0)):
                return -1  # outside int64: the exact path decides
            v = v * 10 + d
            i += 1
        out[at + n] = -v if neg else v
        n += 1
        while i < hi and _space(buf[i]):
            i += 1
        if i == hi:
            return n
        if buf[i] != 44:  # ','
            return -1
        i += 1
        while i < hi and _space(buf[i]):
            i += 1


@nb.njit(cache=True)
def _parse_lists(buf, starts, ends):
    """One cheap pass counts commas (an upper bound on each span's values), one pass parses and
    checks; a span that fails keeps its reserved room empty (count 0)."""
    m = starts.shape[0]
    first = np.zeros(m + 1, np.int64)
    for k in range(m):
        commas = 0
        for i in range(starts[k], ends[k]):
            if buf[i] == 44:
                commas += 1
        first[k + 1] = first[k] + commas + 1
    values = np.empty(first[m], np.int64)
    counts = np.zeros(m, np.int64)
    ok = np.zeros(m, np.bool_)
    for k in range(m):
        c = _parse_span(buf, starts[k], ends[k], values, first[k])
        ok[k] = c >= 0
        counts[k] = max(c, 0)
    return values, first[:m], counts, ok


@nb.njit(cache=True)
def _salt_ids(ids, salt):
    for i in range(ids.shape[0]):
        ids[i] = fmix64(ids[i] ^ salt)


def namespace_ids(ids: np.ndarray, space: int) -> None:
    """Map ids into name space ``space`` in place: ``fmix64(id ^ fmix64(space + golden))``
    (``kernels.hashing``'s mixer, a bijection for each space)."""
    salt = fmix64(np.uint64(space) + _GOLDEN)
    _salt_ids(ids, np.uint64(salt))


def parse_int_lists(data: bytes, starts: np.ndarray, ends: np.ndarray):
    """(values, first, counts, ok) of the list bodies ``data[starts[k]:ends[k]]``: span ``k``'s
    values are ``values[first[k]:first[k] + counts[k]]``; flagged spans (ok False) have none."""
    buf = np.frombuffer(data, np.uint8)
    return _parse_lists(buf, np.ascontiguousarray(starts, np.int64), np.ascontiguousarray(ends, np.int64))
