"""Prefix divergence ("why did this request miss"): the kernels against the all-pairs reference
(tests/naive_divergence.py), the analysis on hand-made text stores (tokens, messages, reported
cached tokens) and on hashed traces, with golden numbers on the shared Mooncake trace."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from kvctrace import open_trace
from kvctrace.analysis import analyze
from kvctrace.analysis.divergence import analyze_divergence, reported_cache
from kvctrace.analysis.divergence_text import escape_snippet, token_decoder
from kvctrace.analysis.reuse import analyze_reuse
from kvctrace.errors import NoBlockIdsError
from kvctrace.kernels.arrays import one_chunk
from kvctrace.kernels.divergence import block_divergence, gather_windows, token_divergence
from kvctrace.kernels.hashing import dense_ids, hash_token_blocks
from kvctrace.kernels.reuse import hit_tokens, per_request_hits, stack_distances_by_request

from .naive_divergence import naive_block_tokens, naive_extends, naive_longest_shared_prefix, naive_pearson
from .test_prefix import assert_same_analysis, check_chunking_changes_nothing

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
MOONCAKE = DATASETS / "mooncake" / "conversation_trace.jsonl"


# ---- kernels against the reference ------------------------------------------------------------

@st.composite
def token_requests(draw):
    """Requests that share prefixes often: prefixes of a few base sequences plus short random
    tails, over a 3-token alphabet (so windows also share partial blocks)."""
    bases = draw(st.lists(st.lists(st.integers(0, 2), max_size=30), min_size=1, max_size=3))
    out = []
    for _ in range(draw(st.integers(1, 12))):
        base = bases[draw(st.integers(0, len(bases) - 1))]
        cut = draw(st.integers(0, len(base)))
        out.append(base[:cut] + draw(st.lists(st.integers(0, 2), max_size=6)))
    return out


def _hashed(requests, block_size, partial):
    lengths = np.array([len(r) for r in requests], np.int64)
    token_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = np.array([t for r in requests for t in r], np.int64)
    ids, offsets = hash_token_blocks(tokens, token_offsets, block_size, partial)
    dense, n_unique = dense_ids(ids)
    return tokens, token_offsets, lengths, offsets, dense, n_unique


@settings(max_examples=150, deadline=None)
@given(token_requests(), st.sampled_from([1, 2, 3, 4, 8]), st.sampled_from(["include", "drop"]))
def test_token_divergence_equals_all_pairs_reference(requests, block_size, partial):
    tokens, token_offsets, lengths, offsets, dense, n_unique = _hashed(requests, block_size, partial)
    block = block_divergence(one_chunk(offsets, dense), n_unique, lengths, block_size)
    shared, match = token_divergence(one_chunk(offsets, dense), offsets, lengths, block_size, block,
                                     gather_windows(tokens, token_offsets))
    assert list(zip(shared.tolist(), match.tolist())) == naive_longest_shared_prefix(requests)


@settings(max_examples=150, deadline=None)
@given(token_requests(), st.sampled_from([1, 2, 3, 4]), st.sampled_from(["include", "drop"]))
def test_block_divergence_equals_reference_and_reuse_prefix_hits(requests, block_size, partial):
    tokens, token_offsets, lengths, offsets, dense, n_unique = _hashed(requests, block_size, partial)
    block = block_divergence(one_chunk(offsets, dense), n_unique, lengths, block_size)
    per_request = [dense[offsets[r]:offsets[r + 1]].tolist() for r in range(len(requests))]
    expected = naive_longest_shared_prefix(per_request)
    assert list(zip(block["shared_blocks"].tolist(), block["match_req"].tolist())) == expected
    assert block["extends"].tolist() == naive_extends(per_request)
    # the shared blocks are the reuse analysis's prefix hits, in blocks and in tokens
    dist, _ = stack_distances_by_request(offsets, dense, n_unique)
    assert block["shared_blocks"].tolist() == per_request_hits(offsets, dist)[1].tolist()
    assert block["shared_tokens"].tolist() == hit_tokens(offsets, dist, lengths, block_size, prefix_only=True)[0].tolist()
    assert block["shared_tokens"].tolist() == [
        naive_block_tokens(k, len(b), n, block_size) for (k, _), b, n in zip(expected, per_request, lengths.tolist())]


def test_token_divergence_reads_only_windows_of_branching_groups():
    # a chain of 50 turns, each extending the previous one: every group has one member except
    # where a turn ends inside a block, so few windows are read
    turns = [list(range(16 * (k + 1) + 5)) for k in range(50)]
    tokens, token_offsets, lengths, offsets, dense, n_unique = _hashed(turns, 16, "drop")
    block = block_divergence(one_chunk(offsets, dense), n_unique, lengths, 16)
    asked = []
    inner = gather_windows(tokens, token_offsets)

    def counting(req, start, length):
        asked.append(int(req.shape[0]))
        return inner(req, start, length)
    shared, match = token_divergence(one_chunk(offsets, dense), offsets, lengths, 16, block, counting)
    assert sum(asked) <= 2 * len(turns)
    assert shared[1:].tolist() == lengths[:-1].tolist()  # each turn shares the whole previous one
    assert match[1:].tolist() == list(range(49))


# ---- text stores made by hand (the columns the text formats add) -------------------------------

def text_store(tmp_path, prompts, *, block_size=16, cached=None, messages=True, tokenizer="bytes"):
    """A store of UTF-8 byte tokens (``--tokenizer bytes``) with the text formats' columns:
    ``prompts`` are lists of (role, content) messages (or plain strings when not ``messages``)."""
    rows = []
    for prompt in prompts:
        if not messages:
            rows.append((list(prompt.encode()), None, None))
            continue
        tokens, offsets, roles = [], [], []
        for role, content in prompt:
            offsets.append(len(tokens))
            roles.append(role)
            tokens += list(f"<|{role}|>\n{content}\n".encode())
        rows.append((tokens + list(b"<|assistant|>\n"), offsets, roles))
    path = tmp_path / "text.jsonl"
    path.write_text("".join(json.dumps({"timestamp": i, "token_ids": r[0]}) + "\n" for i, r in enumerate(rows)))
    trace = open_trace(path, block_size=block_size, partial_block="drop")
    con = trace.con
    # every store has these columns (tables.REQUEST_EXTRAS); a text reader would fill them
    con.register("_src", pa.table({"req_id": np.arange(len(rows)), "t": [r[0] for r in rows],
                                   "o": pa.array([r[1] for r in rows], pa.list_(pa.int32())),
                                   "r": pa.array([r[2] for r in rows], pa.list_(pa.string())),
                                   "c": pa.array(cached if cached is not None else [None] * len(rows), pa.int64())}))
    con.execute("UPDATE requests SET tokens = _src.t, msg_offsets = _src.o, msg_roles = _src.r, "
                "cached_tokens = _src.c FROM _src WHERE requests.req_id = _src.req_id")
    con.unregister("_src")
    trace.meta["tokenizer"] = tokenizer
    return trace


def timestamped_chats(n=120, seed=0):
    rng = random.Random(seed)
    questions = ["What is a KV cache?", "How do I reverse a list in Python?", "Explain prefix caching."]
    return [[("system", f"You are a helpful assistant. Current time: 10:{i // 60:02d}:{i % 60:02d}. "
                        "Answer briefly and cite the documents you use."),
             ("user", rng.choice(questions))] for i in range(n)]


def test_timestamp_in_the_system_prompt_is_named_in_the_headline(tmp_path):
    trace = text_store(tmp_path, timestamped_chats())
    res = analyze_divergence(trace)
    s = res.summary()
    assert s["level"] == "token" and s["requests"] == 119
    assert s["by_role"] == {"system": 1.0} and s["by_message_index"] == {"0": 1.0}
    top = s["top_sites"][0]
    assert top["role"] == "system" and top["message_index"] == 0 and top["requests"] == 119
    assert top["example"]["kind"] == "in-message value"
    assert top["example"]["same_after"] > 0
    assert "diverge inside the system message" in s["headline"]
    assert "timestamp" in s["headline"] and "Current time: 10:0" in s["headline"]
    assert s["snippet_decoding"] == "bytes"
    # every divergence is at the seconds digits of the clock, inside block 3 (16-token blocks)
    offset = len(b"<|system|>\nYou are a helpful assistant. Current time: 10:0")  # the minutes digit
    div = res.requests.filter(res.requests["req_id"] > 0)
    assert div["divergence_token"].min() >= offset and div["divergence_token"].max() <= offset + len("0:00")
    assert (div["divergence_block"] == offset // 16).all()
    # tokens after the divergence point are the tokens lost
    assert top["tokens_lost"] == int((div["input_len"] - div["shared_tokens"]).sum())


def test_token_level_equals_reference_on_a_store(tmp_path):
    chats = timestamped_chats(40, seed=3)
    trace = text_store(tmp_path, chats)
    res = analyze_divergence(trace)
    tokens = trace.sql("SELECT tokens FROM requests ORDER BY req_id")["tokens"].to_list()
    expected = naive_longest_shared_prefix(tokens)
    assert list(zip(res.requests["shared_tokens"].to_list(), res.requests["match_req"].to_list())) == expected


def test_divergence_is_the_same_however_the_accesses_are_chunked(tmp_path):
    """Block level on random hashed traces (whole, one request per chunk, a few accesses per
    chunk, a store opened in chunks), and token level from a store's tokens (random chats that
    continue earlier ones), cut the same ways."""
    check_chunking_changes_nothing(analyze_divergence, tmp_path)
    rng, chats = random.Random(4), [[("user", "")]]
    for _ in range(30):  # conversations that continue earlier ones or start behind one of two system prompts
        earlier = rng.choice(chats) if rng.random() < 0.5 else [("system", rng.choice(["Be brief.", "Be kind."]))]
        chats.append(earlier + [(rng.choice(["user", "assistant"]), rng.choice(["Why?", "How so?", "Hm"]))])
    trace = text_store(tmp_path, chats, block_size=4)
    # without the prefixes the ingest stored, the analysis refines the block level from the tokens
    trace.con.execute("UPDATE requests SET prefix_shared_tokens = NULL, prefix_match_req = NULL")
    want = analyze_divergence(trace)
    assert want.level == "token"
    for size in (1, 13):
        trace.chunk_accesses = size
        assert_same_analysis(analyze_divergence(trace), want)


def test_multi_turn_chat_diverges_where_the_earlier_prompt_ended(tmp_path):
    history, prompts = [("system", "You answer questions about caching.")], []
    for turn in range(6):
        history = history + [("user", f"Question number {turn}: why?")]
        prompts.append(list(history))
        history = history + [("assistant", f"Because of reason {turn}.")]
    trace = text_store(tmp_path, prompts, block_size=4)
    s = analyze_divergence(trace).summary()
    assert all(site["example"]["kind"] == "appended" for site in s["top_sites"])
    assert "where an earlier request's prompt ended" in s["headline"]
    assert s["by_role"] == {"assistant": 1.0}


def test_ingest_stores_the_token_prefix_when_a_reader_keeps_tokens(tmp_path, monkeypatch):
    """A text reader hands its tokens to the store (``Columns.extra['tokens']``); the store then
    keeps each request's token-exact shared prefix, and the analysis reads it instead of the tokens."""
    from kvctrace.formats import tokens as tokens_format
    plain = tokens_format._columns

    def with_tokens(ts, tokens, offsets, *rest):
        cols = plain(ts, tokens, offsets, *rest)
        cols.extra = {**cols.extra, "tokens": pa.LargeListArray.from_arrays(
            pa.array(offsets, pa.int64()), pa.array(tokens.astype(np.int32)))}
        return cols
    monkeypatch.setattr(tokens_format, "_columns", with_tokens)
    rng = random.Random(2)
    base = [rng.randint(0, 3) for _ in range(60)]
    prompts = [base[:rng.randint(0, 60)] + [rng.randint(0, 3) for _ in range(rng.randint(0, 9))] for _ in range(40)]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"timestamp": 40 - i, "token_ids": p}) + "\n" for i, p in enumerate(prompts)))
    trace = open_trace(path, block_size=4, partial_block="drop")  # requests arrive in reverse file order
    stored = trace.sql("SELECT prefix_shared_tokens, prefix_match_req FROM requests ORDER BY req_id")
    arrival = prompts[::-1]
    assert list(zip(*stored.to_dict(as_series=False).values())) == naive_longest_shared_prefix(arrival)
    res = analyze_divergence(trace)
    assert res.level == "token"
    assert res.requests["shared_tokens"].to_list() == stored["prefix_shared_tokens"].to_list()
    # the same figures as reading the tokens back
    trace.con.execute("ALTER TABLE requests DROP COLUMN prefix_shared_tokens")
    again = analyze_divergence(trace)
    assert again.requests["shared_tokens"].to_list() == res.requests["shared_tokens"].to_list()
    assert again.requests["match_req"].to_list() == res.requests["match_req"].to_list()


