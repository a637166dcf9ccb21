"""kv-cache-tester agentic sessions: one JSON document per conversation, a file or a folder,
sub-agents, per-file id scope, conversations placed on one time line (--session-start, --seed);
golden figures on the 12 real conversations in ../shared/datasets/kv-cache-tester."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from kvctrace import KvctraceError, open_trace
from kvctrace.analysis import analyze
from kvctrace.analysis.reuse import analyze_reuse
from kvctrace.cli import app
from kvctrace.formats.kv_cache_tester import extract_hash_ids, session_starts
from kvctrace.kernels.intlists import parse_int_lists

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
KVCT = DATASETS / "kv-cache-tester"
needs_real = pytest.mark.skipif(not KVCT.exists(), reason="needs ../shared/datasets/kv-cache-tester")

# The 12 real conversations (README of ../shared/datasets): requests, accesses, distinct blocks
# (per-file scope: no block shared between files) and the unlimited-cache block hit ratio.
GOLDEN = {"requests": 814, "accesses": 1_452_052, "unique_blocks": 53_802, "hit_ratio": 0.9629476079369058,
          "sessions": 12, "longest_conversation_s": 15415.0}


def conversation(conv_id="c1", requests=None, scope="local", block_size=4, **extra):
    return {"id": conv_id, "models": ["m"], "block_size": block_size, "hash_id_scope": scope,
            "requests": requests if requests is not None else [
                {"t": 0.0, "type": "n", "model": "m", "in": 8, "out": 3, "hash_ids": [1, 2], "think_time": 0.0},
                {"t": 5.0, "type": "s", "model": "m", "in": 13, "out": 4, "hash_ids": [1, 2, 3],
                 "think_time": 2.0, "api_time": 1.5}], **extra}


def write(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc))
    return path


@needs_real
@pytest.mark.parametrize("session_start", [None, "zero", "stagger:100", "poisson:0.01"])
def test_real_folder_figures_do_not_depend_on_session_start(session_start):
    trace = open_trace(KVCT, format="kv-cache-tester", session_start=session_start, seed=3)
    assert trace.format == "kv-cache-tester" and trace.block_size == 64
    assert (trace.n_requests, trace.n_accesses, trace.n_unique_blocks) == (
        GOLDEN["requests"], GOLDEN["accesses"], GOLDEN["unique_blocks"])
    assert analyze_reuse(trace, shards=False).ideal_hit_ratio_blocks == pytest.approx(GOLDEN["hit_ratio"], abs=1e-12)
    facts = trace.sql("SELECT count(DISTINCT session_id) AS s, count(model) AS m, count(think_time) AS t, "
                      "count(api_time) AS a FROM requests").row(0, named=True)
    assert facts == {"s": GOLDEN["sessions"], "m": 814, "t": 814, "a": 764}


@needs_real
def test_real_folder_time_line():
    zero = open_trace(KVCT, session_start="zero")
    assert zero.duration_s == GOLDEN["longest_conversation_s"]
    default = open_trace(KVCT)  # Poisson, seed 0: last start expected when the longest would end
    assert GOLDEN["longest_conversation_s"] < default.duration_s < 2 * GOLDEN["longest_conversation_s"]
    assert open_trace(KVCT).duration_s == default.duration_s  # same seed, same time line
    assert open_trace(KVCT, seed=1).duration_s != default.duration_s


@needs_real
def test_one_real_file_is_detected_and_sessions_feed_workload():
    trace = open_trace(KVCT / "trace_0037.json")
    assert trace.format == "kv-cache-tester"
    assert (trace.n_requests, trace.n_accesses, trace.n_unique_blocks) == (7, 27_973, 4_073)
    result = analyze(trace)
    assert result.summary()["workload"]["sessions"] == 1
    assert result.divergence.level == "block"


@needs_real
def test_cli_info_on_the_real_folder():
    out = CliRunner().invoke(app, ["info", str(KVCT), "--format", "kv-cache-tester", "--json"])
    assert out.exit_code == 0, out.output
    info = json.loads(out.stdout)
    assert (info["requests"], info["accesses"], info["unique_blocks"]) == (814, 1_452_052, 53_802)


def test_local_scope_namespaces_ids_per_file_and_global_does_not(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    write(local / "a.json", conversation("a"))
    write(local / "b.json", conversation("b"))
    (local / "LICENSE").write_text("not a trace")  # other files are ignored
    trace = open_trace(local, session_start="zero")
    assert trace.n_requests == 4 and trace.n_unique_blocks == 6
    shared = tmp_path / "global"
    shared.mkdir()
    write(shared / "a.json", conversation("a", scope="global"))
    write(shared / "b.json", conversation("b", scope="global"))
    assert open_trace(shared).n_unique_blocks == 3


def test_subagent_requests_count_from_the_subagents_start(tmp_path):
    reqs = [{"t": 0.0, "type": "n", "in": 8, "out": 1, "hash_ids": [1, 2]},
            {"t": 10.0, "type": "subagent", "agent_id": "ag1", "subagent_type": "explore", "duration_ms": 9000,
             "requests": [{"t": 1.0, "type": "n", "in": 4, "out": 1, "hash_ids": [7]},
                          {"t": 3.5, "type": "n", "in": 8, "out": 1, "hash_ids": [7, 8]}]},
            {"t": 20.0, "type": "n", "in": 12, "out": 1, "hash_ids": [1, 2, 3]}]
    trace = open_trace(write(tmp_path / "c.json", conversation("conv", reqs)))
    req = trace.requests()
    assert req["ts"].to_list() == [0.0, 11.0, 13.5, 20.0]
    assert req["session_id"].to_list() == ["conv", "conv/ag1", "conv/ag1", "conv"]
    assert req["input_len"].to_list() == [8, 4, 8, 12]
    assert analyze(trace).summary()["workload"]["sessions"] == 2


def test_documents_per_line_arrays_compressed_and_pretty_printed(tmp_path):
    docs = [conversation("a"), conversation("b")]
    lines = tmp_path / "convs.jsonl"
    lines.write_text("".join(json.dumps(d) + "\n" for d in docs))
    array = tmp_path / "convs_array.json"
    array.write_text(json.dumps(docs))
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(docs[0], indent=2))
    packed = tmp_path / "packed.json.gz"
    packed.write_bytes(gzip.compress(json.dumps(docs[0]).encode()))
    for path, n in ((lines, 4), (array, 4), (pretty, 2), (packed, 2)):
        trace = open_trace(path)
        assert trace.format == "kv-cache-tester" and trace.n_requests == n, path


def test_session_starts():
    durations = np.array([100.0, 400.0, 50.0])
    assert session_starts(durations, "zero").tolist() == [0, 0, 0]
    assert session_starts(durations, "stagger:30").tolist() == [0, 30, 60]
    a = session_starts(durations, "poisson:0.5", seed=4)
    assert a[0] == 0 and (np.diff(a) > 0).all() and a.tolist() == session_starts(durations, "poisson:0.5", 4).tolist()
    many = session_starts(np.full(20001, 100.0), None, seed=0)  # default rate (K-1)/D: last start ~ D
    assert many[-1] == pytest.approx(100.0, rel=0.05)


@pytest.mark.parametrize("spec", ["soon", "poisson", "poisson:-1", "stagger:x", "zero:3", "poisson:inf"])
def test_bad_session_start_is_an_error(tmp_path, spec):
    with pytest.raises(KvctraceError, match="--session-start"):
        open_trace(write(tmp_path / "c.json", conversation()), session_start=spec)


def test_session_start_on_a_single_clock_trace_is_an_error(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1]}) + "\n")
    with pytest.raises(KvctraceError, match="applies to traces of separate conversations"):
        open_trace(path, session_start="zero")


def test_folder_with_a_non_json_file_names_file_and_line(tmp_path):
    write(tmp_path / "a.json", conversation("a"))
    (tmp_path / "b.json").write_text('{"id": "b",\n "requests": [\n oops]}')
    with pytest.raises(KvctraceError) as info:
        open_trace(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'b.json'}, line 3: malformed JSON")
    out = CliRunner().invoke(app, ["info", str(tmp_path), "--format", "kv-cache-tester"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert out.output.strip().splitlines() == [f"error: {info.value}"]


def test_bad_request_field_is_named_by_its_path(tmp_path):
    reqs = conversation()["requests"]
    reqs[1]["hash_ids"] = [1, 2]  # in 13 at 4-token blocks needs 3 full blocks
    path = write(tmp_path / "c.json", conversation("c", reqs))
    with pytest.raises(KvctraceError) as info:
        open_trace(path)
    assert info.value.line == 1 and info.value.field == "requests[1].hash_ids"
    reqs[1]["hash_ids"] = [1, "x", 3]
    with pytest.raises(KvctraceError, match="item 1"):
        open_trace(write(tmp_path / "d.json", conversation("d", reqs)))
    reqs[1]["hash_ids"] = [1, 2, 3]
    reqs[0]["in"] = 8.5
    with pytest.raises(KvctraceError) as info:
        open_trace(write(tmp_path / "e.json", conversation("e", reqs)))
    assert info.value.field == "requests[0].in"


def test_skip_bad_lines_keeps_the_good_conversations(tmp_path):
    write(tmp_path / "a.json", conversation("a"))
    (tmp_path / "b.json").write_text('{"id": "b", "requests": 5, "block_size": 4}')
    lines = tmp_path / "c.jsonl"
    lines.write_text(json.dumps(conversation("c")) + "\n" + "{broken\n")
    trace = open_trace(tmp_path, skip_bad_lines=True)
    assert trace.n_requests == 4 and trace.rejected_lines == 2
    rejects = trace.rejects()
    assert rejects["raw"].to_list()[1] == "{broken" or "{broken" in rejects["raw"].to_list()
    assert any(r.startswith("b.json: ") for r in rejects["reason"].to_list())


def test_block_size_must_agree_across_conversations(tmp_path):
    write(tmp_path / "a.json", conversation("a"))
    write(tmp_path / "b.json", conversation("b", block_size=8))
    with pytest.raises(KvctraceError, match="block size"):
        open_trace(tmp_path)


def test_folder_database_is_reused(tmp_path):
    folder = tmp_path / "convs"
    folder.mkdir()
    write(folder / "a.json", conversation("a"))
    db = tmp_path / "k.duckdb"
    first = open_trace(folder, db=db)
    sha = first.meta["sha256"]
    first.con.close()
    again = open_trace(folder, db=db)
    assert again.meta["sha256"] == sha and again.n_requests == 2
    again.con.close()
    write(folder / "b.json", conversation("b"))
    changed = open_trace(folder, db=db)
    assert changed.n_requests == 4 and changed.meta["sha256"] != sha
    changed.con.close()


def test_a_folder_is_not_read_as_another_format(tmp_path):
    write(tmp_path / "a.json", conversation("a"))
    with pytest.raises(KvctraceError, match="folder"):
        open_trace(tmp_path, format="mooncake")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KvctraceError, match="no trace files"):
        open_trace(empty)


# ---- the hash_ids fast path -------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=20), st.sampled_from(["", " ", "\n", " \t\r\n"]))
def test_int_lists_parse_like_json(values, ws):
    body = (ws + ("," + ws).join(str(v) for v in values) + ws).encode()
    parsed, first, counts, ok = parse_int_lists(b"[" + body + b"]", np.array([1]), np.array([1 + len(body)]))
    assert ok.tolist() == [True] and counts.tolist() == [len(values)]
    assert parsed[first[0]:first[0] + counts[0]].tolist() == values == json.loads(b"[" + body + b"]")


@pytest.mark.parametrize("body", ["1.5", "01", "1,,2", "1,", ",1", "-", "9223372036854775808", "-9223372036854775809",
                                  "true", "1 2", '"1"', "1e3"])
def test_int_lists_flag_what_is_not_strict_json_int64(body):
    data = f"[{body}]".encode()
    _, _, counts, ok = parse_int_lists(data, np.array([1]), np.array([len(data) - 1]))
    assert ok.tolist() == [False] and counts.tolist() == [0]


def test_extract_hash_ids_touches_keys_only_and_keeps_lines():
    doc = '{"note": "\\"hash_ids\\":[1,2]",\n "hash_ids": [3,\n 4, 5],\n "other": [1.5, 2], "hash_ids2": [9]}'
    text, (prefix, values, first, counts) = extract_hash_ids(doc.encode())
    parsed = json.loads(text)
    assert parsed["note"] == '"hash_ids":[1,2]' and parsed["other"] == [1.5, 2] and parsed["hash_ids2"] == [9]
    k = int(parsed["hash_ids"][len(prefix):])
    assert values[first[k]:first[k] + counts[k]].tolist() == [3, 4, 5]
    assert text.count(b"\n") == doc.count("\n")


def test_a_bad_field_after_a_multi_line_list_names_its_line(tmp_path):
    doc = conversation("c")
    text = json.dumps(doc, indent=1).replace('"out": 4', '"out": -4')
    path = tmp_path / "pretty.json"
    path.write_text(text)
    with pytest.raises(KvctraceError) as info:
        open_trace(path)
    assert info.value.line == 1 and info.value.field == "requests[1].out"  # a document's fields: its first line
    bad = tmp_path / "broken.json"
    bad.write_text(text.replace('"t": 5.0', '"t": 5.0,,'))
    with pytest.raises(KvctraceError) as info:
        open_trace(bad)
    assert info.value.line == next(i for i, l in enumerate(text.splitlines(), 1) if '"t": 5.0' in l)
