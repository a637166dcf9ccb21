"""Prefix hashing: content hashes, chained ids, re-chaining, coarsening, dense ids
(kvctrace/kernels/hashing.py)."""
from __future__ import annotations

_HASH_M64 = (1 << 64) - 1
NAIVE_CHAIN_SEED = 0x6B76637472616365    # "kvctrace"
NAIVE_CONTENT_SEED = 0x626C6F636B733136  # "blocks16"


def naive_hash_fmix64(z):
    """SplitMix64 / MurmurHash3 finalizer on Python ints (mod 2**64)."""
    z &= _HASH_M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _HASH_M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _HASH_M64
    return z ^ (z >> 31)


def naive_combine(h, x):
    return naive_hash_fmix64(h ^ naive_hash_fmix64((x + 0x9E3779B97F4A7C15) & _HASH_M64))


def naive_content_hash(tokens):
    """Content hash of one token block, as documented in kernels/hashing.py."""
    c = NAIVE_CONTENT_SEED
    for t in tokens:
        c = naive_combine(c, int(t) & _HASH_M64)
    return naive_combine(c, len(tokens))


def naive_hash_token_blocks(requests, block_size, partial="include"):
    """Per request (a list of token ids): chained prefix ids of its blocks."""
    out = []
    for tokens in requests:
        blocks = [list(tokens[i:i + block_size]) for i in range(0, len(tokens), block_size)]
        if partial == "drop" and blocks and len(blocks[-1]) < block_size:
            blocks.pop()
        h, ids = NAIVE_CHAIN_SEED, []
        for block in blocks:
            h = naive_combine(h, naive_content_hash(block))
            ids.append(h)
        out.append(ids)
    return out


def naive_rechain(requests):
    """Per request (a list of per-block content hashes): chained prefix ids."""
    out = []
    for contents in requests:
        h, ids = NAIVE_CHAIN_SEED, []
        for c in contents:
            h = naive_combine(h, int(c) & _HASH_M64)
            ids.append(h)
        out.append(ids)
    return out


def naive_coarsen(requests, k, partial="include"):
    """Per request (chained ids): the id of the last fine block of every group of k."""
    out = []
    for ids in requests:
        groups = [ids[i:i + k] for i in range(0, len(ids), k)]
        if partial == "drop" and groups and len(groups[-1]) < k:
            groups.pop()
        out.append([g[-1] for g in groups])
    return out


def naive_dense_ids(keys):
    """0, 1, 2, ... in order of first appearance; also the number of distinct keys."""
    seen: dict = {}
    return [seen.setdefault(int(k), len(seen)) for k in keys], len(seen)


def naive_prefix_classes(requests):
    """Per request, per block: a dense id naming the whole prefix of (block) contents up to it,
    with explicit tuples as keys: two positions share an id iff their prefixes are equal."""
    seen: dict = {}
    out = []
    for contents in requests:
        ids = []
        for i in range(len(contents)):
            ids.append(seen.setdefault(tuple(contents[:i + 1]), len(seen)))
        out.append(ids)
    return out
