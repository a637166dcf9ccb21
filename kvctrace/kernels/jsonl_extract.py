"""Typed columns of JSON-lines bytes that the strict scan (``jsonscan``) passed, read by Numba.

The fast path of the JSON-lines readers used to hand every chunk to DuckDB's ``read_json``
after the scan (a connection, a temporary file and a second parse of the text per chunk);
this reads the scanned lines once more, in parallel, straight into the columns the readers'
``schema`` asks for. It reads exactly what Python's json module reads, and declines (returns
None; the caller then asks DuckDB) whatever it does not read the same way for certain:

* ``INT`` (int64) and ``INT_LIST`` (a list of int64): integer literals within int64; a list
  where a number is asked for, or a number where a list is, declines;
* ``FLOAT`` (float64): numbers whose value Python's ``float()`` gives by one exact operation
  (at most 15 significant digits and a power of ten up to 10**22: Clinger's fast path, where
  one correctly rounded multiplication or division is the correctly rounded value); other
  numbers decline;
* ``STRING``: strings without escapes (their bytes, UTF-8 checked by the scan); an escape or
  an integer literal (which a label may be) declines.

A field missing from a line is null, as in DuckDB's read; the scan flags lines holding a
``null``, so none reaches here. At most one list field is read (every reader has one)."""
from __future__ import annotations

import numba as nb
import numpy as np

from .jsonscan import _skip_ws, _string, _value
from .nrt import no_refcount

INT, INT_LIST, FLOAT, STRING = 0, 1, 2, 3
MAX_EXACT_DIGITS = 15     # below 2**53: the mantissa is exact as a float64
MAX_EXACT_POWER = 22      # 10**22 is the largest power of ten exact as a float64
_INT64_MAX_DIV10 = (2 ** 63 - 1) // 10


@no_refcount
def _int64(buf, i, end, out, slot):
    """Parse the integer literal at i into out[slot]; its end, or -1 when it is not one within
    int64 (the scan checked the literal's form)."""
    neg = i < end and buf[i] == 45
    if neg:
        i += 1
    start = i
    v = 0  # accumulated as a negative number: -2**63 fits, 2**63 does not
    while i < end and 48 <= buf[i] <= 57:
        d = buf[i] - 48
        if v < -_INT64_MAX_DIV10 or (v == -_INT64_MAX_DIV10 and d > 8):
            return -1
        v = v * 10 - d
        i += 1
    if i == start or (i < end and (buf[i] == 46 or buf[i] == 101 or buf[i] == 69)):
        return -1
    if not neg:
        if v == -(2 ** 63):
            return -1
        v = -v
    out[slot] = v
    return i


@no_refcount
def _pow10(power):
    """10.0 ** power, exact for power <= MAX_EXACT_POWER (every partial product is exact)."""
    value = 1.0
    for _ in range(power):
        value *= 10.0
    return value


@no_refcount
def _float(buf, i, end, out, slot):
    """Parse the number at i into out[slot] when one exact operation gives Python's value;
    its end, or -1."""
    neg = buf[i] == 45
    if neg:
        i += 1
    mant = 0
    digits = 0      # significant digits (leading zeros not counted)
    scale = 0       # decimal places taken into the mantissa
    while i < end and 48 <= buf[i] <= 57:
        if mant or buf[i] != 48:
            digits += 1
            mant = mant * 10 + (buf[i] - 48)
        i += 1
    if i < end and buf[i] == 46:
        i += 1
        while i < end and 48 <= buf[i] <= 57:
            if mant or buf[i] != 48:
                digits += 1
            mant = mant * 10 + (buf[i] - 48)
            scale += 1
            i += 1
    power = 0
    if i < end and (buf[i] == 101 or buf[i] == 69):
        i += 1
        eneg = i < end and buf[i] == 45
        if i < end and (buf[i] == 43 or buf[i] == 45):
            i += 1
        while i < end and 48 <= buf[i] <= 57:
            if power > 1000:
                return -1
            power = power * 10 + (buf[i] - 48)
            i += 1
        if eneg:
            power = -power
    if digits > MAX_EXACT_DIGITS:
        return -1
    power -= scale
    value = float(mant)
    if mant == 0:
        value = 0.0
    elif 0 <= power <= MAX_EXACT_POWER:
        value = value * _pow10(power)
    elif -MAX_EXACT_POWER <= power < 0:
        value = value / _pow10(-power)
    else:
        return -1
    out[slot] = -value if neg else value
    return i


