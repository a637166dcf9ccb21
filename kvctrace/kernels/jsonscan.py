"""Strict type pre-check of JSON-lines bytes (Numba), one pass, no Python per line.

The fast ingest path reads JSON lines with DuckDB's columnar ``read_json``, which is quick
but lenient: it turns ``"600"``, ``600.5`` or ``true`` into integers without a word. This
scanner runs first and says, for every non-blank line, whether each known field holds exactly
the JSON type the format asks for, so lenient conversions never reach the store:

* ``INT``: an integer literal, or a list of integer literals (``hash_ids``, ``token_ids``);
* ``NUMBER``: any JSON number (timestamps);
* ``LABEL``: a string or a number (``type``, ``session_id``);
* other keys: any JSON value (skipped).

It also checks the object's outer syntax. A line that fails is not diagnosed here: the
per-record Python path does that and names the line and field. It returns the 1-based
numbers of the non-blank lines (the rows of a columnar reader, which skips blank lines)."""
from __future__ import annotations

import numba as nb
import numpy as np

INT, NUMBER, LABEL, ANY = 0, 1, 2, 3


@nb.njit(cache=True, inline="always")
def _is_ws(c):
    return c == 32 or c == 9 or c == 13


@nb.njit(cache=True, inline="always")
def _skip_ws(buf, i, end):
    while i < end and _is_ws(buf[i]):
        i += 1
    return i


@nb.njit(cache=True, inline="always")
def _int(buf, i, end):
    """End of an integer literal at i, or -1."""
    if i < end and buf[i] == 45:  # '-'
        i += 1
    start = i
    while i < end and 48 <= buf[i] <= 57:
        i += 1
    if i == start or (buf[start] == 48 and i - start > 1):  # no digits, or a leading zero
        return -1
    return i


@nb.njit(cache=True, inline="always")
def _number(buf, i, end):
    i = _int(buf, i, end)
    if i < 0:
        return -1
    if i < end and buf[i] == 46:  # '.'
        i += 1
        start = i
        while i < end and 48 <= buf[i] <= 57:
            i += 1
        if i == start:
            return -1
    if i < end and (buf[i] == 101 or buf[i] == 69):  # e E
        i += 1
        if i < end and (buf[i] == 43 or buf[i] == 45):
            i += 1
        start = i
        while i < end and 48 <= buf[i] <= 57:
            i += 1
        if i == start:
            return -1
    return i


@nb.njit(cache=True, inline="always")
def _string(buf, i, end):
    """End (after the closing quote) of a string starting at the quote at i, or -1."""
    i += 1
    while i < end:
        c = buf[i]
        if c == 92:  # backslash: skip the escaped byte
            i += 2
            continue
        if c == 34:
            return i + 1
        i += 1
    return -1


@nb.njit(cache=True)
def _any_value(buf, i, end):
    """End of any JSON value (strings and nesting tracked), or -1; not fully validated."""
    depth = 0
    while i < end:
        c = buf[i]
        if c == 34:
            i = _string(buf, i, end)
            if i < 0:
                return -1
            if depth == 0:
                return i
            continue
        if c == 91 or c == 123:
            depth += 1
        elif c == 93 or c == 125:
            if depth == 0:
                return i
            depth -= 1
            if depth == 0:
                return i + 1
        elif (c == 44) and depth == 0:
            return i
        i += 1
    return -1 if depth else i


@nb.njit(cache=True)
def _key_class(buf, s, e, key_bytes, key_off, key_class):
    n = e - s
    for k in range(key_off.shape[0] - 1):
        a = key_off[k]
        if key_off[k + 1] - a != n:
            continue
        same = True
        for j in range(n):
            if buf[s + j] != key_bytes[a + j]:
                same = False
                break
        if same:
            return key_class[k]
    return ANY


