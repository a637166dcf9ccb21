"""Text logs on the command line: every bad record, template and tokenizer gives one line
``file, line N, field ...`` and exit 1 (never a traceback); --skip-bad-lines keeps the rest
and stores the rejected lines verbatim. Synthetic chat logs (``synth --format prompts``) and
the shipped chat log + tokenizer: reproducible from the commands in datasets/README.md, with
pinned numbers."""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
import sys
from pathlib import Path

import numpy as np
import pytest
import zstandard
from typer.testing import CliRunner

from kvctrace import open_trace
from kvctrace.cli import app
from kvctrace.synth_prompts import CLOCK_PROMPT, EPOCH_S, records, write, write_tokenizer

REPO = Path(__file__).resolve().parents[1]
GOOD = {"timestamp": 1, "messages": [{"role": "user", "content": "hello"}]}
GOOD3 = {"timestamp": 3, "prompt": "bye"}
USER = {"role": "user", "content": "x"}

BAD = {  # name: (line 2, field, words)
    "neither": ({"timestamp": 2, "text": "hi"}, "prompt", "needs 'prompt' or 'messages'"),
    "both": ({"timestamp": 2, "prompt": "a", "messages": [USER]}, "messages", "both 'prompt' and 'messages'"),
    "prompt_type": ({"timestamp": 2, "prompt": ["a"]}, "prompt", "should be a string, got list"),
    "messages_type": ({"timestamp": 2, "messages": "hi"}, "messages", "non-empty list"),
    "messages_empty": ({"timestamp": 2, "messages": []}, "messages", "non-empty list"),
    "message_type": ({"timestamp": 2, "messages": ["hi"]}, "messages", "message 0 should be an object"),
    "no_role": ({"timestamp": 2, "messages": [{"content": "x"}]}, "messages", "message 0 has no 'role'"),
    "role_type": ({"timestamp": 2, "messages": [{"role": 3, "content": "x"}]}, "messages", "'role' should be a string"),
    "content_type": ({"timestamp": 2, "messages": [USER, {"role": "user", "content": 5}]}, "messages",
                     "message 1 'content' should be a string or a list of parts, got int"),
    "part_type": ({"timestamp": 2, "messages": [{"role": "user", "content": ["x"]}]}, "messages",
                  "content part 0 should be an object with a 'type'"),
    "part_text": ({"timestamp": 2, "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
                  "messages", "has no text string"),
    "timestamp_text": ({"timestamp": "soon", "prompt": "a"}, "timestamp", "neither a number nor a date-time"),
    "timestamp_missing": ({"prompt": "a"}, "timestamp", "missing field 'timestamp'"),
    "timestamp_bool": ({"timestamp": True, "prompt": "a"}, "timestamp", "should be a number"),
    "timestamp_range": ({"timestamp": 1e17, "prompt": "a"}, "timestamp", "outside the valid range"),
    "timestamp_inf": ('{"timestamp": 1e400, "prompt": "a"}', "timestamp", "not a finite number"),
    "output_too_many": ({"timestamp": 2, "prompt": "a", "output_tokens": 2**31}, "output_tokens", "above the limit"),
    "output_negative": ({"timestamp": 2, "prompt": "a", "output_tokens": -1}, "output_tokens", "negative"),
    "cached_type": ({"timestamp": 2, "prompt": "a", "cached_tokens": "7"}, "cached_tokens", "should be an integer"),
}


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def log_with(tmp_path, bad: dict, name="bad"):
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in (GOOD, bad, GOOD3)) + "\n")
    return path


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_record_is_one_line_naming_file_line_field(tmp_path, name):
    bad, field, words = BAD[name]
    path = log_with(tmp_path, bad, name)
    code, out, err = run("info", path, "--tokenizer", "bytes")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {path}, line 2, field '{field}': ") and words in lines[0], lines[0]
    assert "hint:" in lines[0]


