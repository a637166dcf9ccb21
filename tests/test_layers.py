"""The package's architecture rules, read from its source with ``ast`` (nothing is imported):

* every module belongs to a layer of the table in docs/architecture.md ("Layers");
* imports go only to the same or a lower layer (imports inside functions count too);
* no import cycles between modules;
* no import of the package root (``import kvctrace``, ``from .. import __version__``) from
  inside the package: the root is the public API, built on top of everything else;
* no module over 600 lines; no function over 80 lines, except a Numba-jitted function whose
  docstring says why it is long with a line starting ``Why long:``.

Each failure lists one violation per line as ``path:line: what``. Run this file with Python
to print every violation at once."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "kvctrace"
PACKAGE_DIR = ROOT / PACKAGE
LAYER_DOC = ROOT / "docs" / "architecture.md"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
LONG_MARKER = "Why long:"
NUMBA_DECORATORS = {"njit", "jit"}


@dataclass(frozen=True)
class Import:
    source: str   # importing module
    target: str   # imported kvctrace module (a submodule when the name is one)
    path: str     # file of the importing module, relative to the repository
    line: int
    name: str     # the name imported (``from x import name``), else the module itself


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


@cache
def trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in modules().items()}


def rel(name: str) -> str:
    return str(modules()[name].relative_to(ROOT))


@cache
def layer_table() -> list[tuple[int, str, tuple[str, ...]]]:
    """(layer number, layer name, module names) rows of the table in docs/architecture.md."""
    rows = []
    section = LAYER_DOC.read_text(encoding="utf-8").partition("\n## Layers\n")[2].partition("\n## ")[0]
    for line in section.splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|(.*)\|\s*$", line)
        if m:
            names = tuple(re.findall(r"`(kvctrace[\w.]*)`", m.group(3)))
            rows.append((int(m.group(1)), m.group(2), names))
    assert rows, (f"{LAYER_DOC.relative_to(ROOT)}: no layer table under '## Layers' "
                  "(rows '| N | name | `kvctrace.x`, ... |')")
    return rows


def layer_of(module: str) -> tuple[int, str] | None:
    """The layer of the longest table entry naming ``module`` or a package holding it; the
    package root entry names the root only."""
    best, best_len = None, -1
    for number, name, entries in layer_table():
        for entry in entries:
            covers = module == entry or (entry != PACKAGE and module.startswith(entry + "."))
            if covers and len(entry) > best_len:
                best, best_len = (number, name), len(entry)
    return best


def _package_of(module: str) -> str:
    return module if modules()[module].name == "__init__.py" else module.rpartition(".")[0]


@cache
def imports() -> tuple[Import, ...]:
    """Every import of a kvctrace module by a kvctrace module, anywhere in its file."""
    out = []
    known = modules()
    for source, tree in trees().items():
        path = rel(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        out.append(Import(source, alias.name, path, node.lineno, alias.name))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = _package_of(source).split(".")
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target != PACKAGE and not target.startswith(PACKAGE + "."):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    out.append(Import(source, sub if sub in known else target, path, node.lineno, alias.name))
    return tuple(out)


def unlayered_modules() -> list[str]:
    return [f"{rel(m)}: module {m} has no layer (add it to the table in docs/architecture.md)"
            for m in modules() if layer_of(m) is None]


def upward_imports() -> list[str]:
    """One line per import statement that reaches a higher layer."""
    found: dict[tuple, list[str]] = {}
    for imp in imports():
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if imp.target == PACKAGE or src is None or dst is None:
            continue  # root imports and unlayered modules have their own checks
        if dst[0] > src[0]:
            key = (imp.path, imp.line, imp.source, src, dst)
            found.setdefault(key, []).append(imp.target)
    return [f"{path}:{line}: upward import {source} (layer {src[0]} {src[1]}) -> "
            f"{', '.join(sorted(set(targets)))} (layer {dst[0]} {dst[1]})"
            for (path, line, source, src, dst), targets in sorted(found.items())]


def root_imports() -> list[str]:
    return sorted({f"{imp.path}:{imp.line}: {imp.source} imports {imp.name} from the package root"
                   for imp in imports() if imp.target == PACKAGE and imp.source != PACKAGE})


def _short(module: str) -> str:
    return module.removeprefix(PACKAGE + ".")


def import_cycles() -> list[str]:
    """One line per strongly connected component of the module import graph (Tarjan).
    Imports of the package root are left out: their own check reports them."""
    edges: dict[str, dict[str, Import]] = {m: {} for m in modules()}
    for imp in imports():
        if imp.target in edges and imp.target not in (imp.source, PACKAGE):
            edges[imp.source].setdefault(imp.target, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    out = []
    for component in sorted(components):
        members = set(component)
        links = [f"{_short(e.source)} -> {_short(e.target)} ({e.path}:{e.line})"
                 for v in component for w, e in sorted(edges[v].items()) if w in members]
        out.append(f"import cycle among {', '.join(component)}: " + "; ".join(links))
    return out


def long_modules() -> list[str]:
    out = []
    for name, path in modules().items():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            out.append(f"{rel(name)}: {n} lines (max {MAX_MODULE_LINES})")
    return out


def _is_numba(fn: ast.FunctionDef) -> bool:
    for dec in fn.decorator_list:
        dec = dec.func if isinstance(dec, ast.Call) else dec
        name = dec.attr if isinstance(dec, ast.Attribute) else getattr(dec, "id", None)
        if name in NUMBA_DECORATORS:
            return True
    return False


def long_functions() -> list[str]:
    out = []
    for name, tree in trees().items():
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            n = fn.end_lineno - fn.lineno + 1
            if n <= MAX_FUNCTION_LINES:
                continue
            doc = ast.get_docstring(fn) or ""
            explained = any(line.strip().startswith(LONG_MARKER) for line in doc.splitlines())
            if _is_numba(fn) and explained:
                continue
            why = (f"a Numba function needs a '{LONG_MARKER}' line in its docstring" if _is_numba(fn)
                   else "split it")
            out.append(f"{rel(name)}:{fn.lineno}: function {fn.name} is {n} lines "
                       f"(max {MAX_FUNCTION_LINES}; {why})")
    return sorted(out)


def _check(violations: list[str]) -> None:
    if violations:
        pytest.fail(f"{len(violations)} violation(s):\n" + "\n".join(violations), pytrace=False)


def test_the_import_scan_sees_the_package():
    """Guards the checks below against passing on an empty scan."""
    edges = {(imp.source, imp.target) for imp in imports()}
    assert len(modules()) > 20
    assert any(s == "kvctrace.store" and t.startswith("kvctrace.formats") for s, t in edges)
    assert ("kvctrace.cli", "kvctrace.commands") in edges  # an import inside a function


def test_every_module_has_a_layer():
    _check(unlayered_modules())


def test_imports_only_downward():
    _check(upward_imports())


def test_no_import_cycles():
    _check(import_cycles())


def test_no_import_of_the_package_root():
    _check(root_imports())


def test_module_size():
    _check(long_modules())


def test_function_size():
    _check(long_functions())


if __name__ == "__main__":
    for check in (unlayered_modules, upward_imports, import_cycles, root_imports, long_modules, long_functions):
        for violation in check():
            print(violation)
