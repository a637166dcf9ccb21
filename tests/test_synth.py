"""Synthetic traces: deterministic per seed, valid in every format (schema and ingest), the three
formats of one seed describe the same workload, and each structure knob does what it says."""
from __future__ import annotations

import gzip
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

import kvctrace
from kvctrace.cli import app
from kvctrace.errors import ConfigError
from kvctrace.kernels.hashing import coarsen, dense_ids, hash_token_blocks, rechain
from kvctrace.synth import (TYPES, _piece_block_hashes, generate, records, synthesize, write,
                            write_trace)
from tests.naive import naive_dense_ids, naive_segment_blocks

N = 400


@pytest.fixture(scope="module")
def work():
    return synthesize(N, 11)


def ids_and_offsets(frame, column="hash_ids"):
    lengths = frame[column].list.len().cast(pl.Int64).to_numpy()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return frame[column].explode().to_numpy().astype(np.int64), offsets


def hit_ratio(frame):
    """Block-weighted share of accesses to a block seen in an earlier request."""
    ids, offsets = ids_and_offsets(frame)
    req = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    first_req = np.full(ids.max() + 1, len(offsets))
    np.minimum.at(first_req, ids, req)
    return float((first_req[ids] < req).mean())


# ---- determinism ----------------------------------------------------------------------------

def test_same_seed_same_trace_other_seed_other_trace(tmp_path):
    for fmt in ("mooncake", "bailian", "tokens"):
        a = generate(fmt, 150, seed=5)
        assert a.equals(generate(fmt, 150, seed=5))
        assert not a.equals(generate(fmt, 150, seed=6))
    for name in ("a.jsonl", "b.jsonl", "a.jsonl.gz", "b.jsonl.gz", "a.jsonl.zst", "b.jsonl.zst"):
        write_trace(tmp_path / name, "mooncake", 150, seed=5)
    for suffix in (".jsonl", ".jsonl.gz", ".jsonl.zst"):
        assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


# ---- format validity ------------------------------------------------------------------------

