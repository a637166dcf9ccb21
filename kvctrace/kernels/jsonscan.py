"""The strict scan of JSON-lines bytes (Numba), which reads the typed columns as it goes: one
walk over every byte, no Python per line.

The scan says, for every non-blank line, whether it is one strict JSON object (as Python's
json reads it, without NaN/Infinity; strings valid UTF-8) whose known fields hold exactly the
JSON type the format asks for, so that no lenient conversion (DuckDB's ``read_json`` turns
``"600"``, ``600.5`` or ``true`` into integers without a word) reaches the store:

* ``INT`` and ``INT_LIST``: an integer literal, or a list of integer literals (``hash_ids``,
  ``token_ids``);
* ``NUMBER``: any JSON number (timestamps);
* ``LABEL``: a string or an integer literal (``type``, ``session_id``);
* ``REFUSED``: a key that must not appear (matched ignoring ASCII case);
* other keys: any JSON value (validated, not typed).

A line is also flagged when a top-level key appears twice, when a key is written with an
escape (``"a\\u0062"`` is the key ``ab``: compared only after decoding), or when it nests
deeper than ``MAX_DEPTH`` or holds more than ``MAX_KEYS`` keys. A flagged line is not
diagnosed here: the per-record Python path does that and names the line and field.

While a line is validated, its typed fields are read into columns (``read_jsonl``): digits
accumulated as they are checked, string spans recorded, list values written as they come.
The reading is exactly Python's json module's, and it declines (the columns are None; the
caller then asks DuckDB) whatever it does not read the same way for certain:

* ``INT`` (int64) and ``INT_LIST`` (a list of int64): integer literals within int64; a list
  where an integer is asked for, or an integer where a list is, declines;
* ``NUMBER`` (float64): numbers whose value Python's ``float()`` gives by one exact operation
  (at most 15 significant digits and a power of ten up to 10**22: Clinger's fast path, where
  one correctly rounded multiplication or division is the correctly rounded value); other
  numbers decline;
* ``LABEL`` (string): strings without escapes (their bytes, UTF-8 checked by the scan); an
  escape or an integer literal declines.

A field missing from a line is null, as in DuckDB's read; the scan flags lines holding a
``null``, so none is read. At most one ``INT_LIST`` field is read (every reader has one).
Only the lines that pass decide: a value of a flagged line is never declined nor returned."""
from __future__ import annotations

import sys

import numba as nb
import numpy as np

from .json_lex import _int, _int_value, _number_value, _skip_ws, _string, _value
from .nrt import no_refcount

INT, NUMBER, LABEL, ANY, REFUSED, INT_LIST = 0, 1, 2, 3, 4, 5
MAX_DEPTH = 256   # deeper lines go to the per-record path (Python's json nests ~900 deep)
MAX_KEYS = 64     # top-level keys checked for repeats; more go to the per-record path


@no_refcount
def _int_list(buf, i, end, max_digits, values, w, w_end):
    """(end, or -1; count; whether every value was kept) of the list of integer literals at the
    '[' at i, its values written to values[w:w_end] (kept: within int64 and room left)."""
    i = _skip_ws(buf, i + 1, end)
    if i < end and buf[i] == 93:  # ']'
        return i + 1, 0, True
    n = 0
    kept = True
    while True:
        i, v, fits = _int_value(buf, i, end, max_digits)
        if i < 0:
            return -1, n, kept
        if w + n < w_end:  # always, when w_end bounds the commas (_scan)
            values[w + n] = v
            n += 1
        else:
            fits = False
        kept = kept and fits
        i = _skip_ws(buf, i, end)
        if i < end and buf[i] == 44:  # ','
            i = _skip_ws(buf, i + 1, end)
            continue
        if i < end and buf[i] == 93:
            return i + 1, n, kept
        return -1, n, kept


@no_refcount
def _key_index(buf, s, e, key_bytes, key_off, key_class):
    """The schema key the key buf[s:e] names, or -1; REFUSED names match ignoring ASCII case."""
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
            return k
    return -1


