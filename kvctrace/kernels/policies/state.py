"""The state one replay keeps: per block (read by the policies' keys) and per tier (the
structure of the tier's policy family). Built by the engine (kernels/replay.py: new_state)
and handed to the hooks as separate arrays, each hook getting its family's.

All per-block state, of the block and of every tier, is one row per block of one array
(``rows``): an access then touches one or two cache lines of its block, and a block moving
from tier to tier (an eviction demoted, a hit promoted) finds its next tier's fields in the
row it has just been read from. With separate per-tier arrays a miss cascading down three
tiers read four rows from memory, which made the engine memory-bound on traces of millions
of blocks. The rows hold 4-byte integers whenever the trace allows (fewer than 2**30
accesses), 8-byte ones otherwise: the width follows the dtype of the next-use array the
engine is given (``TraceArrays.next_use``), the widest value kept.

The arrays the hooks see are views into ``rows`` with the same indexing as separate arrays:
* per block, ``bst[b, field]``: last access index, in-cache access count, request index and
  depth of the last access (the request stamp), next use, accesses so far, and a bitmask of
  the tiers holding the block (bit k) and of those that have ever held it (bit 16 + k);
* LIST tiers: ``link[s, b] = (prev, next)`` (lists.py); ``lends[s] = (head, tail, size)``
  (int64, per tier);
* HEAP tiers: ``hpos[s, b]`` = position of b + 1 (0: not held; heap.py); the heap itself,
  ``hb[s, i]`` = block at position i and ``hk[s, i]`` = its key (beside the block so
  sifting reads contiguous memory), and ``hsize``, are per tier (int64);
* OWN tiers: ``st[s, b, :]`` the policy's per-block fields, ``sc[s, :]`` its int64 scalars.
"""
from __future__ import annotations

import numpy as np

from .spec import hook

B_LAST, B_FREQ, B_REQ, B_DEPTH, B_NEXT, B_SEEN, B_MEMBER = 0, 1, 2, 3, 4, 5, 6
B_FIELDS = 7
# B_MEMBER: bit k = tier k holds the block; bit EVER_SHIFT + k = tier k has held it at some
# point (at most 16 tiers, replay/config.py MAX_TIERS: the word fits 4 bytes)
EVER_SHIFT = 16
LIST_FIELDS, HEAP_FIELDS = 2, 1     # per block and tier: (prev, next); heap position + 1

# Request stamp: (request index, depth) where depth = 2**24 - 1 - position, so that a later
# request, and within a request a shallower block, compares larger (prefix_lru.py).
# Positions saturate at 2**24 - 1.
STAMP_POS_BITS = 24
STAMP_MAX_POS = (1 << STAMP_POS_BITS) - 1


def row_itemsize(n_accesses: int) -> int:
    """Bytes per field of the rows of a trace of ``n_accesses`` (module docstring): next-use
    values reach 2n, which fit 4 bytes while 2n < 2**31; access indices, block ids and counts
    stay below n, request indices below 2**31 (2**31 requests' offsets alone are 16 GiB)."""
    return 4 if 2 * n_accesses < 2**31 else 8


@hook
def stamp(bst, b, r, pos):
    """Record that block ``b`` was accessed at position ``pos`` of request ``r``."""
    bst[b, B_REQ] = r
    bst[b, B_DEPTH] = STAMP_MAX_POS - (pos if pos < STAMP_MAX_POS else STAMP_MAX_POS)


@hook
def stamp_key(bst, b):
    """The request stamp as one int64: request << 24 | depth."""
    return (np.int64(bst[b, B_REQ]) << np.int64(STAMP_POS_BITS)) | np.int64(bst[b, B_DEPTH])