def test_skip_bad_lines_keeps_the_rest_and_the_rejects_verbatim(tmp_path):
    path = tmp_path / "mixed.jsonl"
    bad_lines = [json.dumps(BAD[name][0]) for name in ("neither", "content_type", "no_role")]
    path.write_text("\n".join([json.dumps(GOOD), *bad_lines, json.dumps(GOOD3)]) + "\n")
    tr = open_trace(path, tokenizer="bytes", skip_bad_lines=True)
    assert tr.n_requests == 2 and tr.requests()["line_no"].to_list() == [1, 5]
    rejects = tr.rejects()
    assert rejects["line_no"].to_list() == [2, 3, 4] and rejects["raw"].to_list() == bad_lines
    assert "has no 'role'" in rejects["reason"].to_list()[2]


def test_a_template_that_fails_is_a_bad_line_with_its_jinja_error_shortened(tmp_path):
    template = tmp_path / "strict.jinja"
    template.write_text("{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System roles are not "
                        "supported by this model, sorry:\n' ~ 'x' * 300) }}{% endif %}{{ m.content }}{% endfor %}")
    path = log_with(tmp_path, {"timestamp": 2, "messages": [{"role": "system", "content": "s"}]}, "tpl")
    code, _, err = run("info", path, "--tokenizer", "bytes", "--chat-template", template)
    line = err.strip()
    assert code == 1 and "\n" not in line and len(line) < 400
    assert line.startswith(f"error: {path}, line 2, field 'messages': chat template failed: System roles are not "
                           "supported by this model, sorry: xxx")
    assert "…" in line
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}")
    code, _, err = run("info", path, "--tokenizer", "bytes", "--chat-template", broken)
    assert code == 1 and "chat template line 1" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("tokenizer, words", [
    (None, "needs --tokenizer"),
    ("{log}", "not a Hugging Face tokenizer.json"),
    ("{tmp}", "the folder has no tokenizer.json"),
    ("Qwen/Qwen2.5-7B-Instruct", "huggingface-cli download Qwen/Qwen2.5-7B-Instruct tokenizer.json"),
])
def test_tokenizer_problems_are_one_line(tmp_path, tokenizer, words):
    path = log_with(tmp_path, GOOD, "fine")
    args = ["info", path] + ([] if tokenizer is None else ["--tokenizer", tokenizer.format(log=path, tmp=tmp_path)])
    code, _, err = run(*args)
    assert code == 1 and len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err


