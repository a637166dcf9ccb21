"""Sequential vs random access: kernels against tests/naive.py, and golden numbers on the
Mooncake conversation trace."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from kvctrace import open_trace
from kvctrace.analysis.access import analyze_access
from kvctrace.errors import ConfigError, NoBlockIdsError
from kvctrace.kernels.runs import find_runs, request_lookup_plan, run_stats, runs_test
from kvctrace.store import load_store
from kvctrace.trace import Trace

from . import naive

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CONVERSATION = DATASETS / "mooncake" / "conversation_trace.jsonl"


def mooncake_trace(path: Path) -> Trace:
    """The Mooncake JSONL through ``kvctrace.open_trace`` once the store implements it;
    until then parsed here (its hash_ids are already dense first-appearance ids)."""
    from kvctrace import open_trace, store
    if hasattr(store, "open_trace"):
        return open_trace(path)
    return parse_mooncake(path)


def parse_mooncake(path: Path) -> Trace:
    """Mooncake JSONL as a Trace built with Trace.from_arrays."""
    rows = [json.loads(line) for line in path.open()]
    lens = np.array([len(r["hash_ids"]) for r in rows], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    blocks = np.concatenate([np.asarray(r["hash_ids"], np.int64) for r in rows])
    return Trace.from_arrays(
        offsets, blocks, ts=np.array([r["timestamp"] / 1000.0 for r in rows]),
        input_len=np.array([r["input_length"] for r in rows], np.int64),
        output_len=np.array([r["output_length"] for r in rows], np.int64),
        block_size=512, path=str(path), format="mooncake")


# Small id alphabets make consecutive runs and repeats likely.
requests_st = st.lists(st.lists(st.integers(0, 12), max_size=12), min_size=1, max_size=12)


def csr(reqs):
    offsets = np.zeros(len(reqs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(r) for r in reqs])
    blocks = np.array([b for r in reqs for b in r], np.int64)
    return offsets, blocks


@settings(max_examples=100, deadline=None)
@given(requests_st)
def test_runs_match_naive(reqs):
    offsets, blocks = csr(reqs)
    runs = find_runs(offsets, blocks)
    assert runs.sequential.tolist() == naive.naive_sequential_flags(offsets, blocks)
    expected = naive.naive_runs(offsets, blocks)
    for r, lengths in enumerate(expected):
        got = runs.run_len[runs.run_offsets[r]:runs.run_offsets[r + 1]].tolist()
        assert got == lengths
        starts = runs.run_start[runs.run_offsets[r]:runs.run_offsets[r + 1]].tolist()
        assert starts == np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()[:len(lengths)]
        assert runs.longest_run[r] == max(lengths, default=0)
        assert runs.n_sequential[r] == sum(x for x in lengths if x >= 2)


@settings(max_examples=100, deadline=None)
@given(requests_st)
def test_run_stats_match_naive(reqs):
    """The analysis's per-request counts and runs per length, without per-run arrays."""
    offsets, blocks = csr(reqs)
    stats = run_stats(offsets, blocks.astype(np.int32))
    expected = naive.naive_runs(offsets, blocks)
    assert stats.n_sequential.tolist() == [sum(x for x in lengths if x >= 2) for lengths in expected]
    assert stats.n_point.tolist() == [sum(x == 1 for x in lengths) for lengths in expected]
    assert stats.n_range.tolist() == [sum(x >= 2 for x in lengths) for lengths in expected]
    assert stats.longest_run.tolist() == [max(lengths, default=0) for lengths in expected]
    every = [x for lengths in expected for x in lengths]
    assert stats.runs_by_length.tolist() == np.bincount(every, minlength=stats.runs_by_length.shape[0]).tolist()
    # the runs test reads the sequential flags off the neighbours when not given them
    with_flags = runs_test(offsets, blocks, find_runs(offsets, blocks).sequential, min_ids=4)
    without = runs_test(offsets, blocks.astype(np.int32), min_ids=4)
    for a, b in zip(with_flags, without):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=100, deadline=None)
@given(requests_st)
def test_lookup_plan_matches_naive(reqs):
    offsets, blocks = csr(reqs)
    plan = request_lookup_plan(offsets, blocks)
    got = list(zip(plan.n_runs.tolist(), plan.n_point.tolist(), plan.n_range.tolist()))
    assert got == naive.naive_lookup_plan(offsets, blocks)
    # every block is covered exactly once: by a point lookup or inside a range scan
    assert (plan.n_point + plan.n_range_blocks == np.diff(offsets)).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=25), min_size=1, max_size=6),
       st.integers(2, 8))
