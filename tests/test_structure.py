"""The package's shape, computed from its source (ast; nothing is imported).

- No import cycle between bookpot's modules, counting every import: at
  module level, inside functions (where cycles used to hide), and under
  ``if TYPE_CHECKING``.
- No module imports another module's private (``_name``) name.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

# The installed package maps these top-level folders (pyproject.toml).
PACKAGES = {"app": "bookpot.app", "engine": "bookpot.engine", "models": "bookpot.models",
            "native": "bookpot.native"}


def extensions() -> set[str]:
    """The C extensions' module names, as setup.py declares them (``Extension("name", ...)``)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Extension"}


def modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package's __init__)."""
    out = {}
    for folder, package in PACKAGES.items():
        for f in sorted((ROOT / folder).rglob("*.py")):
            parts = list(f.relative_to(ROOT / folder).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            out[".".join([package, *parts])] = (f, is_pkg)
    return out


def imports(name: str, path: Path, is_pkg: bool, known: set[str]) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in the file."""
    here = name if is_pkg else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                if sub in known:  # `from . import kernels`: the submodule itself
                    found.append((sub, None, node.lineno))
                else:
                    found.append((mod, a.name, node.lineno))
    return found


def graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str, int]]]:
    """Edges between bookpot's modules, and every (importer, module, name, line)."""
    mods = modules()
    known = set(mods) | extensions()
    edges: dict[str, set[str]] = {m: set() for m in known}
    named = []
    for m, (path, is_pkg) in mods.items():
        for target, what, line in imports(m, path, is_pkg, known):
            if target in known and target != m:
                edges[m].add(target)
            if what is not None:
                named.append((m, target, what, line))
    return edges, named


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_package():
    edges, named = graph()
    assert "bookpot.app.cli" in edges and "bookpot.engine.session" in edges
    assert "bookpot.engine.llm" in edges["bookpot.engine.session"]  # a module-level import
    assert "bookpot.engine.readers" in edges["bookpot.app.cli"]  # one inside a function
    assert "bookpot.native._hot" in edges["bookpot.native.kernels"]  # the C extension is a module
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    edges, _ = graph()
    found = cycles(edges)
    detail = ["; ".join(f"{m} -> {sorted(edges[m] & set(c))}" for m in c) for c in found]
    assert not found, detail


def test_no_module_imports_another_modules_private_name():
    _, named = graph()
    mods = set(modules())
    private = [f"{m}:{line} imports {what} from {target}" for m, target, what, line in named
               if target in mods and what.startswith("_") and not what.startswith("__")]
    assert not private, private