@nb.njit(cache=True)
def _line_ok(buf, i, end, key_bytes, key_off, key_class):
    i = _skip_ws(buf, i, end)
    if i >= end or buf[i] != 123:  # '{'
        return False
    i = _skip_ws(buf, i + 1, end)
    if i < end and buf[i] == 125:
        i += 1
    else:
        while True:
            if i >= end or buf[i] != 34:
                return False
            k_end = _string(buf, i, end)
            if k_end < 0:
                return False
            cls = _key_class(buf, i + 1, k_end - 1, key_bytes, key_off, key_class)
            i = _skip_ws(buf, k_end, end)
            if i >= end or buf[i] != 58:  # ':'
                return False
            i = _skip_ws(buf, i + 1, end)
            if i >= end:
                return False
            c = buf[i]
            if cls == INT:
                if c == 91:  # '[' list of integers
                    i = _skip_ws(buf, i + 1, end)
                    if i < end and buf[i] == 93:
                        i += 1
                    else:
                        while True:
                            i = _int(buf, i, end)
                            if i < 0:
                                return False
                            i = _skip_ws(buf, i, end)
                            if i < end and buf[i] == 44:
                                i = _skip_ws(buf, i + 1, end)
                                continue
                            if i < end and buf[i] == 93:
                                i += 1
                                break
                            return False
                else:
                    i = _int(buf, i, end)
            elif cls == NUMBER:
                i = _number(buf, i, end)
            elif cls == LABEL:
                i = _string(buf, i, end) if c == 34 else _number(buf, i, end)
            else:
                i = _any_value(buf, i, end)
            if i < 0:
                return False
            i = _skip_ws(buf, i, end)
            if i < end and buf[i] == 44:
                i = _skip_ws(buf, i + 1, end)
                continue
            if i < end and buf[i] == 125:
                i += 1
                break
            return False
    i = _skip_ws(buf, i, end)
    return i == end


@nb.njit(cache=True, parallel=True)
def _scan(buf, bounds, key_bytes, key_off, key_class):
    """Chunks (split at line starts) are scanned in parallel: first their line counts, then
    each line's blank/ok flags into its global slot."""
    n_chunks = bounds.shape[0] - 1
    counts = np.zeros(n_chunks + 1, np.int64)
    for c in nb.prange(n_chunks):
        lo = bounds[c]
        hi = bounds[c + 1]
        k = 0
        for i in range(lo, hi):
            if buf[i] == 10:
                k += 1
        if hi > lo and buf[hi - 1] != 10:
            k += 1
        counts[c + 1] = k
    first = np.cumsum(counts)
    blank = np.empty(first[n_chunks], np.bool_)
    ok = np.empty(first[n_chunks], np.bool_)
    for c in nb.prange(n_chunks):
        i = bounds[c]
        hi = bounds[c + 1]
        li = first[c]
        while i < hi:
            end = i
            while end < hi and buf[end] != 10:
                end += 1
            j = _skip_ws(buf, i, end)
            blank[li] = j >= end
            ok[li] = j >= end or _line_ok(buf, j, end, key_bytes, key_off, key_class)
            li += 1
            i = end + 1
    return blank, ok


def scan_jsonl(data: bytes, classes: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(line numbers of non-blank lines, whether each passes the strict type check).

    ``classes`` maps field names to INT / NUMBER / LABEL; other fields may hold anything."""
    names = [k.encode("utf-8") for k in classes]
    key_off = np.zeros(len(names) + 1, np.int64)
    np.cumsum([len(k) for k in names], out=key_off[1:])
    key_bytes = np.frombuffer(b"".join(names) or b"\0", np.uint8)
    key_class = np.array(list(classes.values()) or [ANY], np.int64)
    buf = np.frombuffer(data, np.uint8)
    # Chunk bounds at line starts: about 4 chunks per thread for balance on large inputs.
    n_chunks = max(1, min(4 * nb.get_num_threads(), len(data) >> 20))
    bounds = [0]
    for c in range(1, n_chunks):
        cut = data.find(b"\n", max(bounds[-1], len(data) * c // n_chunks))
        if cut < 0:
            break
        if cut + 1 > bounds[-1]:
            bounds.append(cut + 1)
    if bounds[-1] != len(data) or len(bounds) == 1:
        bounds.append(len(data))
    blank, ok = _scan(buf, np.array(bounds, np.int64), key_bytes, key_off, key_class)
    keep = ~blank
    return np.flatnonzero(keep) + 1, ok[keep]