def test_runs_test_matches_naive(reqs, min_ids):
    offsets, blocks = csr(reqs)
    runs = find_runs(offsets, blocks)
    test = runs_test(offsets, blocks, runs.sequential, min_ids=min_ids)
    names = {0: "tested", 1: "too_few", 2: "degenerate"}
    for r in range(len(reqs)):
        seg = slice(offsets[r], offsets[r + 1])
        values = blocks[seg][~runs.sequential[seg]]
        status, n_runs, n1, n2, z, p = naive.naive_runs_test(values, min_ids)
        assert names[int(test.status[r])] == status
        assert test.n_ids[r] == len(values)
        if status != "too_few":
            assert (test.n_sign_runs[r], test.n_above[r], test.n_below[r]) == (n_runs, n1, n2)
        if status == "tested":
            assert test.z[r] == pytest.approx(z, abs=1e-9)
            assert test.p[r] == pytest.approx(p, abs=1e-9)
        else:
            assert np.isnan(test.p[r])
        status, _, _, _, _, p = naive.naive_runs_test(values, min_ids, ties="upper")
        assert names[int(test.status_ge_median[r])] == status
        if status == "tested":
            assert test.p_ge_median[r] == pytest.approx(p, abs=1e-9)
        else:
            assert np.isnan(test.p_ge_median[r])


def test_runs_test_known_values():
    # alternating around the median: 8 values, 8 runs, n1 = n2 = 4:
    # mu = 5, var = 32 * 24 / (64 * 7) = 12/7, z = 3 / sqrt(12/7)
    values = [1, 10, 3, 12, 5, 14, 7, 16]
    offsets, blocks = csr([values])
    test = runs_test(offsets, blocks, np.zeros(8, bool), min_ids=4)
    z = 3 / np.sqrt(12 / 7)
    assert test.z[0] == pytest.approx(z)
    assert test.p[0] == pytest.approx(0.02195, abs=1e-5)   # 2 * (1 - Phi(2.2913)), normal tables
    # sorted values: 2 runs, strongly non-random, z = -3 / sqrt(12/7)
    offsets, blocks = csr([sorted(values)])
    test = runs_test(offsets, blocks, np.zeros(8, bool), min_ids=4)
    assert test.n_sign_runs[0] == 2 and test.z[0] == pytest.approx(-z)


def test_runs_test_ge_median_matches_statsmodels():
    # statsmodels' own test: runstest_1samp([1]*5 + [2]*6 + [3]*8, cutoff="median",
    # correction=False) == (-3.944254410803499, 8.004864125547193e-05)
    values = [1] * 5 + [2] * 6 + [3] * 8
    offsets, blocks = csr([values])
    test = runs_test(offsets, blocks, np.zeros(len(values), bool), min_ids=4)
    assert test.p_ge_median[0] == pytest.approx(8.004864125547193e-05, rel=1e-9)
    # the tie-dropping reading drops the six 2s: 5 below, 8 above, 2 runs
    assert (test.n_below[0], test.n_above[0], test.n_sign_runs[0]) == (5, 8, 2)


def test_analyze_access_small_trace():
    # ids are already first-appearance dense: [0 1 2 3] | [0 1] 4 2 | (empty) | 3 0
    trace = Trace.from_arrays([0, 4, 8, 8, 10], [0, 1, 2, 3, 0, 1, 4, 2, 3, 0])
    res = analyze_access(trace)
    pr = res.per_request
    assert pr["n_sequential"].to_list() == [4, 2, 0, 0]
    assert res.requests_without_blocks == 1
    assert pr["sequential_share"].to_list() == [1.0, 0.5, None, 0.0]
    assert res.sequential_share_mean_per_request == pytest.approx(0.5)
    assert res.sequential_share_blocks == pytest.approx(6 / 10)
    assert pr["n_point"].to_list() == [0, 2, 0, 2]
    assert pr["n_range"].to_list() == [1, 1, 0, 0]
    assert res.point_lookups == 4 and res.range_scans == 2 and res.range_scan_blocks == 6
    assert res.run_lengths.to_dicts() == [
        {"run_length": 1, "runs": 4, "blocks": 4, "share_of_runs": 4 / 6, "share_of_blocks": 0.4},
        {"run_length": 2, "runs": 1, "blocks": 2, "share_of_runs": 1 / 6, "share_of_blocks": 0.2},
        {"run_length": 4, "runs": 1, "blocks": 4, "share_of_runs": 1 / 6, "share_of_blocks": 0.4}]
    json.dumps(res.summary())


