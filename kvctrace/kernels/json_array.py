"""Where a JSON array's top-level elements end, across pieces of its text (Numba).

The streamed read of a ``.json`` trace (formats/stream.py) cuts the one top-level array into
chunks of whole elements without parsing it: it needs only the commas between top-level
elements and the bracket that closes the array. Strings (with their escapes) and nesting
depth are tracked in ``state`` from one piece to the next, so a piece may end anywhere: inside
a string, after a backslash, between the bytes of a character. The scan validates nothing;
each chunk is then parsed by Python's json, which finds any error at the same place as the
whole-file parse would (the chunk's context is the array's)."""
from __future__ import annotations

import numba as nb
import numpy as np

DEPTH, IN_STRING, ESCAPED = 0, 1, 2  # the fields of ``state``


def new_state() -> np.ndarray:
    """The state just after the array's opening bracket."""
    state = np.zeros(3, np.int64)
    state[DEPTH] = 1
    return state


@nb.njit(cache=True, nogil=True)
def element_ends(buf: np.ndarray, state: np.ndarray) -> tuple:
    """(position of the last comma between top-level elements, position of the bracket that
    closes the array) in ``buf``, each -1 when absent; the scan stops at the close. ``state``
    is updated to the end of the scan. Any closing bracket or brace that brings the depth to 0
    counts as the close: a mismatched one is malformed JSON, which the chunk's parse reports."""
    depth, in_string, escaped = state[DEPTH], state[IN_STRING], state[ESCAPED]
    last_comma, close = -1, -1
    for i in range(buf.shape[0]):
        c = buf[i]
        if in_string:
            if escaped:
                escaped = 0
            elif c == 92:  # backslash
                escaped = 1
            elif c == 34:  # quote
                in_string = 0
        elif c == 34:
            in_string = 1
        elif c == 44:  # comma
            if depth == 1:
                last_comma = i
        elif c == 91 or c == 123:  # [ {
            depth += 1
        elif c == 93 or c == 125:  # ] }
            depth -= 1
            if depth == 0:
                close = i
                break
    state[DEPTH], state[IN_STRING], state[ESCAPED] = depth, in_string, escaped
    return last_comma, close
