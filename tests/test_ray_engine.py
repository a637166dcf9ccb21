"""The Ray engine (kvctrace/engines, replay/distributed.py) on a real local Ray shared by the
whole session (tests/ray_session.py): sweeps and replay studies identical to the local engine,
field by field and bit for bit; results in input order; a dead worker retried by Ray; compiled
kernels loaded from the Numba cache in workers; the one-line error without the extra."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from kvctrace import Trace
from kvctrace import engines
from kvctrace.cli import app
from kvctrace.errors import UnknownNameError
from kvctrace.replay import load_preset
from kvctrace.replay.sweep import Grid, _run_grid, sweep
from kvctrace.replay.study import replay_study

from .test_replay_golden import CONVERSATION, load_mooncake, needs_data
from .test_replay_recommend import _base as _small_base, small_trace  # noqa: F401  (a fixture)

MISSING_EXTRA = "error: --engine ray needs the 'ray' extra (hint: pip install 'kvctrace[ray]')"
GRID = Grid(policies=("lru", "lfu", "s3fifo"), admission=(1, 2), fractions=(0.5, 1.0))


def assert_same(a, b, where="result"):
    """Every field of two results equal: frames exactly (values and dtypes), arrays bit for
    bit, dataclasses field by field."""
    if isinstance(a, pl.DataFrame):
        assert a.schema == b.schema and a.equals(b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    else:
        assert a == b, where


def test_sweep_ray_equals_local_bit_for_bit(ray_session, small_trace):
    base = _small_base()
    local = sweep(small_trace, base, grid=GRID)
    distributed = sweep(small_trace, base, grid=GRID, engine="ray")
    assert local.table.height == 3 * 2 * 2 ** 4 * 5
    assert_same(local, distributed, "sweep")


def test_sweep_kernel_outputs_equal_per_config(ray_session, small_trace):
    """The raw hit counts of every config, every array, straight from the grid runner."""
    offsets, blocks = small_trace.offsets, small_trace.blocks
    rng = np.random.default_rng(3)
    caps = rng.integers(0, 60, size=(12, 3)).astype(np.int64)
    codes = rng.integers(0, 6, size=(12, 3)).astype(np.int64)
    admit = rng.integers(1, 3, size=(12, 3)).astype(np.int64)
    args = (offsets, blocks, small_trace.n_unique_blocks, caps, codes, admit, _small_base(), "threads")
    assert_same(_run_grid(*args), _run_grid(*args, engine="ray"), "hits")


@needs_data
def test_conversation_sweep_ray_equals_local(ray_session):
    trace = load_mooncake(CONVERSATION)
    grid = Grid(policies=("lru", "s3fifo"), admission=(2,), fractions=(0.5, 1.0))
    base = load_preset("h100-llama3-8b")
    assert_same(sweep(trace, base, grid=grid), sweep(trace, base, grid=grid, engine="ray"), "sweep")


def test_replay_study_ray_equals_local(ray_session, small_trace):
    kw = dict(policies=("lru", "belady"), scales=(0.5, 2.0), index_kinds=("chime", "redis-mget"))
    local = replay_study(small_trace, _small_base(), **kw)
    distributed = replay_study(small_trace, _small_base(), **kw, engine="ray")
    assert len(local) == len(distributed) == 2 * (1 + 2 * len(_small_base().tiers)) + 2 + 1 + len(_small_base().tiers)
    assert [m.summary() for m in local.marginal] == [m.summary() for m in distributed.marginal]
    for i, (a, b) in enumerate(zip(local, distributed)):
        assert_same(a, b, f"run {i}")


def test_trace_arrays_go_to_the_object_store_once(ray_session, small_trace):
    from kvctrace.engines import ray_engine
    one = Grid(policies=("lru",), admission=(1,), fractions=(1.0,))

    def refs():
        return {tag: entry[2] for tag, entry in ray_engine._shared.items()}
    sweep(small_trace, _small_base(), grid=one, engine="ray")
    first = refs()
    sweep(small_trace, _small_base(), grid=GRID, engine="ray")  # several chunks' worth of calls
    replay_study(small_trace, _small_base(), policies=("lru",), scales=(1.0,), index_kinds=(), engine="ray")
    after = refs()
    assert all(after[tag] is ref for tag, ref in first.items())  # the study reused offsets and blocks
    assert set(after) == {"offsets", "blocks", "next_use", "ts", "input_len", "output_len"}
    other = Trace.from_arrays(small_trace.offsets, small_trace.blocks + 1, block_size=512)
    sweep(other, _small_base(), grid=one, engine="ray")
    assert refs()["blocks"] is not first["blocks"]


# ---- task semantics ---------------------------------------------------------------------------

def slow_identity(i: int, n: int) -> int:
    """Later payloads finish first."""
    import time
    time.sleep(0.05 * (n - i))
    return i


def die_once(marker: str) -> str:
    """Kill the worker process the first time (as an out-of-memory kill would), succeed after."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once")
        os._exit(1)
    return "retried by ray"


