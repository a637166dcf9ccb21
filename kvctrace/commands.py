"""What each ``kvctrace`` command does, as library functions.

The CLI (cli.py) only turns its options into these arguments and renders what they return, so
every command can be run and tested from Python. ``trace_options`` is the keyword arguments of
``kvctrace.open_trace`` (format, block_size, partial_block, coarsen, skip_bad_lines, db, and for
text traces tokenizer and chat_template).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_PRESET = "h100-llama3-8b"
# Extensions stripped from a trace's name to name its default database (outermost first).
_TRACE_SUFFIXES = (".gz", ".zst", ".zstd", ".jsonl", ".json", ".csv", ".parquet")


def _open(trace, trace_options: dict | None, progress=None):
    from . import open_trace
    return open_trace(trace, **(trace_options or {}), **({"progress": progress} if progress else {}))


def _default_out(trace_path) -> Path:
    from .analysis import trace_name
    return Path("reports") / trace_name(trace_path)


# ---- ingest / info ----------------------------------------------------------------------------

def default_db(trace: Path) -> Path:
    """ingest's default database: <trace name without extensions>.duckdb in the current folder."""
    name = Path(trace).name
    for suffix in _TRACE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return Path(f"{name or 'trace'}.duckdb")


def ingest(trace: Path, trace_options: dict | None = None, progress=None) -> dict:
    """Ingest ``trace`` into a DuckDB file (``trace_options['db']``, default ``default_db``;
    a kvctrace database is opened in place). Returns the trace facts plus ``db``."""
    from .formats.source import is_duckdb_file
    options = dict(trace_options or {})
    if options.get("db") is None and not is_duckdb_file(trace):
        options["db"] = default_db(trace)
    db = options.get("db")
    facts = _open(trace, options, progress).info()
    return facts | {"db": str(db if db is not None else trace)}


def info(trace: Path, trace_options: dict | None = None, progress=None) -> dict:
    """Facts about a trace or a kvctrace database, plus ``db`` (the database given, or None)."""
    db = (trace_options or {}).get("db")
    return _open(trace, trace_options, progress).info() | {"db": str(db) if db is not None else None}


# ---- analyze / report -------------------------------------------------------------------------

@dataclass(frozen=True)
class AnalysisOutput:
    """What ``analyze`` computed and wrote."""
    result: object          # kvctrace.analysis.AnalysisResult
    summary_path: Path
    report_path: Path


def analyze(trace: Path, trace_options: dict | None = None, out: Path | None = None) -> AnalysisOutput:
    """Run every analysis and write summary.json and report.html into ``out``
    (default ``reports/<trace name>/``)."""
    from .analysis import analyze as run_analyses, write_summary
    result = run_analyses(_open(trace, trace_options))
    out_dir = out if out is not None else _default_out(trace)
    summary_path = write_summary(result, out_dir)
    # The command is done with the trace's database (the summary and the report use only the
    # results): closing it frees the in-memory store (~60 MB on 5.6M accesses) before the
    # report is built, which is the run's last memory peak. result.trace.sql is closed after.
    result.trace.con.close()
    # imported only now: the report's chart stack (altair, jinja2) is ~30 MB resident, which
    # would otherwise sit under the ingest's and the analyses' peak memory
    from .report import write_report
    return AnalysisOutput(result, summary_path, write_report(result, out_dir))


def report(trace: Path, trace_options: dict | None = None, out: Path | None = None, *,
           replay: bool = False, config: Path | None = None, preset: str | None = None,
           recommend: bool = False) -> Path:
    """Write report.html for ``trace`` (default folder ``reports/<trace name>/``) and return its
    path. With ``replay`` (implied by ``config``, ``preset`` or ``recommend``) it adds the replay
    study around the config; with ``recommend`` it sweeps first and centres the study on the
    recommended config."""
    from .analysis import analyze as run_analyses
    from .report import write_report
    opened = _open(trace, trace_options)
    out_dir = out if out is not None else _default_out(opened.path)
    runs = rec = None
    if replay or recommend or config is not None or preset is not None:
        from .report.study import replay_study
        from .replay.sweep import recommend as run_recommend
        base = replay_config(config, preset)
        if recommend:
            rec = run_recommend(opened, base)
            base = rec.config
        runs = replay_study(opened, base)
    return write_report(run_analyses(opened), out_dir, replay=runs, recommendation=rec)


