"""No import cycle in ``src/execrelay`` -- and no deferred import that only hides one.

Why: a cycle makes import order matter and pushes code into per-call imports that run on the
hot path; issue 11 cut the executor's loop.  The graph is built from the source with ``ast``
(nothing is imported), so the test also covers modules a given test run never loads.

Two checks:

* the module-level graph (imports executed when a module loads; ``if TYPE_CHECKING:``
  blocks are skipped) has no cycle;
* inside ``execrelay.executor``, an import of an ``execrelay`` module placed in a function
  must not close a cycle either: such an import exists only to dodge the cycle.  Deferred
  imports of heavy optional dependencies that close no cycle are allowed.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "execrelay"
DEFERRED_CHECKED = "execrelay.executor"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module) -> tuple[list[ast.stmt], list[ast.stmt]]:
    """(module-level imports, imports inside functions), TYPE_CHECKING blocks excluded."""
    top: list[ast.stmt] = []
    deferred: list[ast.stmt] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit_stmt(stmt, in_function)
                continue
            visit_stmt(child, in_function)

    def visit_stmt(child: ast.AST, in_function: bool) -> None:
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            (deferred if in_function else top).append(child)
            return
        visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, deferred


def _targets(stmt: ast.stmt, importer: str, is_package: bool, modules: dict[str, Path]) -> set[str]:
    """The ``execrelay`` modules one import statement loads (submodules resolved)."""
    out: set[str] = set()
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            if alias.name.split(".")[0] == PACKAGE:
                name = alias.name
                while name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                out.add(name)
        return out
    assert isinstance(stmt, ast.ImportFrom)
    if stmt.level:
        base = importer.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (stmt.level - 1)]
        target = ".".join(base + ([stmt.module] if stmt.module else []))
    else:
        target = stmt.module or ""
    if target.split(".")[0] != PACKAGE:
        return out
    for alias in stmt.names:
        sub = f"{target}.{alias.name}"
        out.add(sub if sub in modules else target)
    return out


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules()
    top: dict[str, set[str]] = {m: set() for m in modules}
    deferred: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        top_stmts, deferred_stmts = _imports(tree)
        for stmt in top_stmts:
            top[name] |= _targets(stmt, name, is_package, modules) - {name}
        for stmt in deferred_stmts:
            deferred[name] |= _targets(stmt, name, is_package, modules) - {name}
    return top, deferred


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a closed path ``[a, b, ..., a]``, or None (iterative DFS)."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in graph}
    for root in sorted(graph):
        if color[root] != WHITE:
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        color[root] = GREY
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = BLACK
                stack.pop()
                path.pop()
                continue
            if nxt not in color:
                continue
            if color[nxt] == GREY:
                return path[path.index(nxt):] + [nxt]
            if color[nxt] == WHITE:
                color[nxt] = GREY
                path.append(nxt)
                stack.append((nxt, iter(sorted(graph[nxt]))))
    return None


def test_find_cycle_names_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_relative_imports_resolve() -> None:
    modules = {"execrelay": Path(), "execrelay.executor": Path(), "execrelay.executor.fs": Path(),
               "execrelay.executor.session": Path(), "execrelay._accel": Path()}
    tree = ast.parse("from . import fs\nfrom .session import gate\nfrom .. import _accel\n")
    got = set().union(*(_targets(s, "execrelay.executor.http", False, modules) for s in tree.body))
    assert got == {"execrelay.executor.fs", "execrelay.executor.session", "execrelay._accel"}


def test_type_checking_and_function_imports_are_separated() -> None:
    tree = ast.parse("import os\nif TYPE_CHECKING:\n    from .a import b\n"
                     "def f():\n    from .c import d\n")
    top, deferred = _imports(tree)
    assert [type(s).__name__ for s in top] == ["Import"]
    assert [s.module for s in deferred] == ["c"]  # type: ignore[attr-defined]


def test_no_module_level_import_cycle() -> None:
    top, _ = _graph()
    assert len(top) > 20, "module discovery found too few modules"
    cycle = find_cycle(top)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_deferred_import_dodges_a_cycle_in_executor() -> None:
    top, deferred = _graph()
    combined = {m: set(edges) for m, edges in top.items()}
    for module, edges in deferred.items():
        if module == DEFERRED_CHECKED or module.startswith(DEFERRED_CHECKED + "."):
            combined[module] |= edges
    cycle = find_cycle(combined)
    assert cycle is None, "a function-level import hides this cycle: " + " -> ".join(cycle or [])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))