def fail_counting(counter: str) -> None:
    path = Path(counter)
    path.write_text(str(int(path.read_text() or 0) + 1) if path.exists() else "1")
    raise ValueError("a bug in the task, not a lost worker")


def test_results_come_back_in_input_order(ray_session):
    n = 6
    assert engines.map_ordered("ray", slow_identity, [(i, n) for i in range(n)]) == list(range(n))


def test_dead_worker_is_retried_by_ray(ray_session, tmp_path):
    marker = tmp_path / "died"
    assert engines.map_ordered("ray", die_once, [(str(marker),)]) == ["retried by ray"]
    assert marker.read_text() == "died once"


def test_task_exception_is_not_retried(ray_session, tmp_path):
    counter = tmp_path / "attempts"
    with pytest.raises(ValueError, match="a bug in the task"):
        engines.map_ordered("ray", fail_counting, [(str(counter),)])
    assert counter.read_text() == "1"


def probe_cache(offsets, blocks, next_use, *payload):
    """In a fresh worker process: run one sweep task, report the kernel's Numba cache use."""
    from kvctrace.kernels import replay as K
    from kvctrace.replay.distributed import _grid_task
    _grid_task(offsets, blocks, next_use, *payload)
    stats = K.replay_tiers_many.stats
    return sum(stats.cache_hits.values()), sum(stats.cache_misses.values()), os.environ["NUMBA_CACHE_DIR"]


def test_workers_load_kernels_from_the_numba_cache(ray_session, small_trace):
    from kvctrace.engines import ray_engine
    from kvctrace.kernels import replay as K
    from kvctrace.replay.distributed import kernel_ref
    base = _small_base()
    sweep(small_trace, base, grid=Grid(policies=("lru",), admission=(1,), fractions=(1.0,)), engine="ray")
    shared = tuple(ray_engine._shared[tag][2] for tag in ("offsets", "blocks", "next_use"))
    caps, codes, admit = np.full((1, 4), 10, np.int64), np.zeros((1, 4), np.int64), np.ones((1, 4), np.int64)
    payload = (kernel_ref(K.replay_tiers_many), small_trace.n_unique_blocks, caps, codes, admit, (False, True, True))
    # an actor is a new worker process: it cannot have compiled the kernel itself
    probe = ray_session.remote(num_cpus=1)(_CacheProbe).remote()
    hits, misses, cache_dir = ray_session.get(probe.run.remote(*shared, *payload))
    ray_session.kill(probe)
    assert hits >= 1 and misses == 0
    assert cache_dir == ray_engine.numba_cache_dir()
    assert list(Path(cache_dir).rglob("replay.replay_tiers_many-*.nbi")) and list(Path(cache_dir).rglob("replay.replay_tiers_many-*.nbc"))


class _CacheProbe:
    def run(self, *args):
        return probe_cache(*args)


# ---- options and errors -----------------------------------------------------------------------

def _without_ray(monkeypatch):
    def no_ray():
        raise ImportError("No module named 'ray'")
    monkeypatch.setattr(engines.extra, "_import_ray", no_ray)


def test_missing_extra_is_one_line(monkeypatch, small_trace, tmp_path):
    _without_ray(monkeypatch)
    with pytest.raises(engines.MissingExtraError) as err:
        engines.check_engine("ray")
    assert f"error: {err.value}" == MISSING_EXTRA
    with pytest.raises(engines.MissingExtraError):
        sweep(small_trace, _small_base(), grid=GRID, engine="ray")
    trace_file = tmp_path / "t.jsonl"
    trace_file.write_text('{"timestamp": 0, "input_length": 1100, "output_length": 10, "hash_ids": [0, 1, 2]}\n')
    runner = CliRunner()
    for args in (["recommend", str(trace_file), "--engine", "ray", "--out", str(tmp_path / "r.toml")],
                 ["analyze", str(trace_file), "--engine", "ray", "--partitions", "2", "--out", str(tmp_path)],
                 ["report", str(trace_file), "--recommend", "--engine", "ray", "--out", str(tmp_path)]):
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and r.stderr.strip() == MISSING_EXTRA, (args, r.output)


def test_unknown_engine_and_stray_address():
    with pytest.raises(UnknownNameError, match="valid engines: local, ray"):
        engines.check_engine("spark")
    with pytest.raises(UnknownNameError, match="--ray-address needs --engine ray"):
        engines.start("local", "10.0.0.1:6379")


def test_cli_recommend_on_ray_writes_the_same_config(ray_session, tmp_path):
    from kvctrace.synth import write_trace
    path = write_trace(tmp_path / "chat.jsonl", "mooncake", 400, seed=3)
    runner = CliRunner()
    common = ["recommend", str(path), "--policies", "lru,s3fifo", "--admission", "1",
              "--fractions", "0.5,1", "--json"]
    local = runner.invoke(app, common + ["--out", str(tmp_path / "local.toml")])
    on_ray = runner.invoke(app, common + ["--out", str(tmp_path / "ray.toml"), "--engine", "ray"])
    assert local.exit_code == 0 and on_ray.exit_code == 0, on_ray.output
    assert (tmp_path / "local.toml").read_text() == (tmp_path / "ray.toml").read_text()
