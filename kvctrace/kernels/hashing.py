"""Chained prefix hashing, rechaining, coarsening and dense-id mapping (Numba).

The hash is documented so ids are reproducible on every run and machine (never Python
``hash()``):

* ``fmix64(z)`` is the SplitMix64 / MurmurHash3 64-bit finalizer
  (``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31``).
* ``combine(h, x) = fmix64(h ^ fmix64(x + 0x9E3779B97F4A7C15))``: all arithmetic mod 2**64.
* content hash of a token block: ``c = CONTENT_SEED; c = combine(c, t)`` for each token ``t``,
  then ``c = combine(c, n_tokens)`` so a partial block never equals a full one.
* chained prefix id: ``h_{-1} = CHAIN_SEED``, ``h_i = combine(h_{i-1}, c_i)``; ``h_i`` names
  block ``i`` together with its whole prefix. Rechaining (Bailian) applies the same chain to
  per-block content hashes given by the trace.
* coarsening by ``k``: the coarse block ``j`` covers fine blocks ``jk .. jk+k-1``; since a
  chained id names its whole prefix, the coarse id is the chained id of the group's last fine
  block. Its prefix-equivalence classes equal those of hashing at ``k`` times the block size.
* dense ids: any 64-bit ids become 0, 1, 2, ... in order of first appearance (the ``accesses``
  table's ``block``); see the dense-id section below for how that runs at memory speed.
"""
from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

CHAIN_SEED = np.uint64(0x6B76637472616365)    # "kvctrace"
CONTENT_SEED = np.uint64(0x626C6F636B733136)  # "blocks16"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


@nb.njit(cache=True, inline="always")
def fmix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@nb.njit(cache=True, inline="always")
def combine(h, x):
    return fmix64(h ^ fmix64(x + _GOLDEN))


@nb.njit(cache=True)
def _hash_token_blocks(tokens, offsets, block_size, include_partial):
    n_req = offsets.shape[0] - 1
    out_off = np.zeros(n_req + 1, np.int64)
    for r in range(n_req):
        n = offsets[r + 1] - offsets[r]
        nb_ = n // block_size
        if include_partial and n % block_size:
            nb_ += 1
        out_off[r + 1] = out_off[r] + nb_
    out = np.empty(out_off[n_req], np.uint64)
    for r in range(n_req):
        start = offsets[r]
        end = offsets[r + 1]
        h = CHAIN_SEED
        for b in range(out_off[r + 1] - out_off[r]):
            lo = start + b * block_size
            hi = min(lo + block_size, end)
            c = CONTENT_SEED
            for i in range(lo, hi):
                c = combine(c, np.uint64(tokens[i]))
            c = combine(c, np.uint64(hi - lo))
            h = combine(h, c)
            out[out_off[r] + b] = h
    return out, out_off


@nb.njit(cache=True)
def _rechain(content, offsets):
    out = np.empty(content.shape[0], np.uint64)
    for r in range(offsets.shape[0] - 1):
        h = CHAIN_SEED
        for i in range(offsets[r], offsets[r + 1]):
            h = combine(h, np.uint64(content[i]))
            out[i] = h
    return out


@nb.njit(cache=True)
def _coarsen(chained, offsets, k, include_partial):
    n_req = offsets.shape[0] - 1
    out_off = np.zeros(n_req + 1, np.int64)
    for r in range(n_req):
        n = offsets[r + 1] - offsets[r]
        m = n // k
        if include_partial and n % k:
            m += 1
        out_off[r + 1] = out_off[r] + m
    out = np.empty(out_off[n_req], chained.dtype)
    for r in range(n_req):
        start = offsets[r]
        n = offsets[r + 1] - start
        for j in range(out_off[r + 1] - out_off[r]):
            last = min((j + 1) * k, n) - 1
            out[out_off[r] + j] = chained[start + last]
    return out, out_off


