"""Named DuckDB queries: one ``queries/<name>.sql`` file each, parameters bound by name
(``$name``), never formatted into the string. In a wheel the files ship as
``kvctrace/queries/`` (hatch force-include); from a source checkout they are read from the
repository's top-level ``queries/``."""
from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path


def _query_dirs():
    yield resources.files("kvctrace") / "queries"
    yield Path(__file__).resolve().parent.parent / "queries"


@cache
def load_query(name: str) -> str:
    """The text of ``queries/<name>.sql``; raises KeyError listing the known names."""
    for folder in _query_dirs():
        candidate = folder / f"{name}.sql"
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise KeyError(f"no query named {name!r}; known: {', '.join(sorted(query_names()))}")


def query_names() -> set[str]:
    names: set[str] = set()
    for folder in _query_dirs():
        if folder.is_dir():
            names |= {p.name[:-4] for p in folder.iterdir() if p.name.endswith(".sql")}
    return names