@no_refcount
def _new_key(buf, s, e, n_keys, key_start, key_end):
    """Whether the key bytes buf[s:e] differ from the line's earlier keys (recorded in
    key_start/key_end[:n_keys])."""
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
def _typed_value(buf, i, end, cls, stack, max_digits, out, row, k, w):
    """(end, or -1 unless the value at i is of class ``cls``; whether its reading is declined;
    the list cursor after it) with the value read into row ``row`` of schema key ``k`` of
    ``out`` (the arrays of ``_walk``, the bound of the list cursor ``w`` last)."""
    cell, flt, aux, present, values, w_end = out
    if cls == ANY:
        return _value(buf, i, end, stack, max_digits), False, w
    present[k, row] = True
    if cls == NUMBER:
        j, x, exact = _number_value(buf, i, end, max_digits)
        flt[k, row] = x
        return j, not exact, w
    if cls == LABEL:
        if buf[i] != 34:  # an integer label: decoded by DuckDB instead
            return _int(buf, i, end, max_digits), True, w
        j, escaped = _string(buf, i, end)
        cell[k, row] = i + 1
        aux[k, row] = j - 1
        return j, escaped, w  # an escape: decoded by DuckDB instead
    if buf[i] == 91:  # INT or INT_LIST holding a list; only an INT_LIST's values are kept
        j, n, kept = _int_list(buf, i, end, max_digits, values, w, w_end if cls == INT_LIST else w)
        cell[k, row] = w
        aux[k, row] = n
        return j, cls != INT_LIST or not kept, w + n
    j, v, fits = _int_value(buf, i, end, max_digits)
    cell[k, row] = v
    return j, cls != INT or not fits, w


@no_refcount
def _line(buf, i, end, keys, stack, key_start, key_end, max_digits, out, row, w):
    """Validate and read the line whose first non-blank byte is at i (its fields into row
    ``row`` of ``out``, see ``_typed_value``): (the position of its newline, or ``end``, or -1
    when it is flagged; whether a value's reading is declined; the list cursor after it).

    The line's end is found by this walk: no check passes a newline byte (not whitespace, and
    not allowed in a string, a number or a literal)."""
    key_bytes, key_off, key_class = keys
    declined = False
    if buf[i] != 123:  # '{'
        return -1, declined, w
    i = _skip_ws(buf, i + 1, end)
    if i < end and buf[i] == 125:
        i = _skip_ws(buf, i + 1, end)
        return (i if i == end or buf[i] == 10 else -1), declined, w
    n_keys = 0
    while True:
        if i >= end or buf[i] != 34:
            return -1, declined, w
        k_end, escaped = _string(buf, i, end)
        if k_end < 0 or escaped or n_keys == key_start.shape[0]:
            return -1, declined, w
        if not _new_key(buf, i + 1, k_end - 1, n_keys, key_start, key_end):
            return -1, declined, w
        key_start[n_keys] = i + 1
        key_end[n_keys] = k_end - 1
        n_keys += 1
        k = _key_index(buf, i + 1, k_end - 1, key_bytes, key_off, key_class)
        cls = ANY if k < 0 else key_class[k]
        if cls == REFUSED:
            return -1, declined, w
        i = _skip_ws(buf, k_end, end)
        if i >= end or buf[i] != 58:  # ':'
            return -1, declined, w
        i = _skip_ws(buf, i + 1, end)
        if i >= end:
            return -1, declined, w
        i, no, w = _typed_value(buf, i, end, cls, stack, max_digits, out, row, k, w)
        declined = declined or no
        if i < 0:
            return -1, declined, w
        i = _skip_ws(buf, i, end)
        if i < end and buf[i] == 44:
            i = _skip_ws(buf, i + 1, end)
            continue
        if i < end and buf[i] == 125:
            i = _skip_ws(buf, i + 1, end)
            return (i if i == end or buf[i] == 10 else -1), declined, w
        return -1, declined, w


_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_NEWLINES = np.uint64(0x0A0A0A0A0A0A0A0A)
_COMMAS = np.uint64(0x2C2C2C2C2C2C2C2C)
_QUOTES = np.uint64(0x2222222222222222)


@no_refcount
def _equal_bytes(v, c):
    """The high bit of each of the 8 bytes of the word v that equals the byte ``c`` repeats."""
    x = v ^ c
    return ~(((x & _LOW7) + _LOW7) | x | _LOW7)  # no carry crosses bytes


@no_refcount
def _high_bits(x):
    """How many bytes of x have their high bit (the only bit) set."""
    return ((x >> np.uint64(7)) * np.uint64(0x0101010101010101)) >> np.uint64(56)


@no_refcount
def _count_range(buf, words, off, lo, hi):
    """(newlines, commas that may precede a list value) in buf[lo:hi], 8 bytes a step where
    ``words`` (buf[off:] as aligned little-endian uint64) covers them. A comma right before a
    quote is not counted there: it separates keys (or ends a string), never integers."""
    w_lo = (lo - off + 7) // 8
    w_hi = (hi - off) // 8
    if w_lo >= w_hi:
        w_lo = w_hi = (hi - off + 7) // 8  # no whole word: every byte one by one
    lines = np.uint64(0)
    commas = np.uint64(0)
    carry = np.uint64(0)  # a comma in the last byte of the word before, moved to the first
    for w in range(w_lo, w_hi):
        comma = _equal_bytes(words[w], _COMMAS)
        lines += _high_bits(_equal_bytes(words[w], _NEWLINES))
        commas += _high_bits(comma) - _high_bits(((comma << np.uint64(8)) | carry) & _equal_bytes(words[w], _QUOTES))
        carry = comma >> np.uint64(56)
    n_lines, n_commas = int(lines), int(commas)
    for i in range(lo, min(hi, off + 8 * w_lo)):
        n_lines += 1 if buf[i] == 10 else 0
        n_commas += 1 if buf[i] == 44 else 0
    for i in range(max(lo, off + 8 * w_hi), hi):
        n_lines += 1 if buf[i] == 10 else 0
        n_commas += 1 if buf[i] == 44 else 0
    return n_lines, n_commas