# ---- dense ids --------------------------------------------------------------------------------
# Mapping ids to 0, 1, 2, ... in first-appearance order is a sequential loop whose cost is one
# random memory access per id (hash table or lookup array). Three things keep it fast:
# * the loops prefetch the slot of the id _PREFETCH positions ahead, so that many cache misses
#   are in flight at once instead of one; the mapping itself stays strictly sequential;
# * tables are allocated by numpy in the wrapper, not inside the kernels: numpy asks Linux for
#   transparent huge pages on large arrays, which removes most TLB misses of random probes
#   (Numba's own allocator does not; measured 55 vs 40 M ids/s on a 128 MB table);
# * tables are zero-filled (pages mapped lazily) and store id + 1, so 0 means empty.

_PREFETCH = 32
_MAX_LOAD = 0.7  # linear probing: about 2 slots per hit, 6 per miss, mostly one cache line


@intrinsic
def _prefetch(typingctx, arr, idx):
    """LLVM ``llvm.prefetch`` (read, high locality) of ``arr[idx]``; a hint, never a fault."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]],
                                       wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@nb.njit(cache=True)
def _scan(keys):
    """min, max, and whether the keys are already first-appearance dense ids (0, then every
    new value is max-so-far + 1, as in Mooncake files): then the mapping is the identity."""
    lo = keys[0]
    hi = keys[0]
    ordered = keys[0] == 0
    for i in range(keys.shape[0]):
        k = keys[i]
        if k > hi:
            if k != hi + 1:
                ordered = False
            hi = k
        elif k < lo:
            lo = k
    return lo, hi, ordered and lo == 0


@nb.njit(cache=True)
def _dense_ids_hashed(keys, table, uniq, out, start, next_id, max_entries):
    """First-appearance dense ids of ``keys[start:]`` through an open-addressing (linear
    probing) table of (key, id + 1) pairs side by side, so a probe touches one cache line.
    ``uniq[id]`` is the key of each id, in id order.

    Prefix traces revisit runs of blocks in the order they first appeared (a request that
    shares a prefix walks it block by block), so after a hit on id x the next key is often
    the key of id x + 1: one check of ``uniq`` (sequential memory) skips the table probe.
    A score turns the check off on streams where it keeps failing (random keys).

    Returns (stop, next_id): stop < len(keys) when the table reached ``max_entries``; the
    wrapper then moves it to a bigger table and calls again from ``stop``."""
    n = keys.shape[0]
    mask = np.uint64(table.shape[0] // 2 - 1)
    prev = -1   # id of the previous key if it was already known, else -1
    score = 16  # > 0: the run check pays off; rechecked every 256 keys when off
    for i in range(start, n):
        if i + _PREFETCH < n:
            _prefetch(table, np.int64(fmix64(keys[i + _PREFETCH]) & mask) * 2)
        key = keys[i]
        if prev >= 0 and prev + 1 < next_id and (score > 0 or (i & 255) == 0):
            if uniq[prev + 1] == key:
                prev += 1
                out[i] = prev
                score = min(score + 4, 64)
                continue
            score -= 1
        slot = fmix64(key) & mask
        while True:
            j = np.int64(slot) * 2
            v = table[j + 1]
            if v == 0:
                table[j] = key
                uniq[next_id] = key
                next_id += 1
                table[j + 1] = np.uint64(next_id)
                out[i] = next_id - 1
                prev = -1
                if next_id >= max_entries:
                    return i + 1, next_id
                break
            if table[j] == key:
                prev = np.int64(v) - 1
                out[i] = prev
                break
            slot = (slot + np.uint64(1)) & mask
    return n, next_id


@nb.njit(cache=True)
def _rehash(uniq, count, bigger):
    """Insert the first ``count`` keys of ``uniq`` (ids 0 .. count-1) into an empty table."""
    mask = np.uint64(bigger.shape[0] // 2 - 1)
    for k in range(count):
        if k + _PREFETCH < count:
            _prefetch(bigger, np.int64(fmix64(uniq[k + _PREFETCH]) & mask) * 2)
        key = uniq[k]
        slot = fmix64(key) & mask
        while bigger[np.int64(slot) * 2 + 1] != 0:
            slot = (slot + np.uint64(1)) & mask
        bigger[np.int64(slot) * 2] = key
        bigger[np.int64(slot) * 2 + 1] = np.uint64(k + 1)


@nb.njit(cache=True)
def _dense_ids_direct(keys, lut, out):
    """Same mapping for small non-negative integer ids (e.g. renumbered ids that are not in
    first-appearance order): a direct-address array ``lut`` of id + 1 replaces the table."""
    n = keys.shape[0]
    next_id = 0
    for i in range(n):
        if i + _PREFETCH < n:
            _prefetch(lut, keys[i + _PREFETCH])
        k = keys[i]
        v = lut[k]
        if v == 0:
            next_id += 1
            lut[k] = next_id
            out[i] = next_id - 1
        else:
            out[i] = v - 1
    return next_id



# ---- dense ids of large streams: partitioned by hash ---------------------------------------
# With millions of distinct keys the single table above is 64+ MB, and every probe is a DRAM
# miss: prefetching hides latency, not bandwidth, and random 64-bit keys (no runs to skip)
# peak near 45 M ids/s. Splitting the keys by the top bits of their hash into partitions of
# about _PARTITION_KEYS keys makes each partition's table fit one core's L2 cache; every other
# pass is a sequential or few-streams sweep. First-appearance order stays exact because a
# partition keeps its keys in stream order (so its local ids are in first-appearance order
# too) and a final sweep in stream order hands out global ids (``_global_ids``).
# ``fmix64`` is a bijection of 64-bit words (xor-shifts and a multiply by an odd constant are
# all invertible), so the partitions hash the key once and then work on hashes alone: equal
# hashes mean equal keys.

# Below about 3M keys the single table is mostly L3-resident and its run check wins on prefix
# traces (measured: 2.1M chained hashes 83 vs 71 M ids/s; parity at 3M; 4M+ partitions win).
_PARTITION_MIN_KEYS = 3_000_000
_PARTITION_KEYS = 40_000       # table of at most 64K slots x 16 B = 1 MB: one core's L2


@nb.njit(cache=True)
def _partition_of(keys, bits, part, counts):
    """Partition (top ``bits`` bits of the hash) of every key, and the size of each."""
    shift = np.uint64(64 - bits)
    for i in range(keys.shape[0]):
        p = fmix64(keys[i]) >> shift
        part[i] = p
        counts[p] += 1


@nb.njit(cache=True)
def _scatter_hashes(keys, part, starts, hashes):
    """Hashes of the keys grouped by partition, each group in stream order."""
    cursor = starts[:-1].copy()
    for i in range(keys.shape[0]):
        p = part[i]
        hashes[cursor[p]] = fmix64(keys[i])
        cursor[p] += 1


@nb.njit(cache=True, parallel=True)
def _local_ids(hashes, starts, tables, local, n_local):
    """Per partition, ids 0, 1, ... of its hashes in first-appearance order (``local``) and
    its distinct count (``n_local``). Partitions are independent, so the cores share them;
    each worker has its own row of ``tables``. A partition's table has room for all of its
    keys at load <= 0.7, so it never grows (a smaller estimate measured slower: more probes)."""
    n_part = starts.shape[0] - 1
    n_workers = tables.shape[0]
    for w in nb.prange(n_workers):
        for p in range(w, n_part, n_workers):
            a = starts[p]
            b = starts[p + 1]
            slots = 16
            while slots * 7 < (b - a) * 10:
                slots *= 2
            table = tables[w, :2 * slots]
            table[:] = 0
            mask = np.uint64(slots - 1)
            count = 0
            for i in range(a, b):
                if i + _PREFETCH < b:
                    _prefetch(table, np.int64(hashes[i + _PREFETCH] & mask) * 2)
                h = hashes[i]
                j = np.int64(h & mask) * 2
                while table[j + 1] != 0 and table[j] != h:
                    j = np.int64((np.uint64(j // 2) + np.uint64(1)) & mask) * 2
                # New key or hit, without a branch on which (about half and half on random
                # keys, so a branch would mispredict often): table holds id + 1, 0 = empty.
                v = table[j + 1]
                new = v == 0
                count += np.int64(new)
                v = np.uint64(count) if new else v
                table[j] = h
                table[j + 1] = v
                local[i] = np.int32(v - np.uint64(1))
            n_local[p] = count


@nb.njit(cache=True)
def _global_ids(part, starts, local, n_local):
    """Turn local ids into global first-appearance ids, in place; returns the distinct count.

    Walking the stream in order, the next key of partition p is its first occurrence exactly
    when its local id equals the number of p's keys seen so far, and then it takes the next
    global id. ``first[base[p] + l]`` records the global id of p's local id l; it is written
    append-only per partition (one spare slot each, so the write can be unconditional: a
    non-first key writes the slot its partition's next new key will overwrite)."""
    n_part = starts.shape[0] - 1
    base = np.zeros(n_part + 1, np.int64)
    for p in range(n_part):
        base[p + 1] = base[p] + n_local[p] + 1
    first = np.empty(base[n_part], np.int32)
    cursor = starts[:-1].copy()
    seen = np.zeros(n_part, np.int64)
    next_id = 0
    for i in range(part.shape[0]):
        p = part[i]
        l = local[cursor[p]]
        cursor[p] += 1
        s = seen[p]
        first[base[p] + s] = next_id
        is_new = np.int64(l == s)
        seen[p] = s + is_new
        next_id += is_new
    for p in range(n_part):  # one partition at a time: its slice of ``first`` stays in cache
        ids = first[base[p]:base[p + 1]]
        for i in range(starts[p], starts[p + 1]):
            local[i] = ids[local[i]]
    return next_id


@nb.njit(cache=True)
def _gather_ids(part, starts, ids, out):
    """Back to stream order: the next id of each key's partition (one read stream each)."""
    cursor = starts[:-1].copy()
    for i in range(part.shape[0]):
        p = part[i]
        out[i] = ids[cursor[p]]
        cursor[p] += 1


def _dense_ids_partitioned(keys: np.ndarray, bits: int, dtype=np.int64) -> tuple[np.ndarray, int]:
    """``dense_ids`` of uint64 ``keys`` (fewer than 2**31) over 2**bits hash partitions."""
    n = keys.shape[0]
    part = np.empty(n, np.uint8)
    counts = np.zeros(1 << bits, np.int64)
    _partition_of(keys, np.uint64(bits), part, counts)
    starts = np.zeros(counts.shape[0] + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    hashes = np.empty(n, np.uint64)
    _scatter_hashes(keys, part, starts, hashes)
    del counts
    slots = 16
    while slots * 7 < int(np.diff(starts).max()) * 10:
        slots *= 2
    tables = np.zeros((max(1, nb.get_num_threads()), 2 * slots), np.uint64)
    local = np.empty(n, np.int32)
    n_local = np.zeros(starts.shape[0] - 1, np.int64)
    _local_ids(hashes, starts, tables, local, n_local)
    del hashes, tables
    count = _global_ids(part, starts, local, n_local)
    out = np.empty(n, dtype)
    _gather_ids(part, starts, local, out)
    return out, int(count)


def _check_csr(values: np.ndarray, offsets: np.ndarray) -> None:
    if (offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0
            or offsets[-1] != values.shape[0] or np.any(np.diff(offsets) < 0)):
        raise ValueError("offsets must start at 0, never decrease and end at len(values)")


def _integers(values, name: str) -> np.ndarray:
    values = np.ascontiguousarray(values)
    if values.dtype.kind not in "iub" or values.dtype.itemsize > 8:
        raise ValueError(f"{name} must be integers of at most 64 bits, got dtype {values.dtype}")
    return values


def _as_uint64(values: np.ndarray) -> np.ndarray:
    """The same 64-bit pattern as uint64 (int64 by view; narrower ints sign-extend first)."""
    if values.dtype == np.uint64:
        return values
    if values.dtype.itemsize == 8:
        return values.view(np.uint64)
    return values.astype(np.int64).view(np.uint64) if values.dtype.kind == "i" else values.astype(np.uint64)


def hash_token_blocks(tokens: np.ndarray, offsets: np.ndarray, block_size: int,
                      partial: str = "include") -> tuple[np.ndarray, np.ndarray]:
    """Chained prefix ids (uint64) of fixed-size token blocks, CSR in and out.

    ``partial='include'`` keeps the last partial block (Mooncake); ``'drop'`` drops it (vLLM).
    """
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    if partial not in ("include", "drop"):
        raise ValueError("partial must be 'include' or 'drop'")
    tokens = np.ascontiguousarray(_integers(tokens, "tokens"), dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    _check_csr(tokens, offsets)
    return _hash_token_blocks(tokens, offsets, np.int64(block_size), partial == "include")


def rechain(content_hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Turn per-block content hashes (not chained, e.g. Bailian) into chained prefix ids."""
    content = np.ascontiguousarray(_as_uint64(_integers(content_hashes, "content_hashes")))
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    _check_csr(content, offsets)
    return _rechain(content, offsets)


def coarsen(chained: np.ndarray, offsets: np.ndarray, k: int,
            partial: str = "include") -> tuple[np.ndarray, np.ndarray]:
    """Re-block chained ids at ``k`` times the block size (ids of each group's last block)."""
    if k < 1:
        raise ValueError("coarsen factor must be >= 1")
    if partial not in ("include", "drop"):
        raise ValueError("partial must be 'include' or 'drop'")
    chained = np.ascontiguousarray(chained)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    _check_csr(chained, offsets)
    return _coarsen(chained, offsets, np.int64(k), partial == "include")


def dense_ids(keys: np.ndarray, dtype=np.int64) -> tuple[np.ndarray, int]:
    """Map ids (any integers up to 64 bits) to 0, 1, 2, ... in order of first appearance.

    Returns the ids (``dtype``: int64, or int32 for fewer than 2**31 keys, which is how a
    trace keeps its block ids) and the number of distinct keys. Keys that already are
    first-appearance ids come back as a copy; small non-negative ranges use a direct-address
    array; millions of other keys go through cache-sized hash partitions; the rest one hash
    table sized by the number of distinct keys."""
    keys = _integers(keys, "keys")
    n = keys.shape[0]
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.int32), np.dtype(np.int64)) or (dtype == np.int32 and n >= 2**31 - 1):
        raise ValueError(f"dense ids are int64, or int32 below 2**31 keys; got {dtype} for {n:,} keys")
    if n == 0:
        return np.empty(0, dtype), 0
    if keys.dtype.kind == "b":
        keys = keys.view(np.uint8)
    lo, hi, ordered = _scan(keys)
    if ordered:
        return keys.astype(dtype), int(hi) + 1
    out = np.empty(n, dtype)
    if lo >= 0 and hi < 4 * n + 1024 and n < 2**31 - 1:
        count = _dense_ids_direct(keys.astype(np.int64, copy=False), np.zeros(int(hi) + 1, np.int32), out)
        return out, int(count)
    keys = np.ascontiguousarray(_as_uint64(keys))
    if _PARTITION_MIN_KEYS <= n < 2**31 - 1:
        bits = int(np.clip(np.round(np.log2(n / _PARTITION_KEYS)), 1, 8))
        return _dense_ids_partitioned(keys, bits, dtype)
    # Start sized for 40% of the keys being distinct (real traces: Mooncake conversation 63%
    # of 288k, kvctrace.synth 42% of 10M; a small table keeps more of it in cache); double
    # when full, so any share works.
    slots = 1 << max(12, int(np.ceil(np.log2(max(0.4 * n, 1.0) / _MAX_LOAD))))
    table = np.zeros(2 * slots, np.uint64)
    uniq = np.empty(n, np.uint64)  # pages are touched only up to the distinct count
    done, count = 0, 0
    while True:
        done, count = _dense_ids_hashed(keys, table, uniq, out, done, count, int(slots * _MAX_LOAD))
        if done >= n:
            return out, int(count)
        slots *= 2
        table = np.zeros(2 * slots, np.uint64)
        _rehash(uniq, count, table)