def test_analyze_access_rejects_bad_input():
    trace = Trace.from_arrays([0, 2], [0, 1])
    with pytest.raises(ConfigError):
        analyze_access(trace, min_ids=1)
    trace.has_block_ids = False
    with pytest.raises(NoBlockIdsError):
        analyze_access(trace)


@pytest.mark.skipif(not CONVERSATION.exists(), reason="shared datasets not present")
def test_golden_conversation_sequential_share():
    res = analyze_access(mooncake_trace(CONVERSATION))
    assert res.sequential_share_mean_per_request == pytest.approx(0.761, abs=5e-4)
    assert res.sequential_share_blocks == pytest.approx(0.935, abs=5e-4)
    # pinned from this implementation (min_ids = 4): 554 requests tested, 477 with p > 0.05
    assert res.runs_test_requests_tested == 554
    assert res.runs_test_share_p_gt_0_05 == pytest.approx(477 / 554)
    s = res.summary()
    assert s["point_lookups"] + s["range_scan_blocks"] == int(res.per_request["n_blocks"].sum())


# ---- the same result however the block ids are cut into chunks (traces bigger than memory) ---

def write_random_bailian(path: Path, rng, n_requests: int, n_types: int) -> Path:
    """A Bailian JSONL of random requests (about 1 in 5 without blocks, the last one always;
    ids from a small alphabet, so prefixes repeat and new blocks make consecutive runs) of
    ``n_types`` types, about a second apart."""
    lines, t = [], 0.0
    for chat in range(n_requests):
        ids = [] if rng.random() < 0.2 or chat == n_requests - 1 else rng.integers(0, 20, rng.integers(1, 12)).tolist()
        t += float(rng.exponential(1.0))
        lines.append({"chat_id": chat, "parent_chat_id": -1, "timestamp": round(t, 3), "input_length": 16 * len(ids),
                      "output_length": 1, "type": f"t{rng.integers(n_types)}", "turn": 1, "hash_ids": ids})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def results_however_cut(tmp_path, monkeypatch, cases, seed: int = 11):
    """(result on the whole trace, result on the trace cut otherwise) for each random trace of
    ``cases`` ((requests, types, analyze) each): cut into chunks of one access (so one request
    a chunk), of a few accesses, and read from a store opened in chunks (a few accesses a
    chunk, read a few rows at a time as a big store is: every pass streams the accesses table
    again, its read open while the analysis runs), which must not read its ids whole."""
    from kvctrace import accesses
    monkeypatch.setattr(accesses, "ACCESS_BATCH_ROWS", 8)
    rng = np.random.default_rng(seed)
    for i, (n_requests, n_types, analyze) in enumerate(cases):
        path, db = write_random_bailian(tmp_path / f"t{i}.jsonl", rng, n_requests, n_types), tmp_path / f"t{i}.duckdb"
        trace = open_trace(path, db=db)
        whole = analyze(trace)
        for size in (1, int(rng.integers(2, 30))):
            trace.chunk_accesses = size
            yield whole, analyze(trace)
        trace.con.close()
        stored = load_store(duckdb.connect(str(db), read_only=True), str(path), chunked=True)
        stored.chunk_accesses = int(rng.integers(2, 30))
        yield whole, analyze(stored)
        assert stored.__dict__["_blocks"] is None    # streamed, never read whole
        stored.con.close()


def assert_same_result(whole, cut, frames: tuple[str, ...]) -> None:
    assert cut.summary() == whole.summary()
    for name in frames:
        if getattr(whole, name) is None:
            assert getattr(cut, name) is None
        else:
            assert_frame_equal(getattr(cut, name), getattr(whole, name), check_exact=True)


def test_access_is_the_same_however_the_ids_are_cut(tmp_path, monkeypatch):
    cases = [(40, 1, analyze_access), (90, 2, lambda tr: analyze_access(tr, min_ids=2))]
    for whole, cut in results_however_cut(tmp_path, monkeypatch, cases):
        assert_same_result(whole, cut, ("per_request", "run_lengths"))