@nb.njit(cache=True, nogil=True, parallel=True)
def _count(buf, words, off, bounds):
    """Lines and commas of each part buf[bounds[p]:bounds[p + 1]] (split at line starts)."""
    n_parts = bounds.shape[0] - 1
    lines = np.zeros(n_parts, np.int64)
    commas = np.zeros(n_parts, np.int64)
    for p in nb.prange(n_parts):
        lo = bounds[p]
        hi = bounds[p + 1]
        n_lines, commas[p] = _count_range(buf, words, off, lo, hi)
        lines[p] = n_lines + (1 if hi > lo and buf[hi - 1] != 10 else 0)
    return lines, commas


@nb.njit(cache=True, nogil=True, parallel=True)
def _scan(buf, words, off, bounds, keys, max_digits):
    """Count the parts' lines, then walk them: (blank, ok, declined, and the columns read:
    cell, flt, aux, present and values, as ``_typed_value`` writes them)."""
    lines, commas = _count(buf, words, off, bounds)
    n_parts, m = lines.shape[0], keys[2].shape[0]
    n_lists = 0
    for k in range(m):
        n_lists += 1 if keys[2][k] == INT_LIST else 0
    first = np.zeros(n_parts + 1, np.int64)
    room = np.zeros(n_parts + 1, np.int64)
    for p in range(n_parts):
        first[p + 1] = first[p] + lines[p]
        # Each part's list values get a region of one buffer: a list holds at most its commas
        # + 1 values, and a line one list of each INT_LIST key (a repeated key is flagged
        # before its value is read). The regions are closed up later (_compact_lists): in
        # compact JSON, whose commas outside lists precede quotes, they are about full.
        room[p + 1] = room[p] + (commas[p] + n_lists * lines[p] if n_lists else 0)
    n = first[n_parts]
    blank = np.empty(n, np.bool_)
    ok = np.empty(n, np.bool_)
    declined = np.zeros(n_parts, np.bool_)
    cell = np.zeros((m, n), np.int64)   # an integer, a string's start, a list's start in values
    flt = np.zeros((m, n), np.float64)
    aux = np.zeros((m, n), np.int64)    # a string's end, a list's length
    present = np.zeros((m, n), np.bool_)
    values = np.empty(room[n_parts], np.int64)
    _walk(buf, bounds, first, room, keys, max_digits, blank, ok, cell, flt, aux, present, values, declined)
    return blank, ok, declined, (cell, flt, aux, present, values)


@nb.njit(cache=True, nogil=True, parallel=True)
def _walk(buf, bounds, first, room, keys, max_digits, blank, ok, cell, flt, aux, present, values, declined):
    """Every line of the parts (in parallel) validated and read into its row: part p's lines
    are rows first[p]..., its list values go to values[room[p]:room[p + 1]]; declined[p]: a
    line that passed holds a value the reading declines."""
    for p in nb.prange(bounds.shape[0] - 1):
        stack = np.empty(MAX_DEPTH, np.int8)
        key_start = np.empty(MAX_KEYS, np.int64)
        key_end = np.empty(MAX_KEYS, np.int64)
        i, hi, row, w = bounds[p], bounds[p + 1], first[p], room[p]
        out = (cell, flt, aux, present, values, room[p + 1])
        while i < hi:
            j = _skip_ws(buf, i, hi)
            blank[row] = j == hi or buf[j] == 10
            ok[row] = True
            if not blank[row]:
                j, no, w_next = _line(buf, j, hi, keys, stack, key_start, key_end, max_digits, out, row, w)
                if j < 0:  # flagged: its values are dropped, its end found by a search
                    ok[row] = False
                    j = i
                    while j < hi and buf[j] != 10:
                        j += 1
                else:
                    w = w_next
                    declined[p] = declined[p] or no
            i = j + 1
            row += 1


