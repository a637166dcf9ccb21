"""A few fuzzed traces through the real command line (subprocesses, as a user runs them): either
exit 0 with strict JSON on stdout (no NaN or Infinity), or exit 1 with one `error: file, line,
field` line on stderr; never a traceback. The library-level fuzz tests cover many more inputs."""
from __future__ import annotations

import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import fuzz_oracle as oracle
from .test_fuzz_jsonl import contain, jsonl_file


def run(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvctrace", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def holds(res: subprocess.CompletedProcess, path) -> None:
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    if res.returncode == 0:
        oracle.strict_json(res.stdout)
        return
    assert res.returncode == 1, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), res.stderr


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["mooncake", "bailian", "tokens", "lengths"]), data=st.data(),
       container=st.sampled_from(["plain", "gz", "zst"]), skip=st.booleans())
def test_cli_analyze_and_info(tmp_path_factory, fmt, data, container, skip):
    name, payload = contain(data.draw(jsonl_file(fmt, max_records=5)), container)
    folder = tmp_path_factory.mktemp("cli")
    path = folder / name
    path.write_bytes(payload)
    options = ["--format", fmt] + (["--skip-bad-lines"] if skip else [])
    holds(run("analyze", path, "--json", "--out", folder / "out", *options, cwd=folder), path)
    holds(run("info", path, "--json", *options, cwd=folder), path)
