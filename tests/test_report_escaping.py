"""Trace fields are untrusted text: request types, session ids and the trace path that contain
HTML and script tags must reach the report escaped, and no script from them may run."""
from __future__ import annotations

import json
import re

from kvctrace.analysis import analyze
from kvctrace.report.build import write_report

from .report_support import chromium_or_skip, generated_trace, visit_report

EVIL_TYPES = ["<script>window.__pwned_type=1</script>", "chat</td></tr></table><b>bold</b>",
              "<img src=x onerror=\"window.__pwned_img=1\">"]
EVIL_SESSIONS = ["</script><script>window.__pwned_session=1</script>", "s&amp;<i>x</i>", "plain"]
EVIL_PATH = "<svg onload=window.__pwned_path=1>.jsonl"


def _report(tmp_path):
    trace = generated_trace(200, types=EVIL_TYPES, sessions=EVIL_SESSIONS, path=EVIL_PATH)
    return write_report(analyze(trace), tmp_path / "out")


def test_untrusted_strings_are_escaped(tmp_path):
    html = _report(tmp_path).read_text(encoding="utf-8")
    for raw in EVIL_TYPES + EVIL_SESSIONS[:2] + [EVIL_PATH]:
        assert raw not in html, f"unescaped trace text in the report: {raw!r}"
    # They are still shown, as text: in tables (HTML-escaped) ...
    assert "&lt;script&gt;window.__pwned_type=1&lt;/script&gt;" in html
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned_session=1&lt;/script&gt;" in html
    assert "s&amp;amp;&lt;i&gt;x&lt;/i&gt;" in html
    assert "&lt;svg onload=window.__pwned_path=1&gt;.jsonl" in html
    # ... and in chart data, where < > & are JSON \u escapes inside the spec's script element.
    assert "\\u003cscript\\u003ewindow.__pwned_type=1\\u003c/script\\u003e" in html
    # Only the page's own script elements exist: the bundle, the renderer, and JSON data.
    openings = re.findall(r"<script[^>]*>", html, flags=re.IGNORECASE)
    assert all(tag in ("<script>",) or 'type="application/json"' in tag for tag in openings), openings
    assert len([t for t in openings if t == "<script>"]) == 2


def test_escaped_specs_parse_back_to_the_original_strings(tmp_path):
    html = _report(tmp_path).read_text(encoding="utf-8")
    specs = re.findall(r'<script type="application/json" id="spec-[^"]+">(.*?)</script>', html, flags=re.DOTALL)
    assert specs
    seen = set()
    for text in specs:
        for rows in json.loads(text).get("datasets", {}).values():
            for row in rows:
                seen.update(v for v in row.values() if isinstance(v, str))
    assert EVIL_TYPES[0] in seen and EVIL_TYPES[2] in seen


def _hover_type_bars(page):
    """Hover every bar of the request-types chart; return each tooltip's text and how many
    elements (tags) the tooltip contained."""
    chart = page.locator("div.vega-chart").filter(has=page.locator("text=Request types")).first
    seen = []
    for bar in chart.locator(".mark-rect path").all():
        bar.hover()
        page.wait_for_timeout(50)
        seen.append(page.evaluate("""() => { const t = document.getElementById('vg-tooltip-element');
            return t ? {text: t.textContent, tags: Array.from(t.querySelectorAll('img, script, b, svg')).length} : null; }"""))
    return seen


def test_no_script_from_trace_text_runs_in_the_browser(tmp_path):
    chromium_or_skip()
    path = _report(tmp_path)
    probes = ["__pwned_type", "__pwned_img", "__pwned_session", "__pwned_path"]
    visit = visit_report(path, screenshot=tmp_path / "escaped.png", probe_globals=probes, interact=_hover_type_bars)
    assert visit.globals == {name: None for name in probes}
    tooltips = [t for t in visit.interaction if t]
    assert len(tooltips) == len(EVIL_TYPES)             # the tooltips showed up ...
    shown = " ".join(t["text"] for t in tooltips)
    assert EVIL_TYPES[0] in shown and EVIL_TYPES[2] in shown   # ... with the type names as text
    assert all(t["tags"] == 0 for t in tooltips)         # ... and no markup from them
    assert visit.dialogs == [] and visit.page_errors == [] and visit.blocked == []
    assert all(c["rendered"] == "ok" for c in visit.charts)