# ---- replay / recommend -----------------------------------------------------------------------

def replay_config(config: Path | None = None, preset: str | None = None, policy: str | None = None,
                  capacity_blocks: int | None = None, index: str | None = None):
    """The ReplayConfig of ``config`` (a TOML file) or ``preset`` (default ``DEFAULT_PRESET``),
    with the one-tier shortcuts (``policy``, ``capacity_blocks``) and an ``index`` override."""
    from dataclasses import replace

    from .replay.config import IndexConfig, load_config, load_preset, one_tier, validate
    cfg = load_config(config) if config is not None else load_preset(preset or DEFAULT_PRESET)
    if policy is not None or capacity_blocks is not None:
        cfg = one_tier(cfg, policy, capacity_blocks)
    if index is not None:
        # a fresh IndexConfig: the kind's own round trips, not the preset's overrides
        cfg = validate(replace(cfg, index=IndexConfig(kind=index)))
    return cfg


def replay(trace: Path, trace_options: dict | None = None, *, config: Path | None = None,
           preset: str | None = None, policy: str | None = None, capacity_blocks: int | None = None,
           index: str | None = None, out: Path | None = None):
    """Replay ``trace`` through the config (see ``replay_config``); with ``out``, also write the
    per-request results as Parquet. Returns the ReplayResult."""
    from .replay import replay as run_replay
    cfg = replay_config(config, preset, policy, capacity_blocks, index)
    result = run_replay(_open(trace, trace_options), cfg)
    if out is not None:
        result.to_parquet(out)
    return result


def _csv(value: str | None, cast, default, field: str) -> tuple:
    """A comma-separated option as a tuple (``default`` when not given)."""
    from .errors import ConfigError
    if value is None:
        return default
    try:
        return tuple(cast(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"cannot read {value!r}", field=field,
                          hint=f"a comma-separated list of {cast.__name__} values, e.g. "
                               + ",".join(str(v) for v in default)) from None


def parse_grid(policies: str | None = None, admission: str | None = None, fractions: str | None = None,
               indexes: str | None = None):
    """A sweep Grid from comma-separated lists (None: the Grid default)."""
    from .replay.sweep import Grid
    d = Grid()
    return Grid(policies=_csv(policies, str, d.policies, "policies"),
                admission=_csv(admission, int, d.admission, "admission"),
                fractions=_csv(fractions, float, d.fractions, "fractions"),
                indexes=_csv(indexes, str, d.indexes, "indexes"))


def parse_budgets(items: list[str] | None) -> dict:
    """``["hbm=48GB", ...]`` -> {tier name: bytes}."""
    from .errors import ConfigError
    from .replay.config import parse_bytes
    out = {}
    for item in items or []:
        name, sep, size = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"cannot read budget {item!r}", field="--budget", hint="use TIER=SIZE, e.g. hbm=48GB")
        out[name.strip()] = parse_bytes(size, "--budget")
    return out


def recommend(trace: Path, trace_options: dict | None = None, *, config: Path | None = None,
              preset: str | None = None, budgets: list[str] | None = None, objective: str = "p99-ttft",
              policies: str | None = None, indexes: str | None = None, admission: str | None = None,
              fractions: str | None = None, tolerance: float = 0.01, max_memory: str | None = None,
              workers: str = "threads", out: Path = Path("kvctrace-recommended.toml")):
    """Sweep the grid (lists as comma-separated strings, ``budgets`` as TIER=SIZE, ``max_memory``
    a size such as "2TB"), recommend a config and write it as TOML to ``out`` with the reasons
    as its header comment. Returns (Recommendation, written path)."""
    from .replay.config import parse_bytes, save_config
    from .replay.sweep import recommend as run_recommend
    grid = parse_grid(policies, admission, fractions, indexes)
    base = replay_config(config, preset)
    budget_bytes = parse_budgets(budgets)
    limit = parse_bytes(max_memory, "--max-memory") if max_memory is not None else None
    rec = run_recommend(_open(trace, trace_options), base, budgets=budget_bytes, grid=grid,
                        objective=objective, tolerance=tolerance, workers=workers, max_memory_bytes=limit)
    header = (f"Recommended by kvctrace recommend for {Path(trace).name} (objective {objective}, "
              f"{rec.sweep.table.height} configs)\n" + "\n".join(rec.reasons))
    return rec, save_config(rec.config, out, header=header)
