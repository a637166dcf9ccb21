"""Strict JSON lexing for the JSON-lines scan (``jsonscan.py``), Numba helpers on bytes: each
returns the end of the value at ``i`` (or -1 when it is not strict JSON, as Python's json
module reads it: no NaN/Infinity, strings valid UTF-8), and the ``_value`` ones read the value
as they validate it (``jsonscan``'s module docstring says what is read and what declined)."""
from __future__ import annotations

from .nrt import no_refcount

MAX_EXACT_DIGITS = 15     # below 2**53: the mantissa is exact as a float64
MAX_EXACT_POWER = 22      # 10**22 is the largest power of ten exact as a float64
_INT64_MAX_DIV10 = (2 ** 63 - 1) // 10


@no_refcount
def _is_ws(c):
    return c == 32 or c == 9 or c == 13


@no_refcount
def _skip_ws(buf, i, end):
    while i < end and _is_ws(buf[i]):
        i += 1
    return i


@no_refcount
def _int_value(buf, i, end, max_digits):
    """(end, value, whether the value is within int64) of the integer literal at i; end -1 when
    it is not one (also beyond ``max_digits`` digits: Python's int() refuses those)."""
    neg = i < end and buf[i] == 45  # '-'
    if neg:
        i += 1
    start = i
    v = 0  # accumulated as a negative number: -2**63 fits, 2**63 does not
    while i < end and 48 <= buf[i] <= 57:
        v = v * 10 - (buf[i] - 48)  # cannot overflow up to 18 digits; longer ones are checked
        i += 1
    if i == start or (buf[start] == 48 and i - start > 1) or i - start > max_digits:
        return -1, 0, False
    if i - start > 18:
        v, fits = _long_int64(buf, start, i)
        if not fits:
            return i, 0, False
    if not neg:
        if v == -(2 ** 63):
            return i, 0, False
        v = -v
    return i, v, True


@no_refcount
def _long_int64(buf, i, end):
    """(minus the value of the digits buf[i:end], whether it is at least -2**63)."""
    v = 0
    for j in range(i, end):
        d = buf[j] - 48
        if v < -_INT64_MAX_DIV10 or (v == -_INT64_MAX_DIV10 and d > 8):
            return 0, False
        v = v * 10 - d
    return v, True


@no_refcount
def _int(buf, i, end, max_digits):
    """End of the integer literal at i, or -1 (``_int_value``)."""
    return _int_value(buf, i, end, max_digits)[0]


@no_refcount
def _pow10(power):
    """10.0 ** power, exact for power <= MAX_EXACT_POWER (every partial product is exact)."""
    value = 1.0
    for _ in range(power):
        value *= 10.0
    return value


@no_refcount
def _number_value(buf, i, end, max_digits):
    """(end, value, whether the value is Python's float() of the number) of the JSON number at i;
    end -1 when it is not one (an integer beyond ``max_digits`` digits too: Python refuses those,
    but has no digit limit for a float). The value is given only when one exact operation on the
    mantissa gives it (the module docstring)."""
    start = i
    i, v, fits = _int_value(buf, i, end, end)
    if i < 0:
        return -1, 0.0, False
    neg = buf[start] == 45
    digits = i - start - (1 if neg else 0)  # of the integer part: no leading zeros but a lone "0"
    if not (i < end and (buf[i] == 46 or buf[i] == 101 or buf[i] == 69)):  # an integer
        if digits > max_digits:
            return -1, 0.0, False
    if fits and v == 0:
        digits = 0  # significant digits only
    mant = 0
    if digits <= MAX_EXACT_DIGITS:
        mant = -v if neg else v
    scale = 0  # decimal places taken into the mantissa
    if i < end and buf[i] == 46:  # '.'
        i += 1
        first = i
        while i < end and 48 <= buf[i] <= 57:
            d = buf[i] - 48
            if mant or d:
                digits += 1
            if digits <= MAX_EXACT_DIGITS:
                mant = mant * 10 + d
            scale += 1
            i += 1
        if i == first:
            return -1, 0.0, False
    power = 0
    huge = False
    if i < end and (buf[i] == 101 or buf[i] == 69):  # e E
        i += 1
        eneg = i < end and buf[i] == 45
        if i < end and (buf[i] == 43 or buf[i] == 45):
            i += 1
        first = i
        while i < end and 48 <= buf[i] <= 57:
            if power > 1000:
                huge = True
            else:
                power = power * 10 + (buf[i] - 48)
            i += 1
        if i == first:
            return -1, 0.0, False
        if eneg:
            power = -power
    if huge or digits > MAX_EXACT_DIGITS:
        return i, 0.0, False
    power -= scale
    value = float(mant)
    if mant == 0:
        value = 0.0
    elif 0 <= power <= MAX_EXACT_POWER:
        value = value * _pow10(power)
    elif -MAX_EXACT_POWER <= power < 0:
        value = value / _pow10(-power)
    else:
        return i, 0.0, False
    return i, -value if neg else value, True


@no_refcount
def _number(buf, i, end, max_digits):
    """End of the JSON number at i, or -1 (``_number_value``)."""
    return _number_value(buf, i, end, max_digits)[0]


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
    """(end after the closing quote, or -1; whether it holds an escape) of a strict JSON string
    starting at the quote at i: escapes are one of \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX, no raw
    control bytes (so no newline), valid UTF-8."""
    i += 1
    escaped = False
    while i < end:
        c = buf[i]
        if c == 34:
            return i + 1, escaped
        if c == 92:  # backslash
            escaped = True
            if i + 1 >= end:
                return -1, escaped
            e = buf[i + 1]
            if e == 117:  # \uXXXX
                if i + 5 >= end:
                    return -1, escaped
                for j in range(i + 2, i + 6):
                    if not _is_hex(buf[j]):
                        return -1, escaped
                i += 6
            elif e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116:
                i += 2
            else:
                return -1, escaped
        elif c < 32:
            return -1, escaped
        elif c < 128:
            i += 1
        else:
            i = _utf8(buf, i, end)
            if i < 0:
                return -1, escaped
    return -1, escaped


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
    i = _string(buf, i, end)[0]
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
        return _string(buf, i, end)[0]
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
