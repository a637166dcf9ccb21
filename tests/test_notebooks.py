"""The notebooks run top to bottom on the bundled datasets/ traces (nbclient, the venv's
ipykernel); any cell error fails the suite. They are committed without outputs."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_three_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_reuse_and_hotness.ipynb",
                                           "03_replay_and_recommend.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_uses_only_the_public_api(path):
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    imports = re.findall(r"(?:from|import)\s+(kvctrace[\w.]*)", source)
    assert imports
    for module in imports:
        assert not any(part.startswith("_") for part in module.split(".")), module
        assert module.split(".")[1:2] in ([], ["analysis"], ["report"], ["replay"]), module
    for name in re.findall(r'DATASETS / "([^"]+)"', source):
        assert (REPO / "datasets" / name).exists(), f"{path.name} reads datasets/{name}, which is not bundled"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    # The kernel (a child process) imports this checkout's kvctrace.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()       # raises CellExecutionError, naming the cell, on the first error
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    displayed = [o for c in book.cells if c.cell_type == "code" for o in c.outputs
                 if o.output_type in ("execute_result", "display_data")]
    assert any("text/html" in o.data or "application/vnd.vegalite.v6+json" in o.data or
               any(k.startswith("application/vnd.vegalite") for k in o.data) for o in displayed)
