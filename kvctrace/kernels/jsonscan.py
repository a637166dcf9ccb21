"""Strict pre-check of JSON-lines bytes (Numba), one pass, no Python per line.

The fast ingest path reads JSON lines with DuckDB's columnar ``read_json``, which is quick
but lenient: it turns ``"600"``, ``600.5`` or ``true`` into integers without a word, reads
NaN, Infinity and trailing commas, and decodes escaped keys. This scanner runs first and
says, for every non-blank line, whether it is one strict JSON object (as Python's json reads
it, without NaN/Infinity; strings valid UTF-8) whose known fields hold exactly the JSON type
the format asks for, so lenient conversions never reach the store:

* ``INT``: an integer literal, or a list of integer literals (``hash_ids``, ``token_ids``);
* ``NUMBER``: any JSON number (timestamps);
* ``LABEL``: a string or an integer literal (``type``, ``session_id``);
* ``REFUSED``: a key that must not appear (matched ignoring ASCII case);
* other keys: any JSON value (validated, not typed).

A line is also flagged when a top-level key appears twice, when a key is written with an
escape (``"a\\u0062"`` is the key ``ab``: compared only after decoding), or when it nests
deeper than ``MAX_DEPTH`` or holds more than ``MAX_KEYS`` keys. A flagged line is not
diagnosed here: the per-record Python path does that and names the line and field. It
returns the 1-based numbers of the non-blank lines (blank: only spaces, tabs and CRs)."""
from __future__ import annotations

import sys

import numba as nb
import numpy as np

from .nrt import no_refcount

INT, NUMBER, LABEL, ANY, REFUSED = 0, 1, 2, 3, 4
MAX_DEPTH = 256   # deeper lines go to the per-record path (Python's json nests ~900 deep)
MAX_KEYS = 64     # top-level keys checked for repeats; more go to the per-record path


@no_refcount
def _is_ws(c):
    return c == 32 or c == 9 or c == 13


@no_refcount
def _skip_ws(buf, i, end):
    while i < end and _is_ws(buf[i]):
        i += 1
    return i


@no_refcount
def _digits(buf, i, end):
    while i < end and 48 <= buf[i] <= 57:
        i += 1
    return i


@no_refcount
def _int(buf, i, end, max_digits):
    """End of an integer literal at i, or -1 (also beyond ``max_digits`` digits: Python's
    int() refuses those)."""
    if i < end and buf[i] == 45:  # '-'
        i += 1
    start = i
    i = _digits(buf, i, end)
    if i == start or (buf[start] == 48 and i - start > 1) or i - start > max_digits:
        return -1
    return i


@no_refcount
def _number(buf, i, end, max_digits):
    start = i
    i = _int(buf, i, end, end)
    if i < 0:
        return -1
    if not (i < end and (buf[i] == 46 or buf[i] == 101 or buf[i] == 69)):  # an integer
        sign = 1 if buf[start] == 45 else 0
        return i if i - start - sign <= max_digits else -1
    if i < end and buf[i] == 46:  # '.'
        start = i + 1
        i = _digits(buf, start, end)
        if i == start:
            return -1
    if i < end and (buf[i] == 101 or buf[i] == 69):  # e E
        i += 1
        if i < end and (buf[i] == 43 or buf[i] == 45):
            i += 1
        start = i
        i = _digits(buf, i, end)
        if i == start:
            return -1
    return i


@no_refcount
def _cont(buf, i, end, lo, hi):
    return i < end and lo <= buf[i] <= hi


@no_refcount
def _utf8(buf, i, end):
    """End of the UTF-8 sequence of a non-ASCII byte at i, or -1 (overlong forms, surrogates
    and code points above U+10FFFF are invalid, as Python's decoder says)."""
    c = buf[i]
    if 0xC2 <= c <= 0xDF:
        return i + 2 if _cont(buf, i + 1, end, 0x80, 0xBF) else -1
    if 0xE0 <= c <= 0xEF:
        lo = 0xA0 if c == 0xE0 else 0x80
        hi = 0x9F if c == 0xED else 0xBF
        ok = _cont(buf, i + 1, end, lo, hi) and _cont(buf, i + 2, end, 0x80, 0xBF)
        return i + 3 if ok else -1
    if 0xF0 <= c <= 0xF4:
        lo = 0x90 if c == 0xF0 else 0x80
        hi = 0x8F if c == 0xF4 else 0xBF
        ok = (_cont(buf, i + 1, end, lo, hi) and _cont(buf, i + 2, end, 0x80, 0xBF)
              and _cont(buf, i + 3, end, 0x80, 0xBF))
        return i + 4 if ok else -1
    return -1