@nb.njit(cache=True, nogil=True)
def _compact_lists(values, start, length, rows):
    """Move the lists values[start[r]:start[r] + length[r]] of ``rows`` (ascending) to the front
    of ``values``, one after another; their Arrow offsets. In place: a list never moves right
    (the parts' regions and the lines in them are in order), so a forward copy is safe."""
    offsets = np.zeros(rows.shape[0] + 1, np.int64)
    to = 0
    for x in range(rows.shape[0]):
        r = rows[x]
        s = start[r]
        if s != to:
            for j in range(length[r]):
                values[to + j] = values[s + j]
        to += length[r]
        offsets[x + 1] = to
    return offsets


@nb.njit(cache=True, nogil=True)
def _gather_strings(buf, start, end, rows):
    """Arrow string buffers (int64 offsets, bytes) of the spans buf[start[r]:end[r]] of
    ``rows``; a missing value (start = end = 0) is empty."""
    offsets = np.zeros(rows.shape[0] + 1, np.int64)
    for x in range(rows.shape[0]):
        offsets[x + 1] = offsets[x] + end[rows[x]] - start[rows[x]]
    data = np.empty(offsets[-1], np.uint8)
    for x in range(rows.shape[0]):
        data[offsets[x]:offsets[x + 1]] = buf[start[rows[x]]:end[rows[x]]]
    return offsets, data


def _parts(data: bytes) -> np.ndarray:
    """Bounds of the parts of ``data`` walked in parallel, at line starts: about 4 per thread
    for balance on large inputs."""
    n_parts = max(1, min(4 * nb.get_num_threads(), len(data) >> 20))
    bounds = [0]
    for c in range(1, n_parts):
        cut = data.find(b"\n", max(bounds[-1], len(data) * c // n_parts))
        if cut < 0:
            break
        if cut + 1 > bounds[-1]:
            bounds.append(cut + 1)
    if bounds[-1] != len(data) or len(bounds) == 1:
        bounds.append(len(data))
    return np.array(bounds, np.int64)


def read_jsonl(data: bytes, classes: dict[str, int]) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """(1-based numbers of the non-blank lines (blank: only spaces, tabs and CRs), whether each
    passes the strict type check, the typed fields of the lines that pass as Arrow arrays, or
    None when the reading declines one of their values).

    ``classes`` maps field names to INT / INT_LIST / NUMBER / LABEL (the fields read) or
    REFUSED; other fields may hold anything."""
    names = [k.encode("utf-8") for k in classes]
    key_off = np.zeros(len(names) + 1, np.int64)
    np.cumsum([len(k) for k in names], out=key_off[1:])
    key_class = np.array(list(classes.values()) or [ANY], np.int64)
    keys = (np.frombuffer(b"".join(names) or b"\0", np.uint8), key_off, key_class)
    buf = np.frombuffer(data, np.uint8)
    off = -buf.ctypes.data % 8  # the first byte of buf at a multiple of 8 in memory
    words = buf[off:off + (buf.shape[0] - off) // 8 * 8].view(np.uint64)
    # Python refuses integer literals longer than this (0: no limit); so must the scan
    max_digits = sys.get_int_max_str_digits() or len(data)
    blank, ok, declined, read = _scan(buf, words, off, _parts(data), keys, max_digits)
    columns = None
    if not declined.any() and np.count_nonzero(key_class == INT_LIST) <= 1:
        columns = _columns(buf, classes, np.flatnonzero(ok & ~blank), *read)
    keep = ~blank
    return np.flatnonzero(keep) + 1, ok[keep], columns


def _columns(buf, classes: dict, rows: np.ndarray, cell, flt, aux, present, values) -> dict:
    """The read fields of ``rows`` as Arrow arrays (a field missing from a line is null)."""
    import pyarrow as pa
    out = {}
    for f, (name, cls) in enumerate(classes.items()):
        if cls not in (INT, INT_LIST, NUMBER, LABEL):
            continue
        have = present[f, rows]
        missing = None if have.all() else ~have
        if cls == INT:
            out[name] = pa.array(cell[f, rows], pa.int64(), mask=missing)
        elif cls == NUMBER:
            out[name] = pa.array(flt[f, rows], pa.float64(), mask=missing)
        elif cls == LABEL:
            offsets, text = _gather_strings(buf, cell[f], aux[f], rows)
            out[name] = pa.LargeStringArray.from_buffers(rows.shape[0], pa.py_buffer(offsets), pa.py_buffer(text),
                                                         None if missing is None else pa.array(have).buffers()[1])
        else:
            offsets = _compact_lists(values, cell[f], aux[f], rows)
            kept = values[:offsets[-1]]
            if 4 * kept.shape[0] < 3 * values.shape[0]:  # much room unused (commas outside the lists):
                kept = kept.copy()                        # not kept alive by the column
            out[name] = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(kept),
                                                      mask=None if missing is None else pa.array(missing))
    return out
