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
PRELOAD_REPORT_BELOW = 10_000_000  # accesses: analyze loads the report's imports beside the analyses
# A store with more accesses than this is analyzed a chunk of its accesses table at a time
# (Trace.access_chunks; 512 MiB of int32 ids); a smaller one is read whole once, which is
# quicker than one scan of the table per pass of the analyses.
ANALYZE_IN_CHUNKS_ABOVE = 1 << 27
# Extensions stripped from a trace's name to name its default database (outermost first).
_TRACE_SUFFIXES = (".gz", ".zst", ".zstd", ".jsonl", ".json", ".csv", ".parquet")


def _open(trace, trace_options: dict | None, progress=None):
    from .store import open_trace
    return open_trace(trace, **(trace_options or {}), **({"progress": progress} if progress else {}))


def _open_for_analyses(trace, trace_options: dict | None, progress=None):
    """``_open`` for the analyses: a store above ANALYZE_IN_CHUNKS_ABOVE accesses keeps its
    block ids in the file (the analyses stream them; a replay reads them whole when it
    starts), a smaller one is read whole now."""
    opened = _open(trace, {**(trace_options or {}), "chunked": True}, progress)
    if opened.n_accesses <= ANALYZE_IN_CHUNKS_ABOVE:
        opened.blocks  # noqa: B018 - read a store's ids whole now (Trace.blocks reads them on first use)
    return opened


def default_out_dir(info: dict) -> Path:
    """The default output folder of every command that writes a trace's reports:
    ``reports/<name of the original trace file>/`` (a .duckdb remembers the name), so every
    command writes the same folder for the same trace (kvctrace.outputs)."""
    from .analysis import trace_name
    return Path("reports") / trace_name(info["path"])


def _claim(out: Path | None, info: dict, force: bool) -> Path:
    """``out`` (default ``default_out_dir``) checked and claimed for the trace of ``info``."""
    from .outputs import claim_out_dir
    return claim_out_dir(out if out is not None else default_out_dir(info), info, force)


def _warn(lines) -> None:
    import warnings

    from .errors import KvctraceWarning
    for line in lines:
        warnings.warn(line, KvctraceWarning, stacklevel=3)


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
    """Facts about a trace or a kvctrace database, plus ``db``: the database read or written
    (``trace`` itself when it is one, else ``--db``), or None for a trace read into memory."""
    from .formats.source import is_duckdb_file
    db = (trace_options or {}).get("db")
    if db is None and is_duckdb_file(trace):
        db = trace
    # a store's block ids stay in the file: the facts need none of them
    opened = _open(trace, {**(trace_options or {}), "chunked": True}, progress)
    return opened.info() | {"db": str(db) if db is not None else None}


def rejects(trace: Path, trace_options: dict | None = None, limit: int = 20) -> dict:
    """The lines the ingest of ``trace`` rejected: a kvctrace database's rejects table, or a
    trace file read with --skip-bad-lines. Returns ``path``, ``rejected_lines`` (all of them)
    and ``rejects``: the first ``limit`` (0: all), each with its ``line``, ``reason``, ``raw``
    text and, when that text is not the line's exact bytes, ``raw_hex``."""
    from .errors import ConfigError
    from .formats.source import is_duckdb_file
    from .tables import read_rejects
    if limit < 0:
        raise ConfigError(f"--limit must be >= 0, got {limit}", field="--limit", hint="0 shows every rejected line")
    options = {**(trace_options or {}), "chunked": True}   # the rejects need no block ids
    if not is_duckdb_file(trace):
        options["skip_bad_lines"] = True
    opened = _open(trace, options)
    total, rows = read_rejects(opened.con, limit)
    for row in rows:
        data = row.pop("raw_bytes")
        if data != (row["raw"] or "").encode("utf-8"):
            row["raw_hex"] = data.hex()
    return {"path": str(trace), "rejected_lines": total, "rejects": rows}


# ---- analyze / report -------------------------------------------------------------------------

