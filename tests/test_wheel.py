"""The built wheel ships queries/ inside the package: an installed (non-editable) kvctrace,
run from outside the repository, finds every named query and ingests a trace with them."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("hatchling", reason="building the wheel offline needs hatchling (test extra)")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    dist, site = tmp / "dist", tmp / "site"
    # No build isolation: the test runs offline with the build backend already installed.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("kvctrace-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return wheel, site, tmp


def test_wheel_contains_every_query(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for sql in (REPO / "queries").glob("*.sql"):
        assert f"kvctrace/queries/{sql.name}" in names


def test_installed_kvctrace_finds_queries_outside_the_repo(installed):
    _, site, tmp = installed
    trace = tmp / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}\n')
    code = (
        "import sys, kvctrace, kvctrace.sql as q\n"
        f"assert kvctrace.__file__.startswith({str(site)!r}), kvctrace.__file__\n"
        "names = q.query_names()\n"
        "assert 'store_create_tables' in names and len(names) >= 5, names\n"
        "for n in names: assert q.load_query(n).strip()\n"
        f"tr = kvctrace.open_trace({str(trace)!r})\n"
        "assert (tr.n_requests, tr.n_accesses) == (1, 2)\n"
        "print(len(names))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) == len(list((REPO / "queries").glob("*.sql")))
