"""Peer check: one-tier LRU, FIFO, S3-FIFO and SIEVE hit counts equal libCacheSim's on the same
flattened access sequence (libcachesim is a test-only dependency; skipped when absent).

S3-FIFO differs by design only for tiers under 20 blocks (see kernels/policies/s3fifo.py), so the
capacities here start at 20."""
from __future__ import annotations

import numpy as np
import pytest

from kvctrace.kernels import policies
from kvctrace.replay.engine import run_hits

from .test_replay_golden import CONVERSATION, load_mooncake

lcs = pytest.importorskip("libcachesim")

ORACLE = np.dtype([("clock", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_vtime", "<i8")])


def write_oracle_general(path, blocks: np.ndarray) -> None:
    """libCacheSim's binary oracleGeneral format, one unit-size object per access."""
    rec = np.zeros(blocks.shape[0], ORACLE)
    rec["obj_id"] = blocks.astype(np.uint64) + 1
    rec["obj_size"] = 1
    rec["next_vtime"] = -1
    rec.tofile(path)


def lcs_hits(path, cls, capacity: int, n: int) -> int:
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    miss_ratio = cls(capacity).process_trace(reader)[0]
    return int(round((1.0 - miss_ratio) * n))


def our_hits(blocks: np.ndarray, policy: str, capacity: int) -> int:
    offsets = np.array([0, blocks.shape[0]], np.int64)
    h = run_hits(offsets, blocks, int(blocks.max()) + 1, [capacity], [policies.get(policy).code], [1])
    return int(h.block_hits.sum())


PEERS = {"lru": "LRU", "fifo": "FIFO", "s3fifo": "S3FIFO", "sieve": "Sieve"}


def _zipf():
    rng = np.random.default_rng(11)
    zipf = rng.zipf(1.1, 100_000) % 30_000
    _, dense = np.unique(zipf, return_inverse=True)
    return dense.astype(np.int64)


def _sequences():
    seqs = {"zipf": _zipf()}
    if CONVERSATION.exists():
        seqs["mooncake-conversation"] = load_mooncake().blocks.astype(np.int64)
    return seqs


@pytest.mark.parametrize("policy", list(PEERS))
def test_hit_counts_match_libcachesim(tmp_path, policy):
    for name, seq in _sequences().items():
        path = tmp_path / f"{name}.oracleGeneral"
        write_oracle_general(path, seq)
        for cap in (20, 137, 1_000, 10_000, 50_000):
            ours = our_hits(seq, policy, cap)
            theirs = lcs_hits(path, getattr(lcs, PEERS[policy]), cap, seq.shape[0])
            assert ours == theirs, (name, policy, cap)


def test_sieve_tiny_tiers_match_libcachesim(tmp_path):
    # unlike S3-FIFO, SIEVE needs no minimum size: tiers of a few blocks match too
    seq = _zipf()[:20_000]
    path = tmp_path / "zipf.oracleGeneral"
    write_oracle_general(path, seq)
    for cap in (1, 2, 5, 19):
        assert our_hits(seq, "sieve", cap) == lcs_hits(path, lcs.Sieve, cap, seq.shape[0]), cap
