"""Public trace formats with small generated fixtures: LMCache lookup-hash logs, Alibaba
ServeGen offline traces, BurstGPT CSV (both releases) and Azure LLM inference 2024 CSV; each is
detected from its first record."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from kvctrace import KvctraceError, open_trace
from kvctrace.analysis import analyze
from kvctrace.analysis.reuse import analyze_reuse
from kvctrace.formats import detect_format
from kvctrace.formats.lmcache import parse_hash


def lmcache_hashes(tokens, chunk, partial=True):
    """LMCache-style prefix hashes: each chunk's hash covers the whole prefix up to it."""
    out, prev = [], b""
    n = len(tokens) if partial else len(tokens) // chunk * chunk
    for lo in range(0, n, chunk):
        prev = hashlib.sha256(prev + repr(tokens[lo:lo + chunk]).encode()).digest()
        out.append("0x" + prev[:8].hex())
    return out


def lmcache_log(tmp_path, prompts, chunk=256, partial=True, name="lmcache.jsonl"):
    path = tmp_path / name
    lines = [json.dumps({"timestamp": 1700000000.0 + i, "request_id": f"req-{i}", "model_name": "llama",
                         "chunk_size": chunk, "seq_len": len(p), "chunk_hashes": lmcache_hashes(p, chunk, partial)})
             for i, p in enumerate(prompts)]
    path.write_text("\n".join(lines) + "\n")
    return path


SYSTEM = list(range(600))


def test_lmcache_log(tmp_path):
    prompts = [SYSTEM + [1000 + i] * 300 for i in range(3)] + [SYSTEM[:512]]
    trace = open_trace(lmcache_log(tmp_path, prompts))
    assert trace.format == "lmcache" and trace.block_size == 256
    assert trace.n_requests == 4 and trace.n_accesses == 4 + 4 + 4 + 2
    # the first two chunks (512 tokens of the shared system prompt) are shared by every request
    assert trace.n_unique_blocks == 4 + 2 + 2
    reuse = analyze_reuse(trace, shards=False)
    assert reuse.requests["prefix_hit_blocks"].to_list() == [0, 2, 2, 2]
    req = trace.requests()
    assert req["request_id"].to_list() == ["req-0", "req-1", "req-2", "req-3"]
    assert req["model"].to_list() == ["llama"] * 4
    assert req["ts"].to_list() == [0.0, 1.0, 2.0, 3.0]


def test_lmcache_full_chunks_only_and_block_size_from_the_log(tmp_path):
    trace = open_trace(lmcache_log(tmp_path, [SYSTEM, SYSTEM + [5] * 100], chunk=128, partial=False))
    assert trace.block_size == 128 and trace.n_accesses == 4 + 5


def test_lmcache_hash_parsing():
    assert parse_hash("0x1f", 0) == 31 and parse_hash("FF", 0) == 255
    assert parse_hash("0x" + "f" * 16, 0) == (1 << 64) - 1
    wide = (1 << 64) * 3 + 5
    assert parse_hash(hex(wide), 0) == 3 ^ 5  # folded to 64 bits by XOR of its 64-bit words


@pytest.mark.parametrize("change, field, words", [
    ({"chunk_hashes": ["0x1", "zz"]}, "chunk_hashes", "item 1"),
    ({"chunk_hashes": [1, 2]}, "chunk_hashes", "hexadecimal string"),
    ({"chunk_hashes": ["0x1"]}, "chunk_hashes", "needs 2"),
    ({"chunk_size": 128}, "chunk_size", "same chunk size"),
    ({"seq_len": -1}, "seq_len", "negative"),
])
def test_lmcache_bad_records(tmp_path, change, field, words):
    good = {"timestamp": 1.0, "request_id": "a", "model_name": "m", "chunk_size": 256, "seq_len": 600,
            "chunk_hashes": ["0x1", "0x2", "0x3"]}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, **change}) + "\n")
    with pytest.raises(KvctraceError) as info:
        open_trace(path)
    assert info.value.line == 2 and info.value.field == field and words in str(info.value)


def servegen_trace(tmp_path, name="servegen.jsonl"):
    # per-block content ids as ServeGen/Bailian write them: id 7 follows two different prefixes
    recs = [{"request_id": "r0", "type": "text", "input_length": 40, "output_length": 5, "hash_ids": [1, 2, 7]},
            {"request_id": "r1", "type": "text", "input_length": 33, "output_length": 6, "hash_ids": [1, 2, 3]},
            {"request_id": "r2", "type": "image", "input_length": 48, "output_length": 7, "hash_ids": [1, 9, 7]},
            {"request_id": "r3", "type": "text", "input_length": 16, "hash_ids": [1]}]
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def test_servegen_trace_keeps_record_order_and_rechains(tmp_path):
    trace = open_trace(servegen_trace(tmp_path))
    assert trace.format == "servegen" and trace.block_size == 16
    req = trace.requests()
    assert req["request_id"].to_list() == ["r0", "r1", "r2", "r3"]
    assert req["ts"].to_list() == [0.0] * 4 and trace.duration_s == 0.0
    assert req["type"].to_list() == ["text", "text", "image", "text"]
    assert req["output_len"].to_list() == [5, 6, 7, 0]
    # rechained: id 7 after (1, 9) is not the block 7 after (1, 2)
    assert trace.n_unique_blocks == 6
    assert analyze_reuse(trace, shards=False).requests["prefix_hit_blocks"].to_list() == [0, 2, 1, 1]


