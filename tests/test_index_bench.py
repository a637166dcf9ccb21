"""kvctrace bench-index against a real redis-server (tests/redis_server.py): op counts follow the
definitions (hand counts and a naive reference), the server's other keys are untouched, the
run's keys are gone at the end and after Ctrl-C/SIGTERM, refusals are one line, and the
calibration round-trips into the replay's Redis costs."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from kvctrace import Trace
from kvctrace.errors import ConfigError, KvctraceError
from kvctrace.replay import IndexConfig, load_preset, replay
from kvctrace.replay import cost
from kvctrace.replay import redis_client as rc
from kvctrace.replay.index_bench import (DesignRun, IndexBenchResult, bench_index, block_digests,
                                         chained_ids)
from kvctrace.replay.index_calibration import (MIN_GROUP_OPS, calibration_toml, fit_redis,
                                               model_comparison, write_calibration)
from kvctrace.replay.index_ops import INSERT, POINT, RANGE, round_trips, workload

from .redis_server import free_port, redis_server

# Request 0 introduces ids 0..13 (raw ids 1000..1013), request 1 is [5,6,7,10,12,13] (runs 5-7,
# 10, 12-13), request 2 is [14,15,3,16] (raw 1014, 1015, 1003, 1020: runs 14-15, 3, 16).
HAND_RAW = [list(range(1000, 1014)), [1005, 1006, 1007, 1010, 1012, 1013], [1014, 1015, 1003, 1020]]
HAND_TS = [0.0, 700.0, 1300.0]
# point lookups, range lookups, inserted keys
HAND_OPS = {"get": (14 + 6 + 4, 0, 14 + 3), "mget": (0 + 1 + 2, 1 + 2 + 1, 17), "zset": (3, 4, 17)}
# commands the server receives per design (INFO commandstats); +1 SET: the run's probe write
HAND_COMMANDS = {
    "get": {"get": 24, "set": 17 + 1},
    "mget": {"get": 3, "mget": 4, "mset": 2, "set": 1},
    "zset": {"get": 3, "zrange": 4, "mset": 2, "zadd": 2, "set": 1},
}
SYNTH_REQUESTS = 3000


def hand_trace(ts=HAND_TS) -> Trace:
    offsets = np.cumsum([0] + [len(r) for r in HAND_RAW])
    return Trace.from_arrays(offsets, np.concatenate(HAND_RAW), ts=ts)


@pytest.fixture(scope="module")
def synth_trace(tmp_path_factory):
    from kvctrace.synth import write_trace
    return write_trace(tmp_path_factory.mktemp("synth") / "synth.jsonl", "mooncake", SYNTH_REQUESTS, seed=3)


def run_cli(*args, process: bool = False):
    """The CLI in this process (fast), or as a real process: what a user sees on the way out."""
    if process:
        return subprocess.run([sys.executable, "-m", "kvctrace", *map(str, args)], capture_output=True, text=True)
    from typer.testing import CliRunner

    from kvctrace.cli import app
    done = CliRunner().invoke(app, list(map(str, args)))
    return subprocess.CompletedProcess(args, done.exit_code, done.stdout, done.stderr)


def one_error_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def commandstats(client) -> dict:
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in client.info("commandstats").items()}


# ---- the op plan (no server) ------------------------------------------------------------------

def naive_round_trips(offsets, blocks, design):
    """(request, kind, first, keys) in execution order, straight from the definitions."""
    seen, out = set(), []
    for r in range(len(offsets) - 1):
        req = list(blocks[offsets[r]:offsets[r + 1]])
        if design == "get":
            out += [(r, POINT, b, 1) for b in req]
        else:
            i = 0
            while i < len(req):
                j = i + 1
                while j < len(req) and req[j] == req[j - 1] + 1:
                    j += 1
                out.append((r, RANGE if j - i >= 2 else POINT, req[i], j - i))
                i = j
        new = []
        for b in req:
            if b not in seen:
                seen.add(b)
                new.append(b)
        assert new == list(range(new[0], new[0] + len(new))) if new else True  # first-appearance ids
        if new and design == "get":
            out += [(r, INSERT, b, 1) for b in new]
        elif new:
            out.append((r, INSERT, new[0], len(new)))
    return out


def as_tuples(trips):
    return list(zip(trips.request.tolist(), trips.kind.tolist(), trips.first.tolist(), trips.keys.tolist()))


def dense(raw_requests):
    ids = {}
    blocks = [ids.setdefault(b, len(ids)) for req in raw_requests for b in req]
    return np.cumsum([0] + [len(r) for r in raw_requests]), np.asarray(blocks, np.int64)


@pytest.mark.parametrize("design", ["get", "mget", "zset"])
def test_plan_counts_equal_the_hand_count(design):
    t = hand_trace()
    trips = round_trips(workload(t.offsets, t.blocks, t.ts), design)
    point, ranges, inserts = HAND_OPS[design]
    assert trips.op_counts() == {"point_lookups": point, "range_lookups": ranges, "inserts": inserts}
    if design != "get":  # request 1: runs 5-7, 10, 12-13 and no inserts
        assert as_tuples(trips)[trips.req_offsets[1]:trips.req_offsets[2]] == [
            (1, RANGE, 5, 3), (1, POINT, 10, 1), (1, RANGE, 12, 2)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), max_size=12), min_size=1, max_size=8),
       st.sampled_from(["get", "mget", "zset"]), st.integers(1, 9))
def test_plan_equals_the_naive_reference(raw, design, max_requests):
    offsets, blocks = dense(raw)
    ts = np.arange(len(raw), dtype=np.float64)
    w = workload(offsets, blocks, ts, max_requests)
    n = min(max_requests, len(raw))
    assert as_tuples(round_trips(w, design)) == naive_round_trips(offsets[:n + 1], blocks, design)
    assert w.n_ids == len(set(blocks[:offsets[n]].tolist()))


def test_keys_hash_the_trace_chained_ids():
    t = hand_trace()
    raw = chained_ids(t, 17)
    assert raw.tolist() == list(range(1000, 1016)) + [1020]
    digests = block_digests(raw)
    assert digests[32 * 16:] == hashlib.sha256((1020).to_bytes(8, "little")).digest()


def test_url_masking_and_scan_pattern():
    assert rc.masked_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert rc.masked_url("redis://user:pw@host/1") == "redis://user:***@host/1"
    assert rc.masked_url("redis://host:6379") == "redis://host:6379"
    assert rc.scan_pattern(b"a*b?[c]\\:") == b"a\\*b\\?\\[c\\]\\\\:*"


# ---- live runs --------------------------------------------------------------------------------

@pytest.mark.parametrize("design", ["get", "mget", "zset"])
def test_live_ops_follow_the_definitions(redis_url, design):
    client = redis.Redis.from_url(redis_url)
    before = commandstats(client)
    result = bench_index(hand_trace(), redis_url, [design])
    after = commandstats(client)
    sent = {cmd: after.get(cmd, 0) - before.get(cmd, 0)
            for cmd in ("get", "set", "mget", "mset", "zrange", "zadd")}
    assert {k: v for k, v in sent.items() if v} == HAND_COMMANDS[design]
    point, ranges, inserts = HAND_OPS[design]
    summary = result.summary()
    assert summary["designs"][0]["ops"] == {"point_lookups": point, "range_lookups": ranges, "inserts": inserts}
    assert summary["keys_written"] == inserts + (design == "zset")  # zset: one sorted set too
    assert summary["keys_left"] == 0
    assert rc.count_keys(client, result.key_prefix.encode()) == 0


def test_json_layout_and_ten_minute_buckets(redis_url):
    result = bench_index(hand_trace(), redis_url, ["get", "zset"])
    text = result.to_json()
    data = json.loads(text)
    assert "NaN" not in text and "Infinity" not in text
    assert set(data) == {"server", "designs", "keys_written", "keys_left"}
    assert data["server"]["version"] == redis.Redis.from_url(redis_url).info("server")["redis_version"]
    get = data["designs"][0]
    assert set(get) == {"design", "ops", "latency_us", "buckets", "throughput_ops_s"}
    assert get["latency_us"]["range_lookups"] is None  # no range lookups in the get design
    assert set(get["latency_us"]["point_lookups"]) == {"p50", "p90", "p99"}
    # requests at 0 s, 700 s and 1300 s; request 1 has no new blocks
    assert [(b["start_s"], b["op"]) for b in get["buckets"]] == [
        (0.0, "point_lookups"), (0.0, "inserts"), (600.0, "point_lookups"),
        (1200.0, "point_lookups"), (1200.0, "inserts")]
    assert all(set(b) == {"start_s", "op", "p50_us", "p99_us"} for b in get["buckets"])
    assert get["throughput_ops_s"] > 0
    zset = data["designs"][1]
    assert zset["latency_us"]["range_lookups"]["p99"] >= zset["latency_us"]["range_lookups"]["p50"] > 0


def test_other_keys_untouched(redis_url):
    client = redis.Redis.from_url(redis_url)
    foreign = {b"user:1": b"alice", b"kvctrace:someone-else:x": b"theirs", b"glob*[key]?": b"odd",
               b"kvctrace:fixed:": b"just the prefix"}
    for key, value in foreign.items():
        client.set(key, value)
    client.expire(b"user:1", 3600)
    size = client.dbsize()
    bench_index(hand_trace(), redis_url)
    result = bench_index(hand_trace(), redis_url, ["mget"], key_prefix="kvctrace:fixed:run:")
    assert result.keys_left == 0
    assert client.dbsize() == size
    assert {k: client.get(k) for k in foreign} == foreign
    assert 0 < client.ttl(b"user:1") <= 3600
    client.delete(*foreign)


def test_a_prefix_holding_keys_is_refused(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set(b"taken:k", b"v")
    with pytest.raises(KvctraceError, match="already exist"):
        bench_index(hand_trace(), redis_url, key_prefix="taken:")
    assert client.get(b"taken:k") == b"v"
    client.delete(b"taken:k")


def test_several_clients_send_the_same_ops(redis_url, synth_trace):
    import kvctrace
    t = kvctrace.open_trace(synth_trace)
    one = bench_index(t, redis_url, ["mget"], max_requests=200)
    two = bench_index(t, redis_url, ["mget"], max_requests=200, clients=3)
    assert one.summary()["designs"][0]["ops"] == two.summary()["designs"][0]["ops"]
    assert one.keys_written == two.keys_written and two.keys_left == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_deletes_its_keys(redis_url, synth_trace, sig):
    prefix = f"kvctrace:interrupt-{sig.name}:"
    client = redis.Redis.from_url(redis_url)
    proc = subprocess.Popen([sys.executable, "-m", "kvctrace", "bench-index", str(synth_trace), "--redis", redis_url,
                             "--key-prefix", prefix, "--design", "get", "--max-requests", str(SYNTH_REQUESTS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while rc.count_keys(client, f"{prefix}get:".encode()) == 0:  # the run's keys, not its probe
            assert proc.poll() is None, f"finished before it was interrupted: {proc.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert len(lines) == 1 and lines[0].startswith("interrupted:") and "0 left" in lines[0], err
    assert rc.count_keys(client, prefix.encode()) == 0


def test_unreachable_server(hand_file):
    url = f"redis://127.0.0.1:{free_port()}"
    line = one_error_line(run_cli("bench-index", hand_file, "--redis", url, process=True))
    assert url in line and "cannot reach the server" in line


def test_password_required_and_wrong(tmp_path, hand_file):
    with redis_server(tmp_path, "--requirepass", "hunter2-secret", password="hunter2-secret") as url:
        line = one_error_line(run_cli("bench-index", hand_file, "--redis", url))
        assert url in line and "authentication" in line
        wrong = url.replace("redis://", "redis://:not-the-password@")
        line = one_error_line(run_cli("bench-index", hand_file, "--redis", wrong))
        assert "authentication failed" in line and "not-the-password" not in line and ":***@" in line
        good = url.replace("redis://", "redis://:hunter2-secret@")
        done = run_cli("bench-index", hand_file, "--redis", good, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["keys_left"] == 0


def test_read_only_replica(tmp_path, redis_url, hand_file):
    port = redis_url.rsplit(":", 1)[1]
    with redis_server(tmp_path, "--replicaof", "127.0.0.1", port) as url:
        line = one_error_line(run_cli("bench-index", hand_file, "--redis", url))
        assert url in line and "read-only replica" in line


def test_out_of_memory(tmp_path, synth_trace):
    # ~0.9 MB is used at start: 2 MB lets the run write some thousand keys before the server
    # refuses (the 40k keys of the run need ~4 MB), so the cleanup after a refusal is exercised
    with redis_server(tmp_path, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction") as url:
        line = one_error_line(run_cli("bench-index", synth_trace, "--redis", url, "--design", "get",
                                      "--key-prefix", "kvctrace:oom:", "--max-requests", str(SYNTH_REQUESTS)))
        assert url in line and "out of memory" in line
        written = int(re.search(r"deleted the run's ([\d,]+) keys", line).group(1).replace(",", ""))
        assert written > 1000 and ", 0 left" in line
        assert rc.count_keys(redis.Redis.from_url(url), b"kvctrace:oom:") == 0


@pytest.fixture
def hand_file(tmp_path):
    path = tmp_path / "hand.jsonl"
    path.write_text("".join(json.dumps({"timestamp": int(ts * 1000), "input_length": 512 * len(r), "output_length": 1,
                                        "hash_ids": r}) + "\n" for ts, r in zip(HAND_TS, HAND_RAW)))
    return path


# ---- calibration ------------------------------------------------------------------------------

def linear_result(rtt, per_key, keys_counts, repeat=MIN_GROUP_OPS) -> IndexBenchResult:
    """A result whose lookups cost exactly rtt + keys x per_key (each count ``repeat`` times)."""
    runs = []
    for design in ("get", "mget"):
        keys = np.repeat(np.asarray(keys_counts if design == "mget" else [1, 1, 1], np.int64), repeat)
        trips = pl.DataFrame({"request": np.arange(keys.shape[0]), "ts": np.zeros(keys.shape[0]),
                              "op": ["range_lookups" if k > 1 else "point_lookups" for k in keys.tolist()],
                              "keys": keys, "latency_us": rtt + per_key * keys.astype(float)})
        runs.append(DesignRun(design, {}, 1.0, trips))
    return IndexBenchResult("7.0.0", "redis://x", "p:", "trace.jsonl", 3, 1, tuple(runs), 0, 0)


def test_fit_recovers_a_linear_cost():
    cal = fit_redis(linear_result(20.0, 2.0, [1, 2, 5, 9, 9]))
    assert cal.rtt_us == pytest.approx(20.0) and cal.per_key_us == pytest.approx(2.0)
    assert cal.provenance["n_ops"] == 8 * MIN_GROUP_OPS and cal.provenance["server_version"] == "7.0.0"
    assert cal.provenance["fit_points"] == 4  # keys 1, 2, 5, 9
    # a slow outlier at a keys count with few ops joins a group and does not move the line
    noisy = linear_result(20.0, 2.0, [1, 2, 5, 9, 9])
    outlier = pl.DataFrame({"request": [0], "ts": [0.0], "op": ["range_lookups"], "keys": [200],
                            "latency_us": [5000.0]})
    mget = dataclasses.replace(noisy.runs[1], trips=pl.concat([noisy.runs[1].trips, outlier]))
    robust = fit_redis(dataclasses.replace(noisy, runs=(noisy.runs[0], mget)))
    assert robust.per_key_us == pytest.approx(2.0, rel=0.05)
    # point lookups only: the slope cannot be fitted and stays the model's
    flat = fit_redis(linear_result(20.0, 2.0, [1, 1]))
    assert flat.per_key_us == cost.per_key_us(cost.INDEX_MODELS["redis-mget"])
    assert flat.rtt_us == pytest.approx(22.0 - flat.per_key_us)


def test_calibration_round_trips_into_the_replay_costs(tmp_path):
    path = tmp_path / "cal.toml"
    path.write_text(calibration_toml(fit_redis(linear_result(37.5, 1.25, [1, 3, 4]))))
    loaded = cost.load_calibration(path)
    assert (loaded.rtt_us, loaded.per_key_us) == (pytest.approx(37.5), pytest.approx(1.25))
    t = hand_trace()
    cfg = dataclasses.replace(load_preset("h100-llama3-8b"), index=IndexConfig(kind="redis-get"))
    default = replay(t, cfg)
    with cost.use_calibration(path):
        calibrated = replay(t, cfg)
        model = cost.resolve_index(cfg.index)
        assert model.rtt_us == loaded.rtt_us
        assert cost.per_key_us(model) == pytest.approx(loaded.per_key_us)
    assert cost.INDEX_MODELS["redis-get"].rtt_us == 100.0  # restored
    req = calibrated.requests
    expected = req["n_blocks"] * (loaded.rtt_us + loaded.per_key_us) + req["index_inserts"] * loaded.rtt_us
    assert np.allclose(req["metadata_us"].to_numpy(), expected.to_numpy())
    assert not np.allclose(req["metadata_us"].to_numpy(), default.requests["metadata_us"].to_numpy())


def test_cli_replay_and_recommend_take_a_calibration(tmp_path, hand_file):
    path = tmp_path / "cal.toml"
    path.write_text(calibration_toml(fit_redis(linear_result(500.0, 3.0, [1, 2, 3]))))
    args = ["replay", hand_file, "--index", "redis-get", "--policy", "lru", "--capacity-blocks", "8", "--json"]
    plain = json.loads(run_cli(*args).stdout)
    calibrated = json.loads(run_cli(*args, "--calibration", path).stdout)
    assert calibrated["metadata_us"]["mean"] > plain["metadata_us"]["mean"]
    done = run_cli("recommend", hand_file, "--indexes", "redis-get", "--policies", "lru", "--json",
                   "--out", tmp_path / "rec.toml", "--calibration", path)
    assert done.returncode == 0, done.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[redis]\nrtt_us = -1\nper_key_us = 0.1\n")
    line = one_error_line(run_cli(*args, "--calibration", bad))
    assert "redis.rtt_us" in line and str(bad) in line


def test_live_calibration_and_comparison(redis_url, tmp_path):
    result = bench_index(hand_trace(), redis_url, ["get", "mget"])
    cal, path = write_calibration(result, tmp_path / "live.toml")
    loaded = cost.load_calibration(path)
    assert (loaded.rtt_us, loaded.per_key_us) == (cal.rtt_us, cal.per_key_us)
    assert loaded.provenance["server_version"] == result.server_version
    assert loaded.provenance["n_ops"] == HAND_OPS["get"][0] + sum(HAND_OPS["mget"][:2])
    rows = model_comparison(result, cost.calibrated_models(loaded))
    assert [(r["design"], r["op"]) for r in rows] == [
        ("get", "point_lookups"), ("get", "inserts"), ("mget", "point_lookups"), ("mget", "range_lookups"),
        ("mget", "inserts")]
    get_point = rows[0]
    assert get_point["modelled_p50_us"] == pytest.approx(loaded.rtt_us + loaded.per_key_us, abs=1e-3)
    assert get_point["n"] == HAND_OPS["get"][0]


def test_bad_arguments_are_one_line(redis_url, hand_file):
    line = one_error_line(run_cli("bench-index", hand_file, "--redis", redis_url, "--design", "btree"))
    assert "valid designs: get, mget, zset" in line
    line = one_error_line(run_cli("bench-index", hand_file, "--redis", "http://x:1"))
    assert "http://x:1" in line
    with pytest.raises(ConfigError):
        cost.load_calibration(hand_file)


def test_calibration_keeps_the_measurements_and_the_report_shows_them(redis_url, tmp_path, hand_file):
    from kvctrace.replay.index_calibration import calibration_comparison, measured_rows
    result = bench_index(hand_trace(), redis_url, ["get", "mget"])
    cal, path = write_calibration(result, tmp_path / "live.toml")
    loaded = cost.load_calibration(path)
    assert loaded.measured == measured_rows(result) and len(loaded.measured) == 5
    # the kept quantiles price exactly what model_comparison prices over every measured op
    rows = calibration_comparison(loaded)
    fitted = model_comparison(result, cost.calibrated_models(loaded))
    published = model_comparison(result, cost.DEFAULT_INDEX_MODELS)
    for row, fit, pub in zip(rows, fitted, published):
        assert (row["design"], row["op"], row["n"]) == (fit["design"], fit["op"], fit["n"])
        assert (row["measured_p50_us"], row["measured_p99_us"]) == (fit["measured_p50_us"], fit["measured_p99_us"])
        assert row["fitted_p50_us"] == pytest.approx(fit["modelled_p50_us"], abs=2e-3)
        assert row["fitted_p99_us"] == pytest.approx(fit["modelled_p99_us"], abs=2e-3)
        assert row["published_p99_us"] == pytest.approx(pub["modelled_p99_us"], abs=2e-3)
    # the report: measured next to modelled, and the replays priced with the fitted model
    out = tmp_path / "report"
    done = run_cli("report", hand_file, "--calibration", path, "--out", out)
    assert done.returncode == 0, done.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Index cost model vs a live Redis" in html and "measured p50 (µs)" in html
    assert f"{loaded.rtt_us:,.2f} µs" in html and "Marginal value per tier" in html
    # a damaged measurement is one line naming it
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace("\nn = ", "\nn = 'many' # ", 1))
    line = one_error_line(run_cli("report", hand_file, "--calibration", bad, "--out", tmp_path / "r2"))
    assert "measured[0].n" in line and str(bad) in line


def test_bench_result_renders_in_a_notebook(redis_url):
    result = bench_index(hand_trace(), redis_url, ["get", "zset"])
    html = result._repr_html_()
    assert html.startswith("<style>") and "<strong>IndexBenchResult</strong>" in html
    assert "<th>get</th><th>zset</th>" in html            # one column per design
    assert "ops.point_lookups" in html and f"{HAND_OPS['get'][0]:,}" in html
    assert json.loads(result.to_json())["keys_left"] == 0
