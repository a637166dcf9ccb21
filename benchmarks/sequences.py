"""Access sequences and baseline input shared by the cache benchmarks (bench_replay.py,
bench_stack_distance.py): a kvctrace.synth workload's Mooncake-style block ids, a Zipf(1.1)
sequence, and libCacheSim's binary oracleGeneral trace file."""
from __future__ import annotations

import numpy as np

from kvctrace.kernels.hashing import dense_ids, rechain
from kvctrace.synth import synthesize

# libCacheSim's oracleGeneral record: timestamp, object id, size, next access (-1: unknown)
ORACLE_GENERAL = np.dtype([("ts", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])


def synth_blocks(n_requests: int, seed: int):
    """(offsets, dense chained block ids, distinct blocks) of a kvctrace.synth workload at
    512-token blocks (Mooncake's)."""
    content, offsets = synthesize(n_requests, seed).block_hashes(512)
    blocks, n_unique = dense_ids(rechain(content, offsets))
    return np.asarray(offsets, np.int64), np.asarray(blocks, np.int64), int(n_unique)


def zipf_blocks(n: int, n_blocks: int, seed: int):
    """(dense block ids, distinct blocks) of ``n`` Zipf(1.1) draws over ``n_blocks`` blocks
    (popularity ranks shuffled over the ids)."""
    rng = np.random.default_rng(seed)
    raw = rng.permutation(n_blocks)[(rng.zipf(1.1, n) - 1) % n_blocks]
    blocks, n_unique = dense_ids(raw)
    return np.asarray(blocks, np.int64), int(n_unique)


def write_oracle_general(blocks: np.ndarray, path) -> None:
    """``blocks`` as a libCacheSim oracleGeneral file: unit-size objects (id = block + 1, as 0
    is reserved), 1000 accesses per timestamp."""
    rec = np.zeros(blocks.shape[0], ORACLE_GENERAL)
    rec["ts"] = np.arange(blocks.shape[0]) // 1000
    rec["id"] = blocks.astype(np.uint64) + 1
    rec["size"] = 1
    rec["next"] = -1
    rec.tofile(str(path))