def test_servegen_slow_path_agrees_with_fast_path(tmp_path):
    fast = open_trace(servegen_trace(tmp_path))
    path = tmp_path / "bad.jsonl"
    path.write_text(servegen_trace(tmp_path, "src.jsonl").read_text() + "not json\n")
    slow = open_trace(path, skip_bad_lines=True)
    assert slow.rejected_lines == 1
    assert slow.blocks.tolist() == fast.blocks.tolist() and slow.offsets.tolist() == fast.offsets.tolist()
    assert slow.requests()["request_id"].to_list() == fast.requests()["request_id"].to_list()


def test_servegen_block_count_is_checked(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"request_id": "a", "input_length": 40, "hash_ids": [1, 2]}) + "\n")
    with pytest.raises(KvctraceError) as info:
        open_trace(path)
    assert info.value.field == "hash_ids" and "ceil(40/16) = 3" in str(info.value)


BURSTGPT_1 = """Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
5,ChatGPT,472,18,490,Conversation log
45,ChatGPT,1087,230,1317,Conversation log
118,GPT-4,417,276,693,Conversation log
120,GPT-4,300,0,300,API log
"""
BURSTGPT_3 = """Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type
0.5,6f1d,1.2,ChatGPT,100,20,120,Conversation log
2.5,6f1d,0.8,ChatGPT,180,30,210,Conversation log
3.0,a0b2,2.0,GPT-4,90,10,100,API log
"""


def test_burstgpt_release_1(tmp_path):
    path = tmp_path / "BurstGPT_1.csv"
    path.write_text(BURSTGPT_1)
    trace = open_trace(path)
    assert trace.format == "burstgpt" and not trace.has_block_ids
    req = trace.requests()
    assert req["ts"].to_list() == [0.0, 40.0, 113.0, 115.0]
    assert req["input_len"].to_list() == [472, 1087, 417, 300] and req["output_len"].to_list() == [18, 230, 276, 0]
    assert req["model"].to_list() == ["ChatGPT", "ChatGPT", "GPT-4", "GPT-4"]
    assert req["type"].to_list() == ["Conversation log"] * 3 + ["API log"]
    s = analyze(trace).summary()
    assert s["workload"]["types"] == {"Conversation log": 3, "API log": 1}
    assert s["reuse"]["available"] is False and s["divergence"]["available"] is False


def test_burstgpt_with_sessions(tmp_path):
    path = tmp_path / "BurstGPT_3.csv"
    path.write_text(BURSTGPT_3)
    trace = open_trace(path)
    assert trace.format == "burstgpt"
    assert trace.requests()["session_id"].to_list() == ["6f1d", "6f1d", "a0b2"]
    assert analyze(trace).summary()["workload"]["sessions"] == 2


def test_burstgpt_bad_cell(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(BURSTGPT_1.replace("1087", "1O87"))
    with pytest.raises(KvctraceError) as info:
        open_trace(path)
    assert info.value.line == 3 and info.value.field == "Request tokens"


AZURE_2024 = """TIMESTAMP,ContextTokens,GeneratedTokens
2024-05-10 00:00:00.009930+00:00,2048,28
2024-05-10 00:00:00.500000+00:00,1033,151
2024-05-10 00:00:02.250000+00:00,4496,4
"""


@pytest.mark.parametrize("text", [AZURE_2024, AZURE_2024.replace("+00:00", "")])
def test_azure_2024_reads_as_lengths(tmp_path, text):
    path = tmp_path / "AzureLLMInferenceTrace_code_1week.csv"
    path.write_text(text)
    trace = open_trace(path)
    assert trace.format == "lengths" and not trace.has_block_ids
    assert np.allclose(trace.ts, [0.0, 0.49007, 2.24007])
    assert trace.input_len.tolist() == [2048, 1033, 4496] and trace.output_len.tolist() == [28, 151, 4]


@pytest.mark.parametrize("keys, fmt", [
    (["timestamp", "request_id", "model_name", "chunk_size", "seq_len", "chunk_hashes"], "lmcache"),
    (["request_id", "type", "input_length", "output_length", "hash_ids"], "servegen"),
    (["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"], "burstgpt"),
    (["TIMESTAMP", "ContextTokens", "GeneratedTokens"], "lengths"),
    (["id", "models", "block_size", "hash_id_scope", "requests"], "kv-cache-tester"),
    (["timestamp", "input_length", "output_length", "hash_ids"], "mooncake"),
])
def test_detection_from_the_first_record(keys, fmt):
    assert detect_format(keys) == fmt
