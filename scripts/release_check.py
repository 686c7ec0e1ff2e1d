"""Release check (``make release-check``, part of ``make test``): what a downstream packager and a user get.

1. ``uv build`` the sdist and the wheel; ``twine check --strict`` both.
2. The sdist holds the package, README, LICENSE, CHANGELOG, pyproject and the example DAGs the docs include, and
   nothing else (no tests, benchmarks, CI files, docs).
3. A fresh venv gets the wheel and ``apache-airflow==3.3.2`` (the oldest Airflow supported), pinned to
   ``requirements/dev.lock`` so uv's cache serves every download after the first run; then
   ``airflow providers list`` shows the provider, ``airflow plugins`` lists ``luma_gallery`` without import errors,
   and the README's user example (``tests/user_example/test_weekly_social_cut.py``) passes with that venv's pytest,
   run from a temporary folder outside the checkout so nothing of the source tree is importable.

Everything is built in a temporary folder that is removed afterwards; the checkout is never written to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")
OLDEST_AIRFLOW = "apache-airflow==3.3.2"
# What the sdist may hold besides PKG-INFO: everything a packager needs to build, test-import and document it.
SDIST_ALLOWED_TOP = {"airflow_provider_luma", "example_dags", "README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml"}
SDIST_REQUIRED = {"README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml", "airflow_provider_luma/__init__.py",
                  "airflow_provider_luma/py.typed", "example_dags/example_luma_social_cut.py"}  # fmt: skip


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

        venv = work / "venv"
        run(UV, "venv", "-q", "--python", sys.executable, venv)
        python = venv / "bin" / "python"
        run(UV, "pip", "install", "-q", "--python", python, "--constraint", ROOT / "requirements" / "dev.lock",
            wheel, OLDEST_AIRFLOW, "pytest")  # fmt: skip

        home = work / "airflow-home"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST", "VIRTUAL_ENV"))}
        env |= {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        airflow = venv / "bin" / "airflow"
        providers = run(airflow, "providers", "list", "-o", "json", cwd=work, env=env)
        listed = json.loads(providers[providers.index("[") :])
        if not any(p["package_name"] == "airflow-provider-luma" for p in listed):
            sys.exit(f"release check failed: `airflow providers list` does not show the provider:\n{providers}")
        plugins_json = run(airflow, "plugins", "-o", "json", cwd=work, env=env)
        plugins = json.loads(plugins_json[plugins_json.index("[") :])
        if not any(p["name"] == "luma_gallery" for p in plugins):
            sys.exit(f"release check failed: `airflow plugins` does not list luma_gallery:\n{plugins_json}")
        plain = run(airflow, "plugins", cwd=work, env=env)
        if "import error" in plain.lower():
            sys.exit(f"release check failed: `airflow plugins` reports import errors:\n{plain}")

        user = work / "user-project"
        user.mkdir()
        shutil.copy(ROOT / "tests" / "user_example" / "test_weekly_social_cut.py", user)
        out = run(venv / "bin" / "pytest", "-q", "-p", "no:cacheprovider", "test_weekly_social_cut.py", cwd=user,
                  env=env)  # fmt: skip
        print(out.strip().splitlines()[-1])
    print(f"release check passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
