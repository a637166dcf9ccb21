"""Shared helpers of the report tests: small generated traces, the conversation trace, and a
headless Chromium that opens a report with the network blocked."""
from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from kvctrace import Trace

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def generated_trace(n_requests: int = 300, seed: int = 7, types=None, sessions=None, path="<generated>") -> Trace:
    """Requests that share one of a few system prompts, continue their session's history and
    add fresh blocks: enough structure for every section to have something to draw."""
    rng = np.random.default_rng(seed)
    prompts = [list(range(1_000_000 * (p + 1), 1_000_000 * (p + 1) + rng.integers(2, 6))) for p in range(4)]
    history: dict = {}
    next_id = 1
    rows, offsets, ts = [], [0], []
    n_sessions = max(1, n_requests // 5)
    sess = rng.integers(0, n_sessions, n_requests)
    t = 0.0
    for r in range(n_requests):
        s = int(sess[r])
        if s not in history:
            history[s] = list(prompts[s % len(prompts)])
        fresh = list(range(next_id, next_id + int(rng.integers(1, 5))))
        next_id += len(fresh)
        blocks = history[s] + fresh
        history[s] = blocks
        if rng.random() < 0.2:            # an occasional shuffled request: random access
            blocks = list(rng.permutation(blocks))
        rows.extend(blocks)
        offsets.append(len(rows))
        t += float(rng.exponential(0.5))
        ts.append(t)
    offsets = np.asarray(offsets)
    n_blocks = np.diff(offsets)
    kwargs = {}
    if types is not None:
        kwargs["type"] = [types[i % len(types)] for i in range(n_requests)]
    if sessions is not None:
        kwargs["session_id"] = [sessions[int(s) % len(sessions)] for s in sess]
    return Trace.from_arrays(offsets, np.asarray(rows, dtype=np.int64), ts=np.asarray(ts),
                             input_len=n_blocks * 16 - rng.integers(0, 8, n_requests),
                             output_len=rng.integers(1, 400, n_requests), block_size=16, path=path,
                             format="generated", **kwargs)


def conversation_trace_path() -> Path:
    path = DATASETS / "mooncake" / "conversation_trace.jsonl"
    if not path.exists():
        pytest.skip("shared datasets not available")
    return path


def open_conversation(db=None) -> Trace:
    """The Mooncake conversation trace through open_trace."""
    from kvctrace import open_trace
    return open_trace(conversation_trace_path(), db=db)


def chromium_or_skip() -> str:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (Debian package 'chromium'; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api")
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@dataclass
class BrowserVisit:
    console: list = field(default_factory=list)     # (type, text)
    page_errors: list = field(default_factory=list)
    blocked: list = field(default_factory=list)     # URLs that tried to leave the file
    dialogs: list = field(default_factory=list)
    charts: list = field(default_factory=list)      # per container: {id, rendered, svg, canvas}
    globals: dict = field(default_factory=dict)
    interaction: object = None                      # what ``interact(page)`` returned


def visit_report(html: Path, screenshot: Path | None = None, probe_globals=(), interact=None) -> BrowserVisit:
    """Open ``html`` in headless Chromium with every non-file request aborted; wait until the
    report says every chart is drawn; collect console messages, errors and chart contents.
    ``interact(page)`` runs after rendering (e.g. hovering marks); its result is kept."""
    from playwright.sync_api import sync_playwright
    exe = chromium_or_skip()
    visit = BrowserVisit()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.on("console", lambda m: visit.console.append((m.type, m.text)))
            page.on("pageerror", lambda e: visit.page_errors.append(str(e)))

            def on_dialog(dialog):
                visit.dialogs.append(dialog.message)
                dialog.dismiss()
            page.on("dialog", on_dialog)

            def route(r):
                if r.request.url.startswith("file:"):
                    r.continue_()
                else:
                    visit.blocked.append(r.request.url)
                    r.abort()
            context.route("**/*", route)
            page.goto(html.resolve().as_uri())
            page.wait_for_function("window.kvctraceRendered !== undefined", timeout=30_000)
            page.evaluate("window.kvctraceRendered")
            visit.charts = page.evaluate("""() => Array.from(document.querySelectorAll('div.vega-chart')).map(el => ({
                id: el.id, rendered: el.getAttribute('data-rendered'),
                svg: el.querySelectorAll('svg.marks').length,
                canvas: el.querySelectorAll('canvas.marks').length,
                marks: el.querySelectorAll('svg.marks .mark-symbol path, svg.marks .mark-rect path, svg.marks .mark-line path, svg.marks .mark-area path').length}))""")
            if interact is not None:
                visit.interaction = interact(page)
            for name in probe_globals:
                visit.globals[name] = page.evaluate(f"typeof window[{json.dumps(name)}] === 'undefined' ? null : String(window[{json.dumps(name)}])")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return visit


def replay_runs(trace, policies=("lru", "s3fifo"), scales=(0.05, 0.2, 0.8),
                index_kinds=("redis-get", "sherman", "chime")) -> list:
    """Replays of ``trace`` for the report's replay section: the 8B preset's three tiers sized
    as fractions (``scales[1]``) of the trace's distinct blocks, per policy, then one tier at a
    time at each other scale (the other tiers kept), plus one replay per index kind at the
    base sizes."""
    from kvctrace.replay import load_preset, replay
    from kvctrace.replay.config import validate
    base = load_preset("h100-llama3-8b")
    u = max(int(trace.n_unique_blocks), 10)
    mid = scales[1]

    def config(policy, tier_scales, kind=None):
        tiers = tuple(dataclasses.replace(t, policy=policy, capacity_blocks=max(1, int(u * s * f)), capacity_bytes=None)
                      for t, f, s in zip(base.tiers, (0.1, 0.3, 1.0), tier_scales))
        index = dataclasses.replace(base.index, kind=kind) if kind else base.index
        name = f"{policy}-{'-'.join(f'{s:g}' for s in tier_scales)}-{kind or base.index.kind}"
        return validate(dataclasses.replace(base, tiers=tiers, index=index, name=name))
    T = len(base.tiers)
    runs = []
    for p in policies:
        runs.append(replay(trace, config(p, [mid] * T)))
        runs += [replay(trace, config(p, [s if j == k else mid for j in range(T)]))
                 for k in range(T) for s in scales if s != mid]
    runs += [replay(trace, config(policies[0], [mid] * T, k)) for k in index_kinds]
    return runs
