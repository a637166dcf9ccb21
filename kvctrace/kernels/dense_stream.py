"""Dense first-appearance ids of a stream of 64-bit ids that arrives in chunks (a streamed
ingest, ``store.py``): ``DenseIdMap.map(chunk)`` gives, chunk after chunk, exactly the ids
``hashing.dense_ids`` gives for the whole stream at once.

The map persists across chunks. While the ids seen are already first-appearance ids (0, then
every new id is the largest so far + 1, as in Mooncake files and kvctrace's synth traces) it
is the identity and holds nothing but the count. From the first id that breaks that, it is
the open-addressing table of ``hashing._dense_ids_hashed`` (ids seen so far inserted first):
16 bytes per slot at a load of at most 0.7 (so 23 to 46 bytes per distinct id, doubling when
full) plus 8 bytes per distinct id for the id's key (``uniq``, which the table's run check
reads)."""
from __future__ import annotations

import numba as nb
import numpy as np

from .hashing import _MAX_LOAD, _dense_ids_hashed, _rehash

_MIN_SLOTS = 1 << 12


@nb.njit(cache=True)
def _identity_run(keys, count):
    """How many leading keys continue first-appearance ids when ``count`` ids (0 .. count-1)
    have been seen, and the count after them."""
    for i in range(keys.shape[0]):
        k = keys[i]
        if k > count:
            return i, count
        if k == count:
            count += np.uint64(1)
    return keys.shape[0], count


def _as_uint64(keys: np.ndarray) -> np.ndarray:
    """The 64-bit pattern of integer ids (ids are taken modulo 2**64, as ``dense_ids`` does)."""
    keys = np.ascontiguousarray(keys)
    if keys.dtype == np.uint64:
        return keys
    if keys.dtype == np.int64:
        return keys.view(np.uint64)
    if keys.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got {keys.dtype}")
    return keys.astype(np.int64).view(np.uint64)


class DenseIdMap:
    """First-appearance dense ids across chunks (module doc). ``count``: distinct ids so far;
    ``keys()``: the id of each dense id (``uniq``; in the identity phase 0 .. count-1)."""

    def __init__(self):
        self.count = 0
        self._table: np.ndarray | None = None  # (key, dense id + 1) pairs; None: identity so far
        self._uniq = np.empty(0, np.uint64)
        self._slots = 0

    @property
    def nbytes(self) -> int:
        """Bytes the map holds (its table, and the keys of the ids seen)."""
        return 0 if self._table is None else self._table.nbytes + 8 * self.count

    def keys(self) -> np.ndarray:
        """The id (uint64) of each dense id seen so far, in dense-id order."""
        return np.arange(self.count, dtype=np.uint64) if self._table is None else self._uniq[:self.count].copy()

    def map(self, keys: np.ndarray) -> np.ndarray:
        """Dense ids (int64) of the next chunk of the stream."""
        keys = _as_uint64(keys)
        n = keys.shape[0]
        out = np.empty(n, np.int64)
        start = 0
        if self._table is None:
            start, count = _identity_run(keys, np.uint64(self.count))
            out[:start] = keys[:start].view(np.int64)
            self.count = int(count)
            if start == n:
                return out
            self._to_table()
        while True:
            start, count = _dense_ids_hashed(keys, self._table, self._uniq, out, start, self.count,
                                             self._capacity())
            self.count = int(count)
            if start >= n:
                return out
            self._grow(self._slots * 2)

    def _capacity(self) -> int:
        return int(self._slots * _MAX_LOAD)

    def _to_table(self) -> None:
        """Leave the identity phase: the ids 0 .. count-1 seen so far go into a table."""
        slots = _MIN_SLOTS
        while slots * _MAX_LOAD <= self.count * 1.5:
            slots *= 2
        self._uniq = np.arange(self.count, dtype=np.uint64)
        self._grow(slots)

    def _grow(self, slots: int) -> None:
        self._slots = slots
        uniq = np.empty(self._capacity() + 1, np.uint64)
        uniq[:self.count] = self._uniq[:self.count]
        self._uniq = uniq
        self._table = np.zeros(2 * slots, np.uint64)
        _rehash(self._uniq, self.count, self._table)
