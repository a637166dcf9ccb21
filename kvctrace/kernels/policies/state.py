"""The state one replay keeps: per block (read by the policies' keys) and per tier (the
structure of the tier's policy family). Built by the engine (kernels/replay.py: new_state)
and handed to the hooks as separate arrays, each hook getting its family's.

Per block, one row per block so one access touches one cache line (``bst[b, field]``):
last access index, in-cache access count, request stamp, next use, accesses so far, and a
bitmask of the tiers holding the block (bit k) and of those that have ever held it (bit 32 + k).

Per tier: a slot in the arrays of its policy's family (spec.py):
* LIST: ``link[s, b] = (prev, next)`` (int32) and ``lends[s] = (head, tail, size)`` (lists.py);
* HEAP: ``hb[s, i]`` = block at heap position i, ``hk[s, i]`` = its key (beside the block so
  sifting reads contiguous memory), ``hpos[s, b]`` = position of b (-1: not held), ``hsize``;
* OWN: ``st[s, b, :]`` the policy's per-block int64 fields, ``sc[s, :]`` its int64 scalars.
"""
from __future__ import annotations

import numpy as np

from .spec import hook

B_LAST, B_FREQ, B_STAMP, B_NEXT, B_SEEN, B_MEMBER = 0, 1, 2, 3, 4, 5
B_FIELDS = 6

# Request stamp: (request index, -position) in one int64, so that a later request, and within a
# request a shallower block, compares larger (prefix_lru.py). Positions saturate at 2**24 - 1.
STAMP_POS_BITS = 24
STAMP_MAX_POS = (1 << STAMP_POS_BITS) - 1


@hook
def request_stamp(r, pos):
    p = pos if pos < STAMP_MAX_POS else STAMP_MAX_POS
    return (np.int64(r) << np.int64(STAMP_POS_BITS)) | np.int64(STAMP_MAX_POS - p)