@no_refcount
def _is_hex(c):
    return 48 <= c <= 57 or 65 <= c <= 70 or 97 <= c <= 102


@no_refcount
def _string(buf, i, end):
    """End (after the closing quote) of a strict JSON string starting at the quote at i, or -1:
    escapes are one of \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX, no raw control bytes, valid UTF-8."""
    i += 1
    while i < end:
        c = buf[i]
        if c == 34:
            return i + 1
        if c == 92:  # backslash
            if i + 1 >= end:
                return -1
            e = buf[i + 1]
            if e == 117:  # \uXXXX
                if i + 5 >= end:
                    return -1
                for j in range(i + 2, i + 6):
                    if not _is_hex(buf[j]):
                        return -1
                i += 6
            elif e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116:
                i += 2
            else:
                return -1
        elif c < 32:
            return -1
        elif c < 128:
            i += 1
        else:
            i = _utf8(buf, i, end)
            if i < 0:
                return -1
    return -1


@no_refcount
def _word(buf, i, end, w0, w1, w2, w3, n):
    """End of the literal true/null (n=4, bytes w0..w3) or false (n=5, checked by the caller)."""
    if i + n > end or buf[i] != w0 or buf[i + 1] != w1 or buf[i + 2] != w2 or buf[i + 3] != w3:
        return -1
    return i + n


@no_refcount
def _key_colon(buf, i, end):
    """After '"key" :' (whitespace around) starting at i, or -1."""
    if i >= end or buf[i] != 34:
        return -1
    i = _string(buf, i, end)
    if i < 0:
        return -1
    i = _skip_ws(buf, i, end)
    if i >= end or buf[i] != 58:  # ':'
        return -1
    return _skip_ws(buf, i + 1, end)


@no_refcount
def _scalar(buf, i, end, max_digits):
    c = buf[i]
    if c == 34:
        return _string(buf, i, end)
    if c == 116:  # true
        return _word(buf, i, end, 116, 114, 117, 101, 4)
    if c == 110:  # null
        return _word(buf, i, end, 110, 117, 108, 108, 4)
    if c == 102:  # false
        i = _word(buf, i, end, 102, 97, 108, 115, 4)
        return i + 1 if i >= 0 and i < end and buf[i] == 101 else -1
    return _number(buf, i, end, max_digits)


@no_refcount
def _value(buf, i, end, stack, max_digits):
    """End of the strict JSON value at i (whitespace skipped first), or -1. Containers are
    tracked on ``stack`` (1 object, 0 array); nesting deeper than it is flagged."""
    depth = 0
    while True:
        i = _skip_ws(buf, i, end)
        if i >= end:
            return -1
        c = buf[i]
        if c == 123 or c == 91:  # '{' '['
            j = _skip_ws(buf, i + 1, end)
            if j < end and buf[j] == (125 if c == 123 else 93):
                i = j + 1  # empty container: a complete value
            else:
                if depth >= stack.shape[0]:
                    return -1
                stack[depth] = 1 if c == 123 else 0
                depth += 1
                i = _key_colon(buf, j, end) if c == 123 else j
                if i < 0:
                    return -1
                continue
        else:
            i = _scalar(buf, i, end, max_digits)
            if i < 0:
                return -1
        # after a complete value: close containers, or go on to the next element
        while True:
            if depth == 0:
                return i
            i = _skip_ws(buf, i, end)
            if i >= end:
                return -1
            c = buf[i]
            if c == 44:  # ','
                i = _key_colon(buf, _skip_ws(buf, i + 1, end), end) if stack[depth - 1] == 1 else i + 1
                if i < 0:
                    return -1
                break
            if c == (125 if stack[depth - 1] == 1 else 93):
                depth -= 1
                i += 1
                continue
            return -1


@no_refcount
def _int_list_or_int(buf, i, end, max_digits):
    if i < end and buf[i] == 91:  # '[' list of integers
        i = _skip_ws(buf, i + 1, end)
        if i < end and buf[i] == 93:
            return i + 1
        while True:
            i = _int(buf, i, end, max_digits)
            if i < 0:
                return -1
            i = _skip_ws(buf, i, end)
            if i < end and buf[i] == 44:
                i = _skip_ws(buf, i + 1, end)
                continue
            if i < end and buf[i] == 93:
                return i + 1
            return -1
    return _int(buf, i, end, max_digits)


