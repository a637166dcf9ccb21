"""Format ``prompts`` (text request logs): detection, the tokenization rules, block ids equal to
the ``tokens`` format's for the same token lists, the request columns other analyses rely on
(tokens, msg_offsets, msg_roles, cached_tokens, model), containers, timestamps, the store's
options key and labels for the bytes approximation."""
from __future__ import annotations

import gzip
import json

import numpy as np
import polars as pl
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings, strategies as st
from tokenizers import Tokenizer

from kvctrace import KvctraceError, open_trace
from kvctrace.formats import detect_format, read_columns
from kvctrace.synth_prompts import write_tokenizer
from kvctrace.tokenize import ChatTemplate
from kvctrace.tokenize.train import CHATML_TEMPLATE

CHAT = [{"role": "system", "content": "You are kind."}, {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Tell me more about ducks"}]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("tok") / "bpe", vocab_size=600)


@pytest.fixture(scope="module")
def tok(tok_dir):
    return Tokenizer.from_file(str(tok_dir / "tokenizer.json"))


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def chat_ids(tok, messages):
    return tok.encode(ChatTemplate(CHATML_TEMPLATE, "t").render(messages), add_special_tokens=False).ids


@pytest.mark.parametrize("record", [
    {"prompt": "x"}, {"messages": []}, {"timestamp": 1, "messages": []},
    {"created": 1, "request": {"messages": []}, "response": {"usage": {}}},
    {"timestamp": "2024-01-01T00:00:00Z", "request": {"prompt": "x"}},
])
def test_detected_from_the_first_record(record):
    assert detect_format(record.keys()) == "prompts"


def test_prompt_and_chat_records_follow_the_rules(tmp_path, tok_dir, tok):
    path = write_jsonl(tmp_path / "log.jsonl", [
        {"timestamp": 0.5, "prompt": "Once upon a time", "session_id": "a", "output_length": 7, "model": "m1"},
        {"timestamp": 1.5, "messages": CHAT, "user": "b", "output_tokens": 3, "cached_tokens": 12}])
    tr = open_trace(path, tokenizer=tok_dir)
    req = tr.requests()
    assert req["tokens"].to_list() == [tok.encode("Once upon a time").ids, chat_ids(tok, CHAT)]
    assert req["input_len"].to_list() == [len(t) for t in req["tokens"].to_list()]
    assert req["msg_roles"].to_list() == [["prompt"], ["system", "user", "assistant", "user"]]
    starts = req["msg_offsets"].to_list()
    assert starts[0] == [0] and starts[1][0] == 0 and starts[1] == sorted(starts[1])
    chat = req["tokens"].to_list()[1]
    im_start = tok.token_to_id("<|im_start|>")
    assert [chat[s] for s in starts[1]] == [im_start] * 4  # each ChatML message starts at its <|im_start|>
    assert req["session_id"].to_list() == ["a", "b"] and req["output_len"].to_list() == [7, 3]
    assert req["cached_tokens"].to_list() == [None, 12] and req["model"].to_list() == ["m1", None]
    assert tr.format == "prompts" and tr.block_size == 16 and tr.meta["partial_block"] == "drop"
    assert tr.n_blocks_per_request.tolist() == [len(t) // 16 for t in req["tokens"].to_list()]
    info = tr.info()
    assert info["tokenizer"].startswith(str(tok_dir)) and "sha256" in info["tokenizer"]
    assert "tokenizer_config.json" in info["chat_template"] and tr.meta["tokenize_path"] == "pieces"
    assert tr.meta["tokenizer_spec"] == str(tok_dir) and info["message_start_fallbacks"] == 0


sentences = st.lists(st.sampled_from(["Hello", " there", "\n", "é", "日本", " 42", "!", "<|im_end|>", "  ", "ducks"]),
                     max_size=30).map("".join)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(convs=st.lists(st.lists(sentences, min_size=1, max_size=4), min_size=1, max_size=6),
       block_size=st.sampled_from([1, 4, 16]), partial=st.sampled_from(["include", "drop"]))
def test_block_ids_equal_the_tokens_format(tmp_path_factory, tok_dir, tok, convs, block_size, partial):
    folder = tmp_path_factory.mktemp("same")
    chats = [[{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(conv)] for conv in convs]
    text = write_jsonl(folder / "text.jsonl", [{"timestamp": i, "messages": m} for i, m in enumerate(chats)])
    tokens = write_jsonl(folder / "tokens.jsonl", [{"timestamp": i, "token_ids": chat_ids(tok, m)} for i, m in enumerate(chats)])
    a, _ = read_columns(text, tokenizer=tok_dir, block_size=block_size, partial_block=partial)
    b, _ = read_columns(tokens, block_size=block_size, partial_block=partial)
    assert np.array_equal(a.offsets, b.offsets) and np.array_equal(a.ids.view(np.uint64), b.ids.view(np.uint64))
    assert np.array_equal(a.input_len, b.input_len)


def test_whole_store_equals_the_tokens_format(tmp_path, tok_dir, tok):
    chats = [CHAT[:2], CHAT, CHAT[:2] + [{"role": "assistant", "content": "Other"}]]
    text = write_jsonl(tmp_path / "t.jsonl", [{"timestamp": i, "messages": m} for i, m in enumerate(chats)])
    tokens = write_jsonl(tmp_path / "k.jsonl", [{"timestamp": i, "token_ids": chat_ids(tok, m)} for i, m in enumerate(chats)])
    a, b = open_trace(text, tokenizer=tok_dir), open_trace(tokens, partial_block="drop")
    assert a.accesses().equals(b.accesses()) and a.blocks_table().equals(b.blocks_table())


def test_request_columns_follow_the_timestamp_order(tmp_path, tok_dir, tok):
    records = [{"timestamp": t, "messages": [{"role": "user", "content": f"question {t}"}], "cached_tokens": t,
                "model": f"m{t}"} for t in (30, 10, 20)]
    tr = open_trace(write_jsonl(tmp_path / "u.jsonl", records), tokenizer=tok_dir)
    req = tr.requests()
    assert req["line_no"].to_list() == [2, 3, 1] and not tr.sorted_input
    assert req["cached_tokens"].to_list() == [10, 20, 30] and req["model"].to_list() == ["m10", "m20", "m30"]
    assert req["tokens"].to_list() == [chat_ids(tok, records[i]["messages"]) for i in (1, 2, 0)]


def test_gateway_log_shape(tmp_path, tok_dir, tok):
    record = {"created": "2024-05-01T12:00:01Z", "request": {"model": "gpt-x", "user": "u7", "messages": CHAT},
              "response": {"usage": {"prompt_tokens": 40, "completion_tokens": 9,
                                     "prompt_tokens_details": {"cached_tokens": 32}}}}
    later = {**record, "created": "2024-05-01T12:00:03.5+00:00"}
    tr = open_trace(write_jsonl(tmp_path / "g.jsonl", [record, later]), tokenizer=tok_dir)
    req = tr.requests()
    assert tr.ts.tolist() == [0.0, 2.5] and req["session_id"].to_list() == ["u7", "u7"]
    assert req["model"].to_list() == ["gpt-x"] * 2 and req["output_len"].to_list() == [9, 9]
    assert req["cached_tokens"].to_list() == [32, 32] and req["reported_prompt_tokens"].to_list() == [40, 40]
    assert req["tokens"].to_list()[0] == chat_ids(tok, CHAT)


def test_missing_timestamps_are_record_order_and_parts(tmp_path, tok_dir, tok):
    parts = [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "x"}},
             {"type": "text", "text": "here"}, {"type": "input_audio", "input_audio": {}}]
    records = [{"prompt": "a"}, {"messages": [{"role": "user", "content": parts}]}, {"prompt": "b"}]
    tr = open_trace(write_jsonl(tmp_path / "n.jsonl", records), tokenizer=tok_dir)
    assert tr.ts.tolist() == [0.0, 1.0, 2.0] and "record order" in tr.meta["timestamps"]
    assert tr.requests()["tokens"].to_list()[1] == chat_ids(tok, [{"role": "user", "content": "Look\nhere"}])
    assert tr.info()["non_text_parts_skipped"] == 2 and tr.meta["text_records"] == "1 messages, 2 prompt"


def test_containers_give_the_same_tokens(tmp_path, tok_dir):
    records = [{"timestamp": i, "messages": CHAT[:i + 1], "session_id": "s"} for i in range(4)]
    plain = write_jsonl(tmp_path / "c.jsonl", records)
    data = plain.read_bytes()
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    (tmp_path / "c.json").write_text(json.dumps(records))
    pl.DataFrame(records).write_parquet(tmp_path / "c.parquet")
    expected = open_trace(plain, tokenizer=tok_dir).requests()
    for name in ("c.jsonl.gz", "c.jsonl.zst", "c.json", "c.parquet"):
        got = open_trace(tmp_path / name, tokenizer=tok_dir).requests()
        assert got.drop("line_no").equals(expected.drop("line_no")), name


def test_store_is_not_reused_across_tokenizers(tmp_path, tok_dir):
    path = write_jsonl(tmp_path / "r.jsonl", [{"timestamp": 0, "prompt": "hello hello"}])
    db = tmp_path / "r.duckdb"
    first = open_trace(path, tokenizer=tok_dir, db=db)
    assert first.meta["tokenize_path"] == "pieces"
    first.con.close()
    again = open_trace(path, tokenizer="bytes", db=db)
    assert again.meta["tokenizer"].startswith("bytes (approximation") and again.input_len.tolist() == [11]
    again.con.close()
    reused = open_trace(path, tokenizer="bytes", db=db)
    assert reused.meta["tokenizer"] == again.meta["tokenizer"]
    reused.con.close()
    with pytest.raises(KvctraceError, match="--tokenizer"):
        open_trace(db, tokenizer="bytes")


def test_text_options_on_a_hashed_trace_are_an_error(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"timestamp": 0, "input_length": 3, "output_length": 1, "hash_ids": [1]}])
    with pytest.raises(KvctraceError, match="--tokenizer apply to text traces"):
        open_trace(path, tokenizer="bytes")
    assert open_trace(path).meta["partial_block"] == "include"


