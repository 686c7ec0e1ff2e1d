"""Release check (``make release-check``, part of ``make test``): what a downstream packager and a user get.

1. ``uv build`` the sdist and the wheel; ``twine check --strict`` both.
2. The sdist holds the package, README, LICENSE, CHANGELOG, pyproject and the example DAGs the docs include, and
   nothing else (no tests, benchmarks, CI files, docs).
3. The wheel ships what users use and not the test harness: no module of ``tests/harness`` (by name), and no module
   in it imports what only the harness needs (moto, celery, psycopg, boto3, redis, ...: every import in the file,
   also inside functions); its metadata offers the ``testing`` extra.
4. A fresh venv gets the wheel with its ``testing`` extra and ``apache-airflow==3.0.6`` (the oldest Airflow
   supported), pinned to ``requirements/airflow-3.0.lock`` (the pins that release needs beside today's libraries,
   docs/versions.md) so uv's cache serves every download after the first run; then
   ``airflow providers list`` shows the provider, ``airflow plugins`` lists ``luma_gallery`` without import errors,
   and the README's user example (``tests/user_example/``: the ``dag.test()`` test through the ``luma_airflow``
   fixture of the installed pytest plugin, and the DagBag test of its ``dags/`` folder) passes with that venv's
   pytest, run from a temporary folder outside the checkout so nothing of the source tree is importable.

Everything is built in a temporary folder that is removed afterwards; the checkout is never written to.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")
OLDEST_AIRFLOW = "apache-airflow==3.0.6"
OLDEST_LOCK = ROOT / "requirements" / "airflow-3.0.lock"


def json_list(out: str) -> Any:
    """The JSON list a ``-o json`` command printed; Airflow 3.0 prints its start-up log lines before it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("[{", "[]")))
    value, _ = json.JSONDecoder().raw_decode("\n".join(lines[start:]))  # log lines may follow it too
    return value


# What the sdist may hold besides PKG-INFO: everything a packager needs to build, test-import and document it.
SDIST_ALLOWED_TOP = {"airflow_provider_luma", "example_dags", "README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml"}
SDIST_REQUIRED = {"README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml", "airflow_provider_luma/__init__.py",
                  "airflow_provider_luma/py.typed", "example_dags/example_luma_social_cut.py"}  # fmt: skip
HARNESS = ROOT / "tests" / "harness"
# What only the test harness needs (the distributed deployment, moto's S3 server): the wheel must not import it.
HARNESS_ONLY_IMPORTS = ("moto", "celery", "psycopg", "psycopg2", "asyncpg", "boto3", "botocore", "redis", "s3fs",
                        "airflow.providers.celery", "airflow.providers.postgres", "tests")  # fmt: skip


def run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Run a command, echoing it; fail the check with its output if it fails."""
    print("+", " ".join(str(a) for a in args), flush=True)
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"release check failed: {args[0]} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()]
    # PKG-INFO is the metadata; hatchling always adds .gitignore, so a build from the sdist excludes what git does.
    top = {n.split("/", 1)[0] for n in names} - {"PKG-INFO", ".gitignore"}
    extra = sorted(top - SDIST_ALLOWED_TOP)
    missing = sorted(SDIST_REQUIRED - set(names))
    junk = sorted(n for n in names if "__pycache__" in n or n.endswith(".pyc"))
    if extra or missing or junk:
        sys.exit(f"release check failed: sdist {sdist.name}: unexpected {extra}, missing {missing}, junk {junk}")
    print(f"sdist: {len(names)} files, top level {sorted(top)}")


def imported_modules(source: str, filename: str) -> set[str]:
    """Every absolute module a Python file imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def harness_only(module: str) -> bool:
    """Whether ``module`` is one of :data:`HARNESS_ONLY_IMPORTS` or inside one."""
    return any(module == name or module.startswith(f"{name}.") for name in HARNESS_ONLY_IMPORTS)


def check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = [n for n in whl.namelist() if not n.endswith("/")]
        sources = {n: whl.read(n).decode() for n in names if n.endswith(".py")}
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        extras = HeaderParser().parsestr(whl.read(metadata).decode()).get_all("Provides-Extra") or []
    harness = {p.name for p in HARNESS.glob("*.py")} - {"__init__.py"}
    # By name where the harness used to live (a module of another package may share a name such as _auth.py).
    shipped_harness = sorted(
        n for n in sources if n.startswith("airflow_provider_luma/testing/") and Path(n).name in harness
    )
    heavy = {name: sorted(m for m in imported_modules(text, name) if harness_only(m)) for name, text in sources.items()}
    heavy = {name: modules for name, modules in heavy.items() if modules}
    if not harness or shipped_harness or heavy or "testing" not in extras:
        sys.exit(f"release check failed: wheel {wheel.name}: harness modules {shipped_harness} (of {sorted(harness)}), "
                 f"harness-only imports {heavy}, extras {extras} (want 'testing')")  # fmt: skip
    size = wheel.stat().st_size
    print(f"wheel: {len(names)} files, {size / 1024:.0f} KiB; no harness module, no harness-only import")


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="luma-release-") as tmp:
        work = Path(tmp)
        dist = work / "dist"
        run(UV, "build", "--sdist", "--wheel", "--out-dir", dist, ".")
        (sdist,) = dist.glob("*.tar.gz")
        (wheel,) = dist.glob("*.whl")
        run(Path(sys.executable).with_name("twine"), "check", "--strict", sdist, wheel)
        check_sdist(sdist)
        check_wheel(wheel)

        venv = work / "venv"
        run(UV, "venv", "-q", "--python", sys.executable, venv)
        python = venv / "bin" / "python"
        run(UV, "pip", "install", "-q", "--python", python, "--constraint", OLDEST_LOCK,
            f"airflow-provider-luma[testing] @ {wheel.as_uri()}", OLDEST_AIRFLOW)  # fmt: skip

        home = work / "airflow-home"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST", "VIRTUAL_ENV"))}
        env |= {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        airflow = venv / "bin" / "airflow"
        providers = run(airflow, "providers", "list", "-o", "json", cwd=work, env=env)
        listed = json_list(providers)
        if not any(p["package_name"] == "airflow-provider-luma" for p in listed):
            sys.exit(f"release check failed: `airflow providers list` does not show the provider:\n{providers}")
        plugins_json = run(airflow, "plugins", "-o", "json", cwd=work, env=env)
        plugins = json_list(plugins_json)
        if not any(p["name"] == "luma_gallery" for p in plugins):
            sys.exit(f"release check failed: `airflow plugins` does not list luma_gallery:\n{plugins_json}")
        plain = run(airflow, "plugins", cwd=work, env=env)
        if "import error" in plain.lower():
            sys.exit(f"release check failed: `airflow plugins` reports import errors:\n{plain}")

        user = work / "user-project"
        user.mkdir()
        shutil.copytree(ROOT / "tests" / "user_example", user, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        out = run(venv / "bin" / "pytest", "-q", "-p", "no:cacheprovider", ".", cwd=user, env=env)
        print(out.strip().splitlines()[-1])
    print(f"release check passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