@no_refcount
def _field(buf, s, e, key_bytes, key_off):
    """The schema field named by the key bytes buf[s:e], or -1."""
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
            return k
    return -1


@no_refcount
def _list_end(buf, i, end):
    """End of the integer list at i (the scan checked its form) and its length; (-1, 0) when
    it does not close on this line."""
    i = _skip_ws(buf, i + 1, end)
    if i < end and buf[i] == 93:
        return i + 1, 0
    count = 1
    while i < end and buf[i] != 93:
        if buf[i] == 44:
            count += 1
        i += 1
    return (i + 1, count) if i < end else (-1, 0)


@no_refcount
def _read_line(buf, i, end, key_bytes, key_off, kinds, ints, floats, spans, present, row, stack):
    """Read one scanned line's fields; False when a value is one this reader declines (or,
    defensively, when the line is not the object the scan passed)."""
    i = _skip_ws(buf, i, end)
    if i >= end or buf[i] != 123:  # '{'
        return False
    i = _skip_ws(buf, i + 1, end)
    if i < end and buf[i] == 125:
        return True
    while True:
        if i >= end or buf[i] != 34:
            return False
        k_end = _string(buf, i, end)
        if k_end < 0:
            return False
        f = _field(buf, i + 1, k_end - 1, key_bytes, key_off)
        i = _skip_ws(buf, k_end, end)
        if i >= end or buf[i] != 58:  # ':'
            return False
        i = _skip_ws(buf, i + 1, end)
        if i >= end:
            return False
        if f < 0:
            i = _value(buf, i, end, stack, end)
        else:
            i = _read_value(buf, i, end, kinds[f], ints, floats, spans, present, row, f)
        if i < 0:
            return False
        i = _skip_ws(buf, i, end)
        if i < end and buf[i] == 125:
            return True
        if i >= end or buf[i] != 44:  # ','
            return False
        i = _skip_ws(buf, i + 1, end)


@no_refcount
def _read_value(buf, i, end, kind, ints, floats, spans, present, row, f):
    """Read the value at i of field ``f`` (of ``kind``) into row ``row``; its end, or -1."""
    present[row, f] = True
    if kind == INT:
        return -1 if buf[i] == 91 else _int64(buf, i, end, ints[row], f)
    if kind == FLOAT:
        return _float(buf, i, end, floats[row], f)
    if kind == STRING:
        if buf[i] != 34:
            return -1
        j = _string(buf, i, end)
        if j < 0:
            return -1
        for k in range(i + 1, j - 1):
            if buf[k] == 92:  # an escape: decoded by DuckDB instead
                return -1
        spans[row, f, 0] = i + 1
        spans[row, f, 1] = j - 1
        return j
    # INT_LIST: its span and length; the values are read once every line's length is known
    if buf[i] != 91:
        return -1
    j, n = _list_end(buf, i, end)
    spans[row, f, 0] = i
    spans[row, f, 1] = j
    ints[row, f] = n
    return j


