"""The report's divergence section (kvctrace/report/divergence_section.py): headline first,
top sites with escaped snippets, predicted vs reported cache hits, and valid charts."""
from __future__ import annotations

import json

import altair as alt
import pytest

from kvctrace import open_trace
from kvctrace.analysis import analyze
from kvctrace.report.build import render_html
from kvctrace.report.divergence_section import divergence_depth_chart, divergence_section

from .test_divergence import text_store, timestamped_chats


@pytest.fixture
def chat_result(tmp_path):
    chats = timestamped_chats(60)
    chats[7][1] = ("user", "<script>alert(1)</script> What is a KV cache?")
    cached = [i % 50 for i in range(60)]
    return analyze(text_store(tmp_path, chats, cached=cached))


def test_section_leads_with_the_headline(chat_result):
    section = divergence_section(chat_result)
    d = chat_result.divergence
    assert section.id == "divergence" and section.unavailable is None
    assert section.intro == d.headline and "system message" in section.intro
    facts = {label: value for label, value, _ in section.facts}
    assert facts["level"] == "token-exact" and facts["requests compared"] == "59"
    assert facts["requests reporting cached tokens"] == "60"
    sites = section.tables[0]
    assert sites.title == "Top divergence sites" and len(sites.rows) == len(d.top_sites)
    assert sites.rows[0][0] == "system #0" and sites.rows[0][7] == "in-message value"
    assert any(t.title == "Largest predicted vs reported gaps" for t in section.tables)
    assert any("approximation" in note for note in section.notes)  # bytes tokenizer


def test_charts_are_valid_vega_lite(chat_result):
    section = divergence_section(chat_result)
    assert [f.title for f in section.figures] == ["Divergence depth", "Divergence by message role"]
    alt.Chart.from_dict(divergence_depth_chart(chat_result.divergence.requests).to_dict())  # validates


def test_rendered_html_escapes_trace_text(chat_result):
    from markupsafe import escape
    section = divergence_section(chat_result)
    html = render_html([section], title="t", summary=chat_result.summary())
    assert "<script>alert(1)</script>" not in html
    assert str(escape(section.intro)) in html
    for cell in section.tables[0].rows[0][8:]:
        assert str(escape(cell)) in html
    json.dumps(chat_result.summary()["divergence"], allow_nan=False)


def test_hashed_trace_section_has_no_text_columns(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"timestamp": i, "input_length": 1024, "output_length": 1,
                                        "hash_ids": [1, 10 + i]}) + "\n" for i in range(5)))
    section = divergence_section(analyze(open_trace(path)))
    assert section.tables[0].columns[-1] == "matches" and section.facts[0][1].startswith("block")


def test_lengths_only_trace_section_is_unavailable(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n")
    section = divergence_section(analyze(open_trace(path)))
    assert section.unavailable.startswith("Not measured") and "block ids" in section.unavailable
