"""The shape the code relies on: an Airflow-free core, no import cycle anywhere in the package, and a runtime that
never imports the operators. The graph is built from the AST of every module (no hand-kept list)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import airflow_provider_luma
import airflow_provider_luma.core as core

PACKAGE = Path(airflow_provider_luma.__file__).parent
CORE_MODULES = sorted(m.name for m in pkgutil.walk_packages(core.__path__, "airflow_provider_luma.core."))


def test_the_core_imports_nothing_from_airflow() -> None:
    code = (
        "import sys, importlib\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        "print('\\n'.join(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert len(CORE_MODULES) >= 12
    assert loaded == []


def _module_files() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its ``__init__.py``)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, from the AST: every import statement counts, at module level,
    inside functions and under ``if TYPE_CHECKING:`` alike. ``from pkg import name`` imports ``pkg`` and, when
    ``pkg.name`` is a module, that module too; relative imports are resolved."""
    files = _module_files()
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join([*anchor, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                targets.add(source)
                targets.update(f"{source}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_sees_every_module_and_every_kind_of_import() -> None:
    graph = import_graph()
    assert {"airflow_provider_luma", "airflow_provider_luma.runtime.flow", "airflow_provider_luma.testing"} <= set(
        graph
    )
    # A type-only import, a function-level import and a `from package import module` are all edges.
    assert "airflow_provider_luma.runtime.storage" in graph["airflow_provider_luma.runtime.plan"]  # TYPE_CHECKING
    assert "airflow_provider_luma.triggers" in graph["airflow_provider_luma.runtime.flow"]  # inside a method
    assert "airflow_provider_luma.runtime.delivery" in graph["airflow_provider_luma.runtime.download"]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_anywhere_in_the_package() -> None:
    assert import_cycles(import_graph()) == []


def test_the_runtime_never_imports_the_operators() -> None:
    graph = import_graph()
    runtime = [name for name in graph if name.startswith("airflow_provider_luma.runtime")]
    assert len(runtime) >= 15
    offending = {
        name: sorted(t for t in graph[name] if t.startswith("airflow_provider_luma.operators"))
        for name in runtime
        if any(t.startswith("airflow_provider_luma.operators") for t in graph[name])
    }
    assert offending == {}
