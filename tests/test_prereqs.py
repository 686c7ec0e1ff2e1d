"""``scripts/test_prereqs.sh``: what `make test` does on a machine without PostgreSQL, Redis or Chromium.

Run with a PATH holding only fakes (``id``, ``redis-server``) and a fake apt-get that logs its arguments, so the
real machine's packages do not decide the outcome.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "test_prereqs.sh"


def fake(bin_dir: Path, name: str, body: str) -> Path:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def run(tmp_path: Path, *, uid: int, have: set[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    fake(bin_dir, "id", f"echo {uid}")
    apt = fake(bin_dir, "apt-get", f'echo "$*" >> {log}')
    if "redis-server" in have:
        fake(bin_dir, "redis-server", "exit 0")
    initdb = tmp_path / "pg" / "15" / "bin" / "initdb"
    if "postgresql" in have:
        initdb.parent.mkdir(parents=True)
        fake(initdb.parent, "initdb", "exit 0")
    chromium = fake(bin_dir, "chromium", "exit 0") if "chromium" in have else tmp_path / "no-chromium"
    env = {
        "PATH": str(bin_dir),
        "APT_GET": str(apt),
        "LUMA_CHROMIUM": str(chromium),
        "LUMA_PG_INITDB": str(tmp_path / "pg" / "*" / "bin" / "initdb"),
    }
    done = subprocess.run(["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    return done, log.read_text().splitlines() if log.exists() else []


def test_nothing_missing_does_nothing(tmp_path: Path) -> None:
    done, apt = run(tmp_path, uid=0, have={"postgresql", "redis-server", "chromium"})
    assert done.returncode == 0 and apt == [] and done.stdout == ""


def test_root_installs_exactly_what_is_missing(tmp_path: Path) -> None:
    done, apt = run(tmp_path, uid=0, have={"postgresql"})
    assert done.returncode == 0, done.stderr
    assert apt == ["update -qq", "install -y -qq redis-server chromium"]


@pytest.mark.parametrize("have", [set(), {"redis-server", "chromium"}])
def test_not_root_stops_at_once_and_says_what_to_install(tmp_path: Path, have: set[str]) -> None:
    done, apt = run(tmp_path, uid=1000, have=have)
    missing = [p for p in ("postgresql", "redis-server", "chromium") if p not in have]
    assert done.returncode == 1 and apt == []
    assert f"sudo apt-get install -y {' '.join(missing)}" in done.stderr