@dataclass(frozen=True)
class AnalysisOutput:
    """What ``analyze`` computed and wrote."""
    result: object          # kvctrace.analysis.AnalysisResult
    summary_path: Path
    report_path: Path


def _stage(progress):
    return progress or (lambda text: None)


def analyze(trace: Path, trace_options: dict | None = None, out: Path | None = None,
            force: bool = False, progress=None) -> AnalysisOutput:
    """Run every analysis and write summary.json and report.html into ``out`` (default
    ``default_out_dir``); a folder holding another trace's report is an error unless ``force``.
    Interrupted (Ctrl-C), it leaves no half-written file, nor a folder it created.
    ``progress``: optional callable told the current stage."""
    from .analysis import analyze as run_analyses
    from .outputs import removed_if_interrupted, replaced_atomically
    opened = _open_for_analyses(trace, trace_options, progress)
    with removed_if_interrupted(out if out is not None else default_out_dir(opened.info())):
        out_dir = _claim(out, opened.info(), force)
        # On a small trace the report's chart stack (altair, jinja2: ~0.4 s of imports, ~30 MB)
        # loads on the other core while the analyses run (their kernels, numpy and DuckDB release
        # the GIL): there 0.4 s is a tenth of the run. On a large one its 30 MB would sit under
        # the analyses' peak memory, so it loads after them.
        small = opened.n_accesses < PRELOAD_REPORT_BELOW
        report_loaded = preload("kvctrace.report.build") if small else (lambda: None)
        _stage(progress)("analyzing")
        result = run_analyses(opened)
        summary_path = out_dir / "summary.json"
        with replaced_atomically(summary_path) as tmp:
            tmp.write_text(result.to_json() + "\n", encoding="utf-8")
        # The command is done with the trace's database and block ids (the summary and the report
        # use only the results): closing it frees the in-memory store and 4 bytes per access before
        # the report is built, and drops the tables it never needed (Trace.tables_pending).
        result.trace.close(release_blocks=True)
        report_loaded()
        from .report import write_report
        _stage(progress)("writing the report")
        return AnalysisOutput(result, summary_path, write_report(result, out_dir))


def preload(module: str):
    """Start importing ``module`` on a background thread; returns a function that waits for
    it (an import error surfaces when the caller imports the module itself)."""
    import importlib
    import threading

    def load() -> None:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - the caller's own import reports it
            pass
    thread = threading.Thread(target=load, name=f"kvctrace-preload-{module}", daemon=True)
    thread.start()
    return thread.join


def report(trace: Path, trace_options: dict | None = None, out: Path | None = None, *,
           replay: bool = False, config: Path | None = None, preset: str | None = None,
           recommend: bool = False, engine: str = "local", ray_address: str | None = None,
           force: bool = False, calibration: Path | None = None, progress=None) -> Path:
    """Write report.html for ``trace`` (default folder ``default_out_dir``, as ``analyze``; another
    trace's folder is an error unless ``force``) and return its path. With ``replay`` (implied
    by ``config``, ``preset``, ``recommend`` or ``calibration``) it adds the replay study around
    the config; with ``recommend`` it sweeps first and centres the study on the recommended
    config; ``calibration`` (bench-index --calibrate) prices the Redis index in those replays and
    adds its measurements next to the models. ``engine`` runs the replays (``start_engine``)."""
    from .engines import check_engine
    from .outputs import removed_if_interrupted
    from .replay.cost import load_calibration
    check_engine(engine, ray_address)
    cal = load_calibration(calibration) if calibration is not None else None
    opened = _open_for_analyses(trace, trace_options, progress)
    with removed_if_interrupted(out if out is not None else default_out_dir(opened.info())):
        return _report(opened, _claim(out, opened.info(), force), replay, config, preset, recommend, engine,
                       ray_address, _stage(progress), calibration, cal)


