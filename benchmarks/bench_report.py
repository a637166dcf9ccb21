"""Report generation time and size on the Mooncake conversation trace, against a baseline.

Prints:
* the analyses' time, then ``write_report`` with the Vega bundle cache cold (first use on a
  machine) and warm, i.e. what the report adds after the analyses (target: <= 2 s);
* the baseline: the same charts saved the way Altair does it by default for offline use,
  ``chart.save(path, inline=True)``, one self-contained HTML file per chart (the JavaScript is
  inlined into every file) — total time and bytes, and kvctrace's ratios against it;
* ``kvctrace analyze`` end to end in a fresh process, first run (ingest into a new .duckdb)
  and second run (re-uses the .duckdb), and ``kvctrace report DB``.

Run: /work/venv/bin/python benchmarks/bench_report.py [TRACE]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # run from a checkout without installing
DEFAULT_TRACE = REPO.parent / "shared" / "datasets" / "mooncake" / "conversation_trace.jsonl"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def cli(*args, cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from kvctrace.cli import app; app()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"  kvctrace {' '.join(args)} failed:\n{proc.stderr.strip()[-2000:]}")
        return float("nan")
    return elapsed


def main() -> None:
    trace_path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_TRACE
    if not trace_path.exists():
        sys.exit(f"trace not found: {trace_path}")
    from kvctrace.analysis import analyze
    from kvctrace.report import assets, build

    work = Path(tempfile.mkdtemp(prefix="kvctrace-bench-report-"))
    env = dict(os.environ, KVCTRACE_CACHE_DIR=str(work / "cache"), PYTHONPATH=str(REPO))
    os.environ["KVCTRACE_CACHE_DIR"] = env["KVCTRACE_CACHE_DIR"]
    print(f"trace: {trace_path}")

    from kvctrace import open_trace
    trace, t_open = timed(open_trace, trace_path)
    print(f"open/ingest: {t_open:.2f} s ({trace.n_requests:,} requests, {trace.n_accesses:,} accesses)")
    analyze(trace)   # warm the Numba caches so the analyses below are the steady state
    result, t_analyze = timed(analyze, trace)
    print(f"analyses (warm): {t_analyze:.2f} s")

    assets.vega_bundle.cache_clear()
    path, t_cold = timed(build.write_report, result, work / "cold")
    assets.vega_bundle.cache_clear()
    path, t_warm_disk = timed(build.write_report, result, work / "warm")
    path, t_warm = timed(build.write_report, result, work / "warm")
    size = path.stat().st_size
    n_charts = path.read_text(encoding="utf-8").count('class="vega-chart"')
    print(f"write_report: {t_cold:.2f} s with a cold bundle cache (first use on a machine), "
          f"{t_warm_disk:.2f} s with the bundle on disk, {t_warm:.2f} s in the same process")
    print(f"report.html: {size / 1e6:.2f} MB, {n_charts} charts, the JavaScript inlined once")

    # Baseline: Altair's own offline export, one inline-JS HTML file per chart.
    sections = build.build_sections(result)
    import altair as alt
    figures = [f for s in sections for f in s.figures]
    base_dir = work / "baseline"
    base_dir.mkdir()
    start = time.perf_counter()
    for fig in figures:
        (alt.LayerChart if "layer" in fig.spec else alt.Chart).from_dict(fig.spec, validate=False).save(str(base_dir / f"{fig.id}.html"), inline=True)
    t_base = time.perf_counter() - start
    base_size = sum(p.stat().st_size for p in base_dir.iterdir())
    print(f"baseline (altair save inline=True, per chart): {t_base:.2f} s, {len(figures)} files, "
          f"{base_size / 1e6:.1f} MB")
    print(f"ratios: time baseline/kvctrace (bundle on disk) = {t_base / t_warm_disk:.1f}x, "
          f"bytes baseline/kvctrace = {base_size / size:.1f}x")

    print("kvctrace analyze, end to end (fresh process each):")
    db = work / "trace.duckdb"
    first = cli("analyze", str(trace_path), "--db", str(db), "--out", str(work / "cli1"), cwd=work, env=env)
    second = cli("analyze", str(trace_path), "--db", str(db), "--out", str(work / "cli2"), cwd=work, env=env)
    rerender = cli("report", str(db), "--out", str(work / "cli3"), cwd=work, env=env)
    print(f"  first run (ingest into a new .duckdb, cold bundle cache): {first:.2f} s")
    print(f"  second run (re-uses the .duckdb and the bundle cache): {second:.2f} s")
    print(f"  kvctrace report DB (re-render without re-ingesting): {rerender:.2f} s")
    for name in ("cli1", "cli2", "cli3"):
        if not (work / name / "report.html").exists():
            print(f"  warning: {work / name / 'report.html'} was not written")
    print(f"(scratch files in {work})")


if __name__ == "__main__":
    main()