@nb.njit(cache=True, nogil=True, parallel=True)
def _read_lines(buf, starts, ends, key_bytes, key_off, kinds, n_parts):
    n, m = starts.shape[0], kinds.shape[0]
    ints = np.zeros((n, m), np.int64)
    floats = np.zeros((n, m), np.float64)
    spans = np.zeros((n, m, 2), np.int64)
    present = np.zeros((n, m), np.bool_)
    ok = np.ones(n, np.bool_)
    for p in nb.prange(n_parts):
        stack = np.empty(256, np.int8)
        for row in range(p * n // n_parts, (p + 1) * n // n_parts):
            ok[row] = _read_line(buf, starts[row], ends[row], key_bytes, key_off, kinds, ints, floats, spans,
                                 present, row, stack)
    return ints, floats, spans, present, ok


@nb.njit(cache=True, nogil=True, parallel=True)
def _read_lists(buf, spans, offsets, out):
    """The integer lists at ``spans`` into ``out[offsets[r]:offsets[r + 1]]``; False where a
    value is beyond int64."""
    n = spans.shape[0]
    ok = np.ones(n, np.bool_)
    for r in nb.prange(n):
        if offsets[r + 1] == offsets[r]:
            continue
        i, end, slot = spans[r, 0] + 1, spans[r, 1], offsets[r]
        while slot < offsets[r + 1]:
            i = _skip_ws(buf, i, end)
            i = _int64(buf, i, end, out, slot)
            if i < 0:
                ok[r] = False
                break
            slot += 1
            i = _skip_ws(buf, i, end) + 1  # after ',' (or the closing ']')
    return ok


@nb.njit(cache=True, nogil=True)
def _gather_strings(buf, spans, present):
    """Arrow string buffers (int64 offsets, bytes) of the spans; missing values are empty."""
    n = spans.shape[0]
    offsets = np.zeros(n + 1, np.int64)
    for r in range(n):
        offsets[r + 1] = offsets[r] + (spans[r, 1] - spans[r, 0] if present[r] else 0)
    data = np.empty(offsets[n], np.uint8)
    for r in range(n):
        data[offsets[r]:offsets[r + 1]] = buf[spans[r, 0]:spans[r, 0] + offsets[r + 1] - offsets[r]]
    return offsets, data


def line_bounds(buf: np.ndarray, line_no: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) byte positions of the 1-based lines ``line_no``."""
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], newlines + 1))[line_no - 1]
    ends = np.concatenate((newlines, [buf.shape[0]]))[line_no - 1]
    return starts.astype(np.int64), ends.astype(np.int64)


def read_columns(data: bytes, line_no: np.ndarray, fields: dict[str, int]) -> dict | None:
    """The fields (name -> kind) of the scanned lines ``line_no`` (1-based, every one passed
    the strict scan) as Arrow arrays, or None when a value is one this reader declines."""
    import pyarrow as pa
    names = [k.encode("utf-8") for k in fields]
    kinds = np.array(list(fields.values()), np.int64)
    if np.count_nonzero(kinds == INT_LIST) > 1:
        return None
    key_off = np.zeros(len(names) + 1, np.int64)
    np.cumsum([len(k) for k in names], out=key_off[1:])
    key_bytes = np.frombuffer(b"".join(names) or b"\0", np.uint8)
    buf = np.frombuffer(data, np.uint8)
    starts, ends = line_bounds(buf, line_no)
    # parts of lines for the threads: a few per thread, so that uneven lines balance out
    n_parts = max(1, min(len(line_no), 8 * nb.get_num_threads()))
    ints, floats, spans, present, ok = _read_lines(buf, starts, ends, key_bytes, key_off, kinds, n_parts)
    if not ok.all():
        return None
    out = {}
    for f, (name, kind) in enumerate(fields.items()):
        missing = ~present[:, f]
        mask = missing if missing.any() else None   # a field missing from a line is null
        if kind == INT:
            out[name] = pa.array(ints[:, f].copy(), pa.int64(), mask=mask)
        elif kind == FLOAT:
            out[name] = pa.array(floats[:, f].copy(), pa.float64(), mask=mask)
        elif kind == STRING:
            offsets, data_bytes = _gather_strings(buf, np.ascontiguousarray(spans[:, f]), present[:, f])
            validity = None if mask is None else pa.array(present[:, f]).buffers()[1]
            out[name] = pa.LargeStringArray.from_buffers(len(line_no), pa.py_buffer(offsets),
                                                         pa.py_buffer(data_bytes), validity)
        else:
            offsets = np.zeros(len(line_no) + 1, np.int64)
            np.cumsum(ints[:, f], out=offsets[1:])
            values = np.empty(offsets[-1], np.int64)
            if not _read_lists(buf, np.ascontiguousarray(spans[:, f]), offsets, values).all():
                return None
            out[name] = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values),
                                                      mask=None if mask is None else pa.array(mask))
    return out