def test_plain_prompts_have_no_messages(tmp_path):
    prompts = ["Summarise this: alpha beta gamma", "Summarise this: alpha delta", "Translate: hello"]
    res = analyze_divergence(text_store(tmp_path, prompts, messages=False, block_size=4))
    s = res.summary()
    assert s["by_role"] is None and s["by_message_index"] is None
    assert res.requests["shared_tokens"].to_list() == [0, len("Summarise this: alpha "), 0]
    assert res.requests["match_req"].to_list() == [-1, 0, -1]


def test_a_prompt_that_is_a_prefix_of_earlier_content_does_not_diverge(tmp_path):
    res = analyze_divergence(text_store(tmp_path, ["abcdefghij", "abcdef"], messages=False, block_size=4))
    row = res.requests.row(1, named=True)
    assert row["shared_tokens"] == 6 and row["divergence_token"] is None and row["match_req"] == 0
    assert row["prefix_hit_tokens"] == 4  # only the full block can come from a block cache
    assert res.summary()["requests_fully_shared"] == 1


def test_reported_cached_tokens_against_prediction(tmp_path):
    chats = timestamped_chats(30, seed=1)
    rng = random.Random(5)
    cached = [rng.randint(0, 80) if i % 4 else None for i in range(30)]
    res = analyze_divergence(text_store(tmp_path, chats, cached=cached))
    rc = res.summary()["reported_cache"]
    have = [i for i, c in enumerate(cached) if c is not None]
    predicted = res.requests["prefix_hit_tokens"].to_list()
    assert rc["requests"] == len(have)
    assert rc["reported_tokens_total"] == sum(cached[i] for i in have)
    assert rc["predicted_tokens_total"] == sum(predicted[i] for i in have)
    assert rc["pearson_r"] == pytest.approx(naive_pearson([predicted[i] for i in have], [cached[i] for i in have]))
    gaps = sorted(((abs(predicted[i] - cached[i]), i) for i in have), key=lambda x: (-x[0], x[1]))
    assert [d["req_id"] for d in rc["top_disagreements"]] == [i for _, i in gaps[:10]]