def test_a_real_process_prints_no_traceback(tmp_path):
    path = log_with(tmp_path, BAD["no_role"][0], "proc")
    res = subprocess.run([sys.executable, "-m", "kvctrace", "analyze", str(path), "--tokenizer", "bytes",
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "line 2, field 'messages'" in res.stderr


def test_info_shows_the_tokenizer(tmp_path):
    code, out, _ = run("info", log_with(tmp_path, GOOD3, "ok"), "--tokenizer", "bytes", "--json")
    facts = json.loads(out)
    assert code == 0 and facts["tokenizer"] == "bytes (approximation: UTF-8 bytes as tokens)"
    code, out, _ = run("info", log_with(tmp_path, GOOD3, "ok2"), "--tokenizer", "bytes")
    assert "approximation" in out and "chat template" in out


# ---- synthetic chat logs ------------------------------------------------------------------------

SMALL = dict(system_prompts=4, system_prompt_tokens=60, documents=5, document_tokens=80, document_share=0.4,
             image_share=0.2, search_share=0.2, search_tokens=30, user_tokens=20, output_tokens=15, turns_mean=3)


def test_synth_prompts_is_deterministic_and_structured(tmp_path):
    a, b, c = (write(tmp_path / f"{n}.jsonl", 120, seed, **SMALL) for n, seed in (("a", 5), ("b", 5), ("c", 6)))
    assert a.path.read_bytes() == b.path.read_bytes() != c.path.read_bytes()
    work, rows = records(120, 5, **SMALL)
    rows = list(rows)
    by_request = dict(enumerate(rows))
    for r, row in by_request.items():
        system = row["messages"][0]["content"]
        clock = f"Current time: {datetime.fromtimestamp(row['timestamp'], timezone.utc).strftime('%H:%M:%S')}."
        assert (clock in system) == system.startswith(f"You are assistant number {CLOCK_PROMPT}.")
        parent = int(work.parent[r])
        if parent >= 0:  # a later turn sends the whole history again, then the reply and a new question
            history = by_request[parent]["messages"]  # (the system message differs only by its clock)
            assert row["messages"][1:len(history)] == history[1:] and row["session_id"] == by_request[parent]["session_id"]
            assert [m["role"] for m in row["messages"][len(history):]] == ["assistant", "user"]
    assert any("<document id=" in json.dumps(row) for row in rows) and any("image_url" in json.dumps(row) for row in rows)
    assert rows[0]["timestamp"] == EPOCH_S


def test_synth_prompts_cli(tmp_path):
    code, out, _ = run("synth", tmp_path / "c.jsonl.gz", "--format", "prompts", "--requests", "30",
                       "--user-tokens", "20", "--system-prompt-tokens", "40", "--document-tokens", "50")
    assert code == 0 and "prompts, 30 requests" in out
    assert open_trace(tmp_path / "c.jsonl.gz", tokenizer="bytes").n_requests == 30


# ---- the shipped chat log and tokenizer -----------------------------------------------------------

SHIPPED_LOG = REPO / "datasets" / "synth_chat_prompts.jsonl.zst"
SHIPPED_TOKENIZER = REPO / "datasets" / "tokenizer-bpe-4k"
SHIPPED_OPTIONS = ["--requests", "600", "--seed", "3", "--system-prompts", "6", "--system-prompt-tokens", "600",
                   "--documents", "40", "--document-tokens", "1200", "--document-alpha", "1.0", "--search-tokens", "300",
                   "--turns-mean", "3", "--user-tokens", "120", "--output-tokens", "180", "--think-time-s", "30",
                   "--rate", "1"]


def test_the_shipped_files_are_what_their_commands_write(tmp_path):
    code, _, err = run("synth", tmp_path / "log.jsonl.zst", "--format", "prompts", *SHIPPED_OPTIONS)
    assert code == 0, err
    assert (tmp_path / "log.jsonl.zst").read_bytes() == SHIPPED_LOG.read_bytes()
    write_tokenizer(tmp_path / "tok")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "tok" / name).read_bytes() == (SHIPPED_TOKENIZER / name).read_bytes(), name


def test_the_shipped_chat_log_pinned(tmp_path):
    tr = open_trace(SHIPPED_LOG, tokenizer=SHIPPED_TOKENIZER)
    assert (tr.n_requests, tr.n_accesses, tr.n_unique_blocks) == (600, 63_758, 33_730)
    assert int(tr.input_len.sum()) == 1_024_792 and tr.meta["non_text_parts_skipped"] == "69"
    # the per-request clock in system prompt 0 defeats prefix caching for its sessions
    seen, hit = set(), np.zeros(tr.n_requests)
    for r in range(tr.n_requests):
        blocks = tr.blocks[tr.offsets[r]:tr.offsets[r + 1]].tolist()
        k = 0
        while k < len(blocks) and blocks[k] in seen:
            k += 1
        hit[r] = k / max(len(blocks), 1)
        seen.update(blocks)
    text = zstandard.ZstdDecompressor().decompressobj().decompress(SHIPPED_LOG.read_bytes())
    rows = [json.loads(line) for line in text.splitlines()]
    clocked = np.array(["Current time:" in row["messages"][0]["content"] for row in sorted(
        rows, key=lambda row: row["timestamp"])])
    assert clocked.sum() == 226 and hit[clocked].mean() < 0.15 and hit[~clocked].mean() > 0.6