@no_refcount
def _key_class(buf, s, e, key_bytes, key_off, key_class):
    """The class of the key buf[s:e]; REFUSED names match ignoring ASCII case."""
    n = e - s
    for k in range(key_off.shape[0] - 1):
        a = key_off[k]
        if key_off[k + 1] - a != n:
            continue
        same = True
        fold = key_class[k] == REFUSED
        for j in range(n):
            x = buf[s + j]
            y = key_bytes[a + j]
            if fold:
                x = x + 32 if 65 <= x <= 90 else x
                y = y + 32 if 65 <= y <= 90 else y
            if x != y:
                same = False
                break
        if same:
            return key_class[k]
    return ANY


@no_refcount
def _plain_new_key(buf, s, e, n_keys, key_start, key_end):
    """Whether the key bytes buf[s:e] hold no escape and differ from the line's earlier keys
    (recorded in key_start/key_end[:n_keys])."""
    for j in range(s, e):
        if buf[j] == 92:
            return False
    n = e - s
    for k in range(n_keys):
        if key_end[k] - key_start[k] != n:
            continue
        same = True
        for j in range(n):
            if buf[s + j] != buf[key_start[k] + j]:
                same = False
                break
        if same:
            return False
    return True


@no_refcount
def _typed_value(buf, i, end, cls, stack, max_digits):
    """End of the value at i if it is of class ``cls``, else -1."""
    if cls == INT:
        return _int_list_or_int(buf, i, end, max_digits)
    if cls == NUMBER:
        return _number(buf, i, end, max_digits)
    if cls == LABEL:
        return _string(buf, i, end) if buf[i] == 34 else _int(buf, i, end, max_digits)
    return _value(buf, i, end, stack, max_digits)


@no_refcount
def _line_ok(buf, i, end, key_bytes, key_off, key_class, stack, key_start, key_end, max_digits):
    i = _skip_ws(buf, i, end)
    if i >= end or buf[i] != 123:  # '{'
        return False
    i = _skip_ws(buf, i + 1, end)
    if i < end and buf[i] == 125:
        return _skip_ws(buf, i + 1, end) == end
    n_keys = 0
    while True:
        if i >= end or buf[i] != 34:
            return False
        k_end = _string(buf, i, end)
        if k_end < 0 or n_keys == key_start.shape[0]:
            return False
        if not _plain_new_key(buf, i + 1, k_end - 1, n_keys, key_start, key_end):
            return False
        key_start[n_keys] = i + 1
        key_end[n_keys] = k_end - 1
        n_keys += 1
        cls = _key_class(buf, i + 1, k_end - 1, key_bytes, key_off, key_class)
        if cls == REFUSED:
            return False
        i = _skip_ws(buf, k_end, end)
        if i >= end or buf[i] != 58:  # ':'
            return False
        i = _skip_ws(buf, i + 1, end)
        if i >= end:
            return False
        i = _typed_value(buf, i, end, cls, stack, max_digits)
        if i < 0:
            return False
        i = _skip_ws(buf, i, end)
        if i < end and buf[i] == 44:
            i = _skip_ws(buf, i + 1, end)
            continue
        if i < end and buf[i] == 125:
            return _skip_ws(buf, i + 1, end) == end
        return False


@nb.njit(cache=True, parallel=True)
def _scan(buf, bounds, key_bytes, key_off, key_class, max_digits):
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
        stack = np.empty(MAX_DEPTH, np.int8)
        key_start = np.empty(MAX_KEYS, np.int64)
        key_end = np.empty(MAX_KEYS, np.int64)
        while i < hi:
            end = i
            while end < hi and buf[end] != 10:
                end += 1
            j = _skip_ws(buf, i, end)
            blank[li] = j >= end
            ok[li] = j >= end or _line_ok(buf, j, end, key_bytes, key_off, key_class, stack, key_start, key_end, max_digits)
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
    # Python refuses integer literals longer than this (0: no limit); so must the scan
    max_digits = sys.get_int_max_str_digits() or len(data)
    blank, ok = _scan(buf, np.array(bounds, np.int64), key_bytes, key_off, key_class, max_digits)
    keep = ~blank
    return np.flatnonzero(keep) + 1, ok[keep]
