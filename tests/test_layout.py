"""The shape the code relies on: an Airflow-free core, and a worker flow that never imports the operators."""

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


def _runtime_imports(path: Path) -> set[str]:
    """Modules imported outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_worker_flow_never_imports_the_operators() -> None:
    glue = ["_flow.py", "_finish.py", "_plan.py", "_results.py", "_state.py", "_deliver.py", "_storage.py"]
    for name in glue:
        imports = _runtime_imports(PACKAGE / name)
        assert not any(m.startswith("airflow_provider_luma.operators") for m in imports), (name, imports)