def test_reported_cache_absent_or_all_null_is_none():
    import polars as pl
    frame = pl.DataFrame({"req_id": [0, 1], "prefix_hit_tokens": [0, 16]})
    assert reported_cache(frame, None) == (None, None)
    assert reported_cache(frame, pl.Series([None, None], dtype=pl.Int64)) == (None, None)


def test_snippets_decode_with_a_local_tokenizer_file(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers
    tok = tokenizers.Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    tok.train_from_iterator(["Current time: 10:31:07 and more text"] * 20,
                            trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    decode, how = token_decoder(str(tmp_path))
    assert how == "tokenizer" and decode(tok.encode("Current time").ids) == "Current time"
    import hashlib
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert token_decoder(f"{tmp_path} (tokenizer.json sha256 {sha})")[1] == "tokenizer"  # the text formats' label
    assert token_decoder(str(path), sha256="0" * 64)[1] == "token ids"  # not the file that tokenized the trace
    assert token_decoder("bytes (approximation: UTF-8 bytes as tokens)")[1] == "bytes"
    assert token_decoder("/no/such/tokenizer.json")[1] == "token ids"
    assert token_decoder(None)[0]([1, 2]) == "[1 2]"
    assert token_decoder("bytes")[0](list("é".encode())) == "é"


def test_escape_snippet_keeps_one_line():
    assert escape_snippet("a\nb\tc\x01") == "a\\nb\\tc\\x01"
    assert escape_snippet("x" * 60, limit=10) == "x" * 10 + "…"
    assert escape_snippet("abcdef", limit=3, tail=True) == "…def"


# ---- hashed traces ----------------------------------------------------------------------------

def test_hashed_trace_is_block_level_and_agrees_with_reuse(tmp_path):
    path = tmp_path / "m.jsonl"
    recs = [{"timestamp": 0, "input_length": 1500, "output_length": 1, "hash_ids": [1, 2, 3]},
            {"timestamp": 1, "input_length": 1100, "output_length": 1, "hash_ids": [1, 2, 4]},
            {"timestamp": 2, "input_length": 600, "output_length": 1, "hash_ids": [1, 5]},
            {"timestamp": 3, "input_length": 300, "output_length": 1, "hash_ids": [9]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    trace = open_trace(path)
    res = analyze_divergence(trace)
    assert res.level == "block"
    assert res.requests["shared_blocks"].to_list() == [0, 2, 1, 0]
    assert res.requests["match_req"].to_list() == [-1, 0, 0, -1]
    assert res.requests["divergence_block"].to_list() == [0, 2, 1, 0]
    reuse = analyze_reuse(trace)
    assert res.requests["prefix_hit_tokens"].to_list() == reuse.requests["prefix_hit_tokens"].to_list()
    s = res.summary()
    assert s["requests"] == 3 and s["requests_sharing_nothing"] == 1
    assert s["by_role"] is None and s["snippet_decoding"] is None


def test_lengths_only_trace_has_no_divergence(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n")
    trace = open_trace(path)
    with pytest.raises(NoBlockIdsError):
        analyze_divergence(trace)
    result = analyze(trace)
    assert result.divergence is None and "divergence" in result.unavailable
    assert result.summary()["divergence"]["available"] is False


@pytest.mark.skipif(not MOONCAKE.exists(), reason="needs ../shared/datasets")
def test_mooncake_conversation_golden():
    trace = open_trace(MOONCAKE)
    res = analyze_divergence(trace)
    s = res.summary()
    reuse = analyze_reuse(trace)
    assert res.requests["shared_blocks"].to_list() == reuse.requests["prefix_hit_blocks"].to_list()
    assert s["requests"] == 12030
    assert s["requests_diverging"] == GOLDEN_MOONCAKE["requests_diverging"]
    assert s["requests_sharing_nothing"] == GOLDEN_MOONCAKE["requests_sharing_nothing"]
    assert s["divergence_block_p50"] == GOLDEN_MOONCAKE["divergence_block_p50"]
    assert s["top_sites"][0]["block"] == GOLDEN_MOONCAKE["top_block"]
    assert s["top_sites"][0]["requests"] == GOLDEN_MOONCAKE["top_requests"]
    assert s["tokens_lost_total"] == GOLDEN_MOONCAKE["tokens_lost_total"]
    json.dumps(analyze(trace).summary()["divergence"], allow_nan=False)


GOLDEN_MOONCAKE = {"requests_diverging": 11912, "requests_sharing_nothing": 0, "divergence_block_p50": 1.0,
                   "top_block": 1, "top_requests": 7372, "tokens_lost_total": 90688654}