def test_mooncake_schema(work):
    df = records(work, "mooncake")
    assert df.columns == ["timestamp", "input_length", "output_length", "hash_ids"]
    ts = df["timestamp"].to_numpy()
    assert df["timestamp"].dtype == pl.Int64 and ts[0] == 0 and (np.diff(ts) >= 0).all()
    assert (df["hash_ids"].list.len().to_numpy() == -(-df["input_length"].to_numpy() // 512)).all()
    assert (df["output_length"].to_numpy() >= 1).all()
    ids, _ = ids_and_offsets(df)
    # renumbered in first-appearance order: every new id is max-so-far + 1, starting at 0
    assert ids.tolist() == naive_dense_ids(ids)[0]


def test_bailian_schema(work):
    df = records(work, "bailian")
    assert df.columns == ["chat_id", "parent_chat_id", "timestamp", "input_length", "output_length",
                          "type", "turn", "hash_ids"]
    assert df["timestamp"].dtype == pl.Float64
    assert (df["hash_ids"].list.len().to_numpy() == -(-df["input_length"].to_numpy() // 16)).all()
    assert set(df["type"].unique()) <= set(TYPES)
    rows = df.to_dicts()
    by_id = {r["chat_id"]: r for r in rows}
    for r in rows:
        if r["parent_chat_id"] == -1:
            assert r["turn"] == 1
            continue
        p = by_id[r["parent_chat_id"]]
        assert p["timestamp"] <= r["timestamp"] and r["turn"] == p["turn"] + 1 and r["type"] == p["type"]
        # context grows turn by turn: previous input + previous output + new user text
        assert r["input_length"] > p["input_length"] + p["output_length"]
        # and the previous input is a prefix: its full 16-token blocks reappear first
        full = p["input_length"] // 16
        assert r["hash_ids"][:full] == p["hash_ids"][:full]


def test_tokens_schema(work):
    df = records(work, "tokens")
    assert df.columns == ["timestamp", "token_ids", "output_length", "session_id"]
    assert df["token_ids"].list.len().to_numpy().tolist() == work.input_len.tolist()
    tokens = df["token_ids"].explode().to_numpy()
    assert tokens.min() >= 0 and tokens.max() < work.config.vocab


@pytest.mark.parametrize("fmt,block_size", [("mooncake", 512), ("bailian", 16), ("tokens", 16)])
def test_every_format_ingests(tmp_path, fmt, block_size):
    path = write_trace(tmp_path / f"t_{fmt}.jsonl.gz", fmt, 200, seed=2)
    trace = kvctrace.open_trace(path)
    assert trace.format == fmt and trace.block_size == block_size
    assert trace.n_requests == 200 and trace.rejected_lines == 0 and trace.sorted_input


# ---- one workload, three formats ------------------------------------------------------------

def test_formats_describe_the_same_workload(work):
    moon_ids, moon_off = ids_and_offsets(records(work, "mooncake"))
    tok_df = records(work, "tokens")
    tokens, tok_off = ids_and_offsets(tok_df, "token_ids")
    # tokens hashed at 512 with the partial block included = the mooncake ids
    chained, off = hash_token_blocks(tokens, tok_off, 512, "include")
    np.testing.assert_array_equal(off, moon_off)
    np.testing.assert_array_equal(dense_ids(chained)[0], moon_ids)
    # bailian per-block ids, rechained and coarsened by 32 = the mooncake ids
    bai_ids, bai_off = ids_and_offsets(records(work, "bailian"))
    coarse, coarse_off = coarsen(rechain(bai_ids, bai_off), bai_off, 32)
    np.testing.assert_array_equal(coarse_off, moon_off)
    np.testing.assert_array_equal(dense_ids(coarse)[0], moon_ids)
    # bailian rechained = tokens hashed at 16
    fine, _ = hash_token_blocks(tokens, tok_off, 16, "include")
    np.testing.assert_array_equal(dense_ids(rechain(bai_ids, bai_off))[0], dense_ids(fine)[0])


segment_requests = st.lists(
    st.lists(st.tuples(st.integers(0, 4), st.integers(1, 9)), min_size=1, max_size=5), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(segment_requests, st.integers(1, 7))
def test_piece_block_hashes_match_naive(requests, block_size):
    """Block content hashed from (segment, offset, length) pieces names exactly its tokens."""
    counts = np.array([len(r) for r in requests])
    seg_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    seg_ids = np.array([s for r in requests for s, _ in r], np.uint64)
    seg_lens = np.array([n for r in requests for _, n in r], np.int64)
    hashes, off = _piece_block_hashes(seg_off, seg_ids, seg_lens, np.int64(block_size))
    expected = naive_segment_blocks(requests, block_size)
    assert np.diff(off).tolist() == [len(x) for x in expected]
    seen: dict = {}
    assert dense_ids(hashes)[0].tolist() == [seen.setdefault(b, len(seen)) for r in expected for b in r]


# ---- structure knobs ------------------------------------------------------------------------

def test_shared_system_prompts_raise_reuse():
    one = generate("mooncake", N, 1, system_prompts=1, system_prompt_tokens=4000, document_share=0)
    many = generate("mooncake", N, 1, system_prompts=N, prompt_alpha=0, system_prompt_tokens=4000,
                    document_share=0)
    assert hit_ratio(one) > hit_ratio(many) + 0.1
    assert (one["hash_ids"].list.first() == 0).all()  # every request opens with the same prompt block


def test_document_popularity_raises_reuse():
    skewed = generate("mooncake", N, 1, document_share=1.0, image_share=0, search_share=0, document_alpha=1.5,
                      documents=5000, turns_mean=1)
    flat = generate("mooncake", N, 1, document_share=1.0, image_share=0, search_share=0, document_alpha=0,
                    documents=5000, turns_mean=1)
    assert hit_ratio(skewed) > hit_ratio(flat) + 0.1


def test_multi_turn_sessions():
    single = synthesize(N, 3, turns_mean=1)
    assert (single.turn == 1).all() and (single.parent == -1).all()
    multi = synthesize(N, 3, turns_mean=6, think_time_s=5)
    assert multi.turn.max() >= 4 and multi.session.max() + 1 < N / 2
    assert hit_ratio(generate("mooncake", N, 3, turns_mean=6, think_time_s=5)) > \
        hit_ratio(generate("mooncake", N, 3, turns_mean=1)) + 0.1
    child = np.flatnonzero(multi.parent >= 0)
    p = multi.parent[child]
    assert (multi.input_len[child] > multi.input_len[p] + multi.output_len[p]).all()
    assert (multi.ts[child] >= multi.ts[p]).all() and (multi.session[child] == multi.session[p]).all()


def test_max_context_ends_sessions():
    w = synthesize(N, 4, turns_mean=50, think_time_s=1, max_context_tokens=30000)
    assert w.input_len.max() <= 30000 and w.turn.max() >= 3


def test_arrival_rate_and_burstiness():
    poisson = synthesize(4000, 5, rate=10.0)
    assert 4000 / poisson.ts[-1] == pytest.approx(10.0, rel=0.1)
    bursty = synthesize(4000, 5, rate=10.0, arrival="bursty", burst_factor=8, burst_period_s=20)

    def dispersion(ts):
        counts = np.bincount((ts // 5).astype(np.int64))[:-1]
        return counts.var() / counts.mean()
    assert dispersion(poisson.ts) < 2 < 5 < dispersion(bursty.ts)
    assert (np.diff(bursty.ts) >= 0).all() and bursty.ts[0] == 0


def test_types_follow_shares():
    w = synthesize(2000, 6, turns_mean=1, document_share=0.5, image_share=0.2, search_share=0.0)
    share = np.bincount(w.type, minlength=4) / 2000
    assert share[TYPES.index("file")] == pytest.approx(0.5, abs=0.05)
    assert share[TYPES.index("image")] == pytest.approx(0.2, abs=0.04)
    assert share[TYPES.index("search")] == 0


def test_block_size_option():
    df = generate("mooncake", 100, 1, block_size=256)
    assert (df["hash_ids"].list.len().to_numpy() == -(-df["input_length"].to_numpy() // 256)).all()


@pytest.mark.parametrize("kwargs", [dict(bogus=1), dict(rate=0), dict(arrival="burst"), dict(turns_mean=0.5),
                                    dict(document_share=0.8, image_share=0.3), dict(system_prompts=0)])
def test_bad_structure_is_a_config_error(kwargs):
    with pytest.raises(ConfigError) as err:
        synthesize(10, 0, **kwargs)
    assert err.value.field in kwargs


def test_bad_format_and_requests():
    with pytest.raises(ConfigError):
        generate("azure", 10)
    with pytest.raises(ConfigError):
        synthesize(0)


# ---- CLI ------------------------------------------------------------------------------------

def test_cli_synth(tmp_path):
    out = tmp_path / "chat.jsonl"
    result = CliRunner().invoke(app, ["synth", str(out), "--format", "bailian", "--requests", "120", "--seed", "3",
                                      "--turns-mean", "3", "--arrival", "bursty"])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "120 requests" in result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 120 and set(json.loads(lines[0])) >= {"chat_id", "parent_chat_id", "hash_ids"}
    expected = write(tmp_path / "api.jsonl", "bailian", 120, 3, turns_mean=3.0, arrival="bursty")
    assert expected.path.read_bytes() == out.read_bytes()


def test_cli_synth_bad_option_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "x.jsonl"), "--rate", "-1"])
    assert result.exit_code == 1
    assert "rate" in result.output and "Traceback" not in result.output


def test_gzip_output_is_jsonl(tmp_path):
    path = write_trace(tmp_path / "t.jsonl.gz", "tokens", 20, 1)
    with gzip.open(path, "rt") as fh:
        rows = [json.loads(line) for line in fh]
    assert len(rows) == 20 and set(rows[0]) == {"timestamp", "token_ids", "output_length", "session_id"}


def test_formats_agree_through_ingest(tmp_path):
    moon = kvctrace.open_trace(write_trace(tmp_path / "m.jsonl", "mooncake", 150, 9))
    tokens = kvctrace.open_trace(write_trace(tmp_path / "t.jsonl", "tokens", 150, 9), block_size=512)
    bailian = kvctrace.open_trace(write_trace(tmp_path / "b.jsonl", "bailian", 150, 9), coarsen=32)
    for other in (tokens, bailian):
        np.testing.assert_array_equal(other.offsets, moon.offsets)
        np.testing.assert_array_equal(other.blocks, moon.blocks)


def _bundled_commands():
    """The `kvctrace synth` commands in datasets/README.md (continuation lines joined)."""
    import re
    import shlex
    from pathlib import Path
    readme = Path(__file__).resolve().parents[1] / "datasets" / "README.md"
    text = readme.read_text().replace("\\\n", " ")
    return [shlex.split(line)[1:] for line in re.findall(r"^kvctrace synth .*$", text, re.M)]


@pytest.mark.parametrize("args", _bundled_commands(), ids=lambda a: a[1])
def test_bundled_datasets_match_their_readme_commands(tmp_path, args):
    """Each bundled trace is exactly what its README command makes (compared decompressed, so a
    different zlib/zstd build cannot matter)."""
    from pathlib import Path
    import zstandard
    bundled = Path(__file__).resolve().parents[1] / args[1]
    out = tmp_path / bundled.name
    result = CliRunner().invoke(app, [args[0], str(out), *args[2:]])
    assert result.exit_code == 0, result.output

    def content(path):
        data = path.read_bytes()
        if path.suffix == ".gz":
            return gzip.decompress(data)
        if path.suffix == ".zst":
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        return data
    assert bundled.stat().st_size < 2_000_000
    assert content(out) == content(bundled)


# ---- session and segment kernels against naive references -----------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1), st.floats(0.0, 0.95), st.integers(64, 3000))
def test_simulate_sessions_and_segments_match_naive(n, seed, p_continue, max_context):
    from kvctrace.synth import _build_segments, _simulate_sessions
    from tests.naive import naive_build_segments, naive_simulate_sessions
    rng = np.random.default_rng(seed)
    arrivals = np.sort(np.round(rng.random(n) * 20, 1))  # ties on purpose
    user_len, out_len = rng.integers(1, 300, n), rng.integers(1, 300, n)
    image_len, search_len = rng.integers(1, 200, n), rng.integers(1, 200, n)
    u_continue, think = rng.random(n), np.round(rng.exponential(3, n), 1)
    sess_type = rng.integers(0, 4, n).astype(np.int8)
    prompt_len, doc_len = rng.integers(1, 400, 3), rng.integers(1, 900, 4)
    sess_prompt = rng.integers(0, 3, n)
    sess_doc = np.where(sess_type == 1, rng.integers(0, 4, n), -1)
    base = prompt_len[sess_prompt] + np.where(sess_doc >= 0, doc_len[np.maximum(sess_doc, 0)], 0)
    got = _simulate_sessions(arrivals, user_len, out_len, image_len, search_len, u_continue, think,
                             p_continue, sess_type, base, np.int64(max_context))
    want = naive_simulate_sessions(arrivals.tolist(), user_len.tolist(), out_len.tolist(), image_len.tolist(),
                                   search_len.tolist(), u_continue.tolist(), think.tolist(), p_continue,
                                   sess_type.tolist(), base.tolist(), max_context)
    for g, w in zip(got[:5], want[:5]):
        assert g.tolist() == w
    assert got[5] == want[5]
    session, turn, parent, input_len, user_eff, _ = got
    off, ids, lens = _build_segments(session, turn, parent, user_eff, out_len, sess_prompt, sess_doc,
                                     prompt_len, doc_len)
    kinds = {1: "sys", 2: "doc", 3: "user", 4: "out"}
    expected = naive_build_segments(session.tolist(), parent.tolist(), user_eff.tolist(), out_len.tolist(),
                                    sess_prompt.tolist(), sess_doc.tolist(), prompt_len.tolist(), doc_len.tolist())
    for r in range(n):
        segs = [(kinds[int(x) >> 48], int(x) & (2**48 - 1), int(length))
                for x, length in zip(ids[off[r]:off[r + 1]], lens[off[r]:off[r + 1]])]
        assert segs == [(k, int(i), int(length)) for k, i, length in expected[r]]
        assert sum(s[2] for s in segs) == input_len[r]


def test_materialised_tokens_match_naive(work):
    from tests.naive import naive_combine
    tokens, off = work.tokens()
    vocab = work.config.vocab
    for r in (0, work.n_requests - 1):
        segs = zip(work.seg_ids[work.seg_offsets[r]:work.seg_offsets[r + 1]],
                   work.seg_lens[work.seg_offsets[r]:work.seg_offsets[r + 1]])
        expected = [naive_combine(int(sid), p) % vocab for sid, length in segs for p in range(int(length))]
        assert tokens[off[r]:off[r + 1]].tolist() == expected
