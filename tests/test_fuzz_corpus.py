"""The regression corpus: tests/corpus/ holds small files, each a case that once failed (a
traceback, a silently accepted or changed value, a message without its file or line), and
tests/corpus/cases.json what each must give now. Add a file and its case when a fuzz test
(or a user) finds a new one."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kvctrace import KvctraceError, open_trace
from kvctrace.analysis import analyze

from .fuzz_oracle import strict_json

CORPUS = Path(__file__).parent / "corpus"
CASES = json.loads((CORPUS / "cases.json").read_text())


def test_every_corpus_file_has_a_case():
    named = {case["file"] for case in CASES}
    assert named == {p.name for p in CORPUS.iterdir() if p.name != "cases.json"}


@pytest.mark.parametrize("case", CASES, ids=[f"{c['file']}-{c['expect']}" for c in CASES])
def test_corpus_case(case, tmp_path):
    path = CORPUS / case["file"]
    options = case.get("options", {})
    if case["expect"] == "error":
        with pytest.raises(KvctraceError) as info:
            open_trace(path, **options)
        err = info.value
        message = str(err)
        assert "\n" not in message and str(path) in message and case["words"] in message, message
        assert (err.line, err.field) == (case["line"], case["field"]), message
        return
    tr = open_trace(path, **options)
    assert tr.n_requests == case["requests"]
    assert tr.rejects()["line_no"].to_list() == case.get("rejects", [])
    if "ts" in case:
        assert tr.ts.tolist() == case["ts"]
    result = analyze(tr)
    strict_json(result.to_json())
    strict_json(json.dumps(tr.info(), allow_nan=False))
    from kvctrace.report import write_report
    html = write_report(result, tmp_path).read_text()
    assert re.search(r"<html", html)


def test_rejected_line_bytes_are_kept():
    tr = open_trace(CORPUS / "invalid_utf8_line.jsonl", skip_bad_lines=True)
    raw = (CORPUS / "invalid_utf8_line.jsonl").read_bytes().split(b"\n")[1]
    assert tr.rejects()["raw_bytes"].to_list() == [raw]