def _report(opened, out_dir: Path, replay: bool, config, preset, recommend: bool, engine: str, ray_address,
            stage, calibration, cal) -> Path:
    from .analysis import analyze as run_analyses
    from .replay.cost import use_calibration
    from .report import write_report
    runs = rec = None
    if replay or recommend or config is not None or preset is not None or cal is not None:
        from .replay.config import gpu_memory_warnings
        from .replay.study import replay_study
        from .replay.sweep import recommend as run_recommend
        base = replay_config(config, preset)
        _warn(gpu_memory_warnings(base, opened.block_size))
        start_engine(engine, ray_address)
        with use_calibration(calibration):
            if recommend:
                stage("recommending")
                rec = run_recommend(opened, base, engine=engine)
                base = rec.config
            stage("replay study")
            runs = replay_study(opened, base, engine=engine)
    stage("analyzing")
    result = run_analyses(opened)
    stage("writing the report")
    return write_report(result, out_dir, replay=runs, recommendation=rec, calibration=cal)


# ---- replay / recommend -----------------------------------------------------------------------

def replay_config(config: Path | None = None, preset: str | None = None, policy: str | None = None,
                  capacity_blocks: int | None = None, index: str | None = None):
    """The ReplayConfig of ``config`` (a TOML file) or ``preset`` (default ``DEFAULT_PRESET``),
    with the one-tier shortcuts (``policy``, ``capacity_blocks``) and an ``index`` override."""
    from dataclasses import replace

    from .errors import ConfigError
    from .replay.config import IndexConfig, load_config, load_preset, one_tier, validate
    if capacity_blocks is not None and capacity_blocks < 1:
        raise ConfigError(f"must be at least 1 block, got {capacity_blocks}", field="--capacity-blocks",
                          hint="a one-tier replay needs room for a block; omit it for the preset's top-tier size")
    cfg = load_config(config) if config is not None else load_preset(preset or DEFAULT_PRESET)
    if policy is not None or capacity_blocks is not None:
        cfg = one_tier(cfg, policy, capacity_blocks)
    if index is not None:
        # a fresh IndexConfig: the kind's own round trips, not the preset's overrides
        cfg = validate(replace(cfg, index=IndexConfig(kind=index)))
    return cfg


def replay(trace: Path, trace_options: dict | None = None, *, config: Path | None = None,
           preset: str | None = None, policy: str | None = None, capacity_blocks: int | None = None,
           index: str | None = None, out: Path | None = None, calibration: Path | None = None,
           marginal: bool = False, progress=None):
    """Replay ``trace`` through the config (see ``replay_config``); with ``out``, also write the
    per-request results as Parquet (renamed into place once complete); ``calibration``
    (bench-index --calibrate) sets the Redis index costs. Returns the ReplayResult; with
    ``marginal``, the ReplayStudy of the config and each tier one step larger (its ``base`` is
    the ReplayResult, ``summary()`` adds the marginal value per tier)."""
    from .replay import replay as run_replay
    from .replay.config import gpu_memory_warnings
    from .replay.cost import use_calibration
    from .replay.study import marginal_study
    cfg = replay_config(config, preset, policy, capacity_blocks, index)
    from .outputs import replaced_atomically
    opened = _open(trace, trace_options, progress)
    _warn(gpu_memory_warnings(cfg, opened.block_size))
    _stage(progress)("replaying")
    with use_calibration(calibration):
        done = marginal_study(opened, cfg) if marginal else run_replay(opened, cfg)
    result = done.base if marginal else done
    if out is not None:
        with replaced_atomically(out) as tmp:
            result.to_parquet(tmp)
    return done