def test_partial_block_option(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"timestamp": 0, "prompt": "x" * 40}])
    assert open_trace(path, tokenizer="bytes").n_accesses == 2
    kept = open_trace(path, tokenizer="bytes", partial_block="include")
    assert kept.n_accesses == 3 and kept.meta["partial_block"] == "include"


def test_bytes_is_labelled_an_approximation_everywhere(tmp_path):
    from kvctrace.commands import analyze
    path = write_jsonl(tmp_path / "b.jsonl", [{"timestamp": i, "messages": CHAT[:2 + i]} for i in range(3)])
    done = analyze(path, {"tokenizer": "bytes"}, tmp_path / "out")
    label = "bytes (approximation: UTF-8 bytes as tokens)"
    assert json.loads(done.summary_path.read_text())["trace"]["tokenizer"] == label
    html = done.report_path.read_text()
    assert label in html and "an approximation of a real tokenizer" in html
    assert open_trace(path, tokenizer="bytes").info()["tokenizer"] == label


def test_the_tokens_format_keeps_its_token_ids_when_they_fit(tmp_path):
    small = write_jsonl(tmp_path / "s.jsonl", [{"timestamp": 0, "token_ids": [5, 6, 7]}, {"timestamp": 1, "token_ids": []}])
    assert open_trace(small).requests()["tokens"].to_list() == [[5, 6, 7], []]
    huge = write_jsonl(tmp_path / "h.jsonl", [{"timestamp": 0, "token_ids": [5, 2**40]}])
    req = open_trace(huge).requests()
    assert req["tokens"].to_list() == [None] and req["msg_offsets"].to_list() == [None]
