"""Prefix hashing kernels against the naive references, plus the properties docs/data-model.md states:
coarsening equals hashing at the coarse block size, rechaining equals chained hashing, ids name
whole prefixes, and the documented hash is pinned."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kvctrace.kernels import hashing
from kvctrace.kernels.hashing import _dense_ids_partitioned, coarsen, dense_ids, hash_token_blocks, rechain
from kvctrace.synth import synthesize
from tests.naive import (naive_coarsen, naive_content_hash, naive_dense_ids, naive_hash_token_blocks,
                         naive_prefix_classes, naive_rechain)

SETTINGS = settings(max_examples=60, deadline=None)


def csr(lists, dtype=np.int64):
    offsets = np.zeros(len(lists) + 1, np.int64)
    offsets[1:] = np.cumsum([len(x) for x in lists])
    values = np.array([v for x in lists for v in x], dtype=dtype) if offsets[-1] else np.empty(0, dtype)
    return values, offsets


def split(values, offsets):
    return [[int(v) for v in values[offsets[i]:offsets[i + 1]]] for i in range(len(offsets) - 1)]


# Token requests with a small vocabulary and shared prefixes, so equal blocks and prefixes occur.
shared_prefixes = st.lists(st.integers(0, 3), min_size=0, max_size=12)
token_requests = st.lists(
    st.tuples(st.integers(0, 2), st.lists(st.integers(0, 3), max_size=14)), min_size=1, max_size=8
).flatmap(lambda reqs: st.lists(shared_prefixes, min_size=3, max_size=3).map(
    lambda prefixes: [prefixes[p] + tail for p, tail in reqs]))
partials = st.sampled_from(["include", "drop"])


@SETTINGS
@given(token_requests, st.integers(1, 6), partials)
def test_hash_token_blocks_matches_naive(requests, block_size, partial):
    tokens, offsets = csr(requests)
    ids, out_off = hash_token_blocks(tokens, offsets, block_size, partial)
    assert ids.dtype == np.uint64
    assert split(ids, out_off) == naive_hash_token_blocks(requests, block_size, partial)


@SETTINGS
@given(st.lists(st.lists(st.integers(-2**63, 2**63 - 1), max_size=10), min_size=1, max_size=6))
def test_rechain_matches_naive(requests):
    content, offsets = csr(requests)
    assert split(rechain(content, offsets), offsets) == naive_rechain(requests)


@SETTINGS
@given(st.lists(st.lists(st.integers(0, 2**64 - 1), max_size=12), min_size=1, max_size=6),
       st.integers(1, 5), partials)
def test_coarsen_matches_naive(requests, k, partial):
    chained, offsets = csr(requests, np.uint64)
    out, out_off = coarsen(chained, offsets, k, partial)
    assert split(out, out_off) == naive_coarsen(requests, k, partial)


@SETTINGS
@given(token_requests, st.integers(1, 4), st.integers(1, 4), partials)
def test_coarsening_equals_hashing_at_k_times_block_size(requests, block_size, k, partial):
    tokens, offsets = csr(requests)
    fine, fine_off = hash_token_blocks(tokens, offsets, block_size, partial)
    coarse, coarse_off = coarsen(fine, fine_off, k, partial)
    direct, direct_off = hash_token_blocks(tokens, offsets, block_size * k, partial)
    np.testing.assert_array_equal(coarse_off, direct_off)
    # Same equivalence classes of prefixes: identical dense id arrays.
    np.testing.assert_array_equal(dense_ids(coarse)[0], dense_ids(direct)[0])


@SETTINGS
@given(token_requests, st.integers(1, 5))
def test_rechained_content_hashes_equal_chained_token_hashes(requests, block_size):
    contents = [[naive_content_hash(t[i:i + block_size]) for i in range(0, len(t), block_size)]
                for t in requests]
    content, offsets = csr(contents, np.uint64)
    tokens, tok_off = csr(requests)
    chained, chained_off = hash_token_blocks(tokens, tok_off, block_size, "include")
    np.testing.assert_array_equal(chained_off, offsets)
    np.testing.assert_array_equal(rechain(content, offsets), chained)


@SETTINGS
@given(st.lists(st.lists(st.integers(0, 3), max_size=8), min_size=1, max_size=10))
def test_rechained_ids_name_whole_prefixes(requests):
    """Two positions share a rechained id iff they share the whole prefix of content ids."""
    content, offsets = csr(requests)
    ids, _ = dense_ids(rechain(content, offsets))
    assert split(ids, offsets) == naive_prefix_classes(requests)


@SETTINGS
@given(st.one_of(
    st.lists(st.integers(-2**63, 2**63 - 1), max_size=200).map(lambda x: np.array(x, np.int64)),
    st.lists(st.integers(-3, 3), max_size=200).map(lambda x: np.array(x, np.int64)),
    st.lists(st.integers(2**64 - 8, 2**64 - 1), max_size=200).map(lambda x: np.array(x, np.uint64)),
    st.lists(st.integers(0, 2**64 - 1), max_size=200).map(lambda x: np.array(x, np.uint64)),
    st.lists(st.integers(0, 50), max_size=300).map(lambda x: np.array(x, np.int64)),
    st.lists(st.integers(0, 50), max_size=300).map(lambda x: np.array(x, np.int32)),
    st.lists(st.integers(-2**31, 2**31 - 1), max_size=200).map(lambda x: np.array(x, np.int32)),
    st.lists(st.integers(0, 255), max_size=200).map(lambda x: np.array(x, np.uint8)),
))
def test_dense_ids_matches_naive(keys):
    ids, n = dense_ids(keys)
    expected, n_expected = naive_dense_ids(keys)
    assert ids.dtype == np.int64
    assert ids.tolist() == expected and n == n_expected


@SETTINGS
@given(st.lists(st.integers(0, 40), max_size=300))
def test_dense_ids_on_already_dense_and_repeated_streams(raw):
    """Streams that are already first-appearance ordered (Mooncake files) map to themselves."""
    ordered = np.array(naive_dense_ids(raw)[0], np.int64)
    ids, n = dense_ids(ordered)
    assert ids.tolist() == ordered.tolist() and n == len(set(raw))
    ids2, _ = dense_ids(np.concatenate([ordered, ordered[::-1]]))
    assert ids2.tolist() == naive_dense_ids(np.concatenate([ordered, ordered[::-1]]))[0]


def test_dense_ids_large_tables():
    """Big enough to exercise table growth and the prefetching loops."""
    rng = np.random.default_rng(7)
    content, offsets = synthesize(300, 1).block_hashes(16)
    for keys in (rechain(content, offsets),  # prefix runs: the run check in the hashed loop
                 rng.integers(0, 2**63, 300_000, dtype=np.int64),          # mostly unique
                 rng.integers(0, 5_000, 300_000).astype(np.int64) * (2**40 + 3),  # repeats, hashed
                 rng.integers(0, 100_000, 300_000, dtype=np.int64)):      # small range, direct
        ids, n = dense_ids(keys)
        expected, n_expected = naive_dense_ids(keys)
        assert n == n_expected
        np.testing.assert_array_equal(ids, np.array(expected, np.int64))


def test_documented_hash_is_pinned():
    """A change of the hash changes every id users have stored: catch it."""
    ids, offsets = hash_token_blocks(np.arange(1, 11), np.array([0, 10]), 4, "include")
    assert offsets.tolist() == [0, 3]
    assert [hex(int(x)) for x in ids] == ["0x9256c37c5aeef722", "0x8b41c4fdeddfee0b", "0x64bb92781cab2a2d"]
    dropped, _ = hash_token_blocks(np.arange(1, 11), np.array([0, 10]), 4, "drop")
    assert dropped.tolist() == ids[:2].tolist()
    chained = rechain(np.array([5, 6, 7], np.int64), np.array([0, 3]))
    assert [hex(int(x)) for x in chained] == ["0xe908a01741daf7b7", "0xbdb93857ce5537a4", "0x462df2a3f315281e"]
    # the naive references compute the same documented hash independently
    assert [int(x) for x in ids] == naive_hash_token_blocks([list(range(1, 11))], 4)[0]


def test_empty_inputs():
    ids, off = hash_token_blocks(np.empty(0, np.int64), np.array([0, 0]), 16)
    assert ids.shape == (0,) and off.tolist() == [0, 0]
    assert dense_ids(np.empty(0, np.int64))[1] == 0
    assert rechain(np.empty(0, np.int64), np.array([0])).shape == (0,)


@pytest.mark.parametrize("call", [
    lambda: hash_token_blocks(np.arange(4), np.array([0, 4]), 0),
    lambda: hash_token_blocks(np.arange(4), np.array([0, 4]), 2, "keep"),
    lambda: hash_token_blocks(np.arange(4), np.array([0, 3]), 2),
    lambda: hash_token_blocks(np.arange(4), np.array([0, 3, 2, 4]), 2),
    lambda: coarsen(np.arange(4, dtype=np.uint64), np.array([0, 4]), 0),
    lambda: rechain(np.arange(4), np.array([1, 4])),
    lambda: dense_ids(np.array([0.5, 1.0])),
])
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


@SETTINGS
@given(st.one_of(
    st.lists(st.integers(0, 2**64 - 1), max_size=300),
    st.lists(st.integers(0, 30), max_size=300),
), st.integers(1, 8))
def test_partitioned_dense_ids_matches_naive(keys, bits):
    """The hash-partitioned path (used for millions of keys) on small inputs, any fan-out."""
    keys = np.array(keys, np.uint64)
    ids, n = _dense_ids_partitioned(keys, bits)
    expected, n_expected = naive_dense_ids(keys)
    assert ids.dtype == np.int64
    assert ids.tolist() == expected and n == n_expected


def test_dense_ids_partitioned_path_through_wrapper(monkeypatch):
    """dense_ids switches to the partitioned path above a size; force it on mid-size streams
    (with many partitions, so the prefetching loops and worker split run)."""
    monkeypatch.setattr(hashing, "_PARTITION_MIN_KEYS", 1_000)
    monkeypatch.setattr(hashing, "_PARTITION_KEYS", 2_000)
    rng = np.random.default_rng(11)
    content, offsets = synthesize(300, 1).block_hashes(16)
    for keys in (rechain(content, offsets),
                 rng.integers(-2**63, 2**63 - 1, 200_000, dtype=np.int64),
                 rng.integers(0, 5_000, 200_000).astype(np.int64) * (2**40 + 3)):
        ids, n = dense_ids(keys)
        expected, n_expected = naive_dense_ids(keys)
        assert n == n_expected
        np.testing.assert_array_equal(ids, np.array(expected, np.int64))