def _csv(value: str | None, cast, default, field: str, example=None) -> tuple:
    """A comma-separated option as a tuple (``default`` when not given)."""
    from .errors import ConfigError
    if value is None:
        return default
    try:
        return tuple(cast(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"cannot read {value!r}", field=field,
                          hint=f"a comma-separated list of {cast.__name__} values, e.g. "
                               + ",".join(str(v) for v in (example or default))) from None


def parse_grid(policies: str | None = None, admission: str | None = None, fractions: str | None = None,
               indexes: str | None = None):
    """A sweep Grid from comma-separated lists (None: the Grid default)."""
    from .replay.sweep import Grid
    d = Grid()
    return Grid(policies=_csv(policies, str, d.policies, "policies"),
                admission=_csv(admission, int, d.admission, "admission"),
                fractions=_csv(fractions, float, d.fractions, "fractions", example=(0.5, 1.0)),
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


def budget_warnings(base, budget_bytes: dict, block_size: int) -> list[str]:
    """``gpu_memory_warnings`` of ``base`` with its tiers sized by the ``--budget`` values."""
    from dataclasses import replace

    from .replay.config import gpu_memory_warnings
    tiers = tuple(replace(t, capacity_bytes=budget_bytes[t.name], capacity_blocks=None) if t.name in budget_bytes
                  else t for t in base.tiers)
    return gpu_memory_warnings(replace(base, tiers=tiers), block_size)


def recommend(trace: Path, trace_options: dict | None = None, *, config: Path | None = None,
              preset: str | None = None, budgets: list[str] | None = None, objective: str = "cost",
              policies: str | None = None, indexes: str | None = None, admission: str | None = None,
              fractions: str | None = None, tie_tolerance: float = 0.005, max_memory: str | None = None,
              workers: str = "threads", out: Path = Path("kvctrace-recommended.toml"),
              calibration: Path | None = None, engine: str = "local", ray_address: str | None = None,
              progress=None):
    """Sweep (lists as comma-separated strings; ``fractions`` switches from the analysis-guided
    capacities to the grid of fractions; ``budgets`` as TIER=SIZE, ``max_memory`` a size such
    as "2TB"), recommend a config and write it as TOML to ``out`` with the reasons as its
    header comment; ``engine`` runs the replays (``start_engine``); ``progress(text)`` hears
    how far the replays are. Returns (Recommendation, written path)."""
    from .engines import check_engine
    from .replay.config import parse_bytes, save_config
    from .replay.sweep import recommend as run_recommend
    check_engine(engine, ray_address)
    grid = parse_grid(policies, admission, fractions, indexes).validate()
    base = replay_config(config, preset)
    budget_bytes = parse_budgets(budgets)
    limit = parse_bytes(max_memory, "--max-memory") if max_memory is not None else None
    from .replay.cost import use_calibration
    opened = _open(trace, trace_options, progress)
    _warn(budget_warnings(base, budget_bytes, opened.block_size))
    start_engine(engine, ray_address)
    # the sweep reads the trace's arrays only: closing its database frees the store's memory
    # (~800 MB on 31M accesses) before the replays, the run's memory peak
    opened.con.close()
    with use_calibration(calibration):  # the Redis index costs measured by bench-index --calibrate
        rec = run_recommend(opened, base, budgets=budget_bytes, grid=grid, objective=objective,
                            tie_tolerance=tie_tolerance, workers=workers, max_memory_bytes=limit,
                            engine=engine, progress=progress)
    header = (f"Recommended by kvctrace recommend for {Path(trace).name} (objective {objective}, "
              f"{rec.sweep.table.height} configs)\n" + "\n".join(rec.reasons))
    from .outputs import replaced_atomically
    with replaced_atomically(out) as tmp:
        save_config(rec.config, tmp, header=header)
    return rec, Path(out)


# ---- synth ------------------------------------------------------------------------------------

def synth(out: Path, fmt: str = "mooncake", requests: int = 1000, seed: int = 0,
          block_size: int | None = None, **structure):
    """Write a synthetic trace to ``out`` (``structure``: the fields of ``kvctrace.synth.SynthConfig``)
    and return what was written (``kvctrace.synth.write``'s summary); ``fmt`` prompts writes a
    chat log (``kvctrace.synth_prompts.write``; ``block_size`` does not apply)."""
    if fmt == "prompts":
        from .synth_prompts import write as write_chat_log
        return write_chat_log(out, requests, seed, **structure)
    from .synth import write
    return write(out, fmt, requests, seed, block_size, **structure)


# ---- bench-index (live Redis) -----------------------------------------------------------------

def bench_index(trace: Path, trace_options: dict | None = None, *, redis_url: str, designs=None,
                max_requests: int | None = None, clients: int = 1, key_prefix: str | None = None,
                calibrate: Path | None = None, progress=None):
    """Replay the trace's metadata operations against the Redis server at ``redis_url``
    (kvctrace.replay.index_bench); with ``calibrate``, fit the Redis index cost model and
    write it there as TOML. Returns (IndexBenchResult, measured-vs-modelled rows,
    (RedisCalibration, path) or None); the rows compare with the fitted model when calibrating."""
    from .replay.cost import calibrated_models
    from .replay.index_bench import bench_index as run_bench
    from .replay.index_calibration import model_comparison, write_calibration
    result = run_bench(_open(trace, trace_options, progress), redis_url, designs, max_requests=max_requests,
                       clients=clients, key_prefix=key_prefix, progress=progress)
    fitted = write_calibration(result, calibrate) if calibrate is not None else None
    return result, model_comparison(result, calibrated_models(fitted[0]) if fitted else None), fitted


# ---- engines, export, partitioned analysis ----------------------------------------------------

def start_engine(engine: str = "local", ray_address: str | None = None) -> None:
    """Check ``engine`` (``local`` or ``ray``; a missing 'ray' extra is a one-line error) and,
    for ``ray``, start a local Ray or connect to the cluster at ``ray_address``."""
    from .engines import start
    start(engine, ray_address)


def export(trace: Path, trace_options: dict | None = None, *, parquet: Path, partitions: int,
           seed: int = 0, progress=None) -> dict:
    """Write the trace's accesses hash-partitioned by block into the folder ``parquet``
    (``part=K/*.parquet``, requests.parquet, kvctrace_export.json; written under a temporary
    name and renamed once complete). Returns the manifest."""
    from .analysis.partitioned import export_partitions
    opened = _open(trace, trace_options, progress)
    _stage(progress)("exporting")
    return export_partitions(opened, parquet, partitions, seed) | {"path": str(parquet)}


def is_export(path: Path) -> bool:
    """True for a folder written by ``export`` (read by the partitioned analysis), as opposed to
    a trace file or a folder of conversations."""
    if not Path(path).is_dir():  # an export is a folder: a trace file needs no look (nor its imports)
        return False
    from .analysis.partitioned import is_export as export_folder
    return export_folder(path)


def analyze_partitioned(trace: Path, trace_options: dict | None = None, out: Path | None = None, *,
                        partitions: int | None = None, seed: int | None = None, engine: str = "local",
                        ray_address: str | None = None, force: bool = False):
    """The partitioned reuse analysis of a trace (split into ``partitions`` in memory) or of an
    export folder (each partition task reads its own files), on ``engine``; writes
    partitioned.json into ``out`` (default ``default_out_dir`` of the original trace; another
    trace's folder is an error unless ``force``). Returns (result, path)."""
    from .analysis.partitioned import analyze_partitioned as run, is_export, read_manifest
    from .engines import check_engine
    from .errors import KvctraceError
    check_engine(engine, ray_address)
    if is_export(trace):
        defaults = {"format": (None,), "block_size": (None,), "partial_block": (None, "include"), "coarsen": (1,),
                    "skip_bad_lines": (False,), "db": (None,), "tokenizer": (None,), "chat_template": (None,),
                    "session_start": (None,), "seed": (seed or 0,)}
        if any(v not in defaults.get(k, ()) for k, v in (trace_options or {}).items()):
            raise KvctraceError("trace options apply when a trace file is read, not to an export folder",
                                path=str(trace), hint="drop them, or export again from the trace with them")
        source = trace
        facts = {"path": read_manifest(trace)["source"], "sha256": None}
    else:
        source = _open(trace, trace_options)
        facts = source.info()
    out_dir = _claim(out, facts, force)
    result = run(source, partitions, seed=seed, engine=engine, ray_address=ray_address)
    path = out_dir / "partitioned.json"
    path.write_text(result.to_json() + "\n", encoding="utf-8")
    return result, path
