"""``no_refcount``: ``numba.njit(cache=True)`` without Numba's reference counting, for the
helpers that inner loops call.

A helper that only reads and writes arrays it is handed (never allocates, returns or keeps
one) does not need the counts. With them, every call that LLVM does not inline increfs and
decrefs each array argument, an atomic operation apiece: perf measured 40% of a 3-tier
heap-policy replay (kernels/replay.py) there, and the JSON scanner's helpers paid the same
per field. A function compiled this way cannot allocate an array.
"""
from __future__ import annotations

import numba as nb

no_refcount = nb.njit(cache=True, _nrt=False)
