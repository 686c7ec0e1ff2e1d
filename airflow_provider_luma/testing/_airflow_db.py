"""A migrated Airflow metadata database, made once per machine and copied: what the ``luma_airflow`` fixture needs.

Nothing here imports Airflow: ``airflow db migrate`` runs with the interpreter running this code. This project's
own cluster harness (``tests/harness``, not shipped) builds its databases with the same function.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path


class AirflowCommandError(RuntimeError):
    """An ``airflow`` command run on the caller's behalf (e.g. ``airflow db migrate``) failed."""


def airflow_command(*args: str) -> list[str]:
    """The argv that runs ``airflow <args>`` with the interpreter running this code."""
    return [sys.executable, "-m", "airflow", *args]


def read_text(path: Path, lines: int | None = None) -> str:
    """A log file's text (only its last ``lines`` lines if given; empty if the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:]) if lines else text


def _db_cache_path(cache_key_items: Mapping[str, str]) -> Path:
    try:
        version = importlib.metadata.version("apache-airflow-core")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = "unknown"
    digest = hashlib.sha256(repr(sorted(cache_key_items.items())).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "airflow-provider-luma-cache" / f"airflow-{version}-{digest}.db"


def prepare_database(
    db_path: Path,
    env: Mapping[str, str],
    log_path: Path,
    *,
    timeout: float,
    cache_key_items: Mapping[str, str] | None,
) -> None:
    """Create the metadata database at ``db_path``.

    ``airflow db migrate`` takes ~5 s on SQLite; a fresh migrated database does not depend on the home, so
    the first run keeps a copy (keyed by the Airflow version and ``cache_key_items``) and later runs copy it.
    Pass ``cache_key_items=None`` to always migrate. An existing ``db_path`` is migrated in place.

    :raises AirflowCommandError: ``airflow db migrate`` failed (the message holds the end of its log).
    """
    cache = _db_cache_path(cache_key_items) if cache_key_items is not None else None
    if cache is not None and cache.is_file() and not db_path.exists():
        shutil.copyfile(cache, db_path)
        return
    fresh = not db_path.exists()
    with log_path.open("ab") as log:
        proc = subprocess.run(
            airflow_command("db", "migrate"),
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        raise AirflowCommandError(f"`airflow db migrate` failed (exit {proc.returncode}):\n{read_text(log_path, 40)}")
    if cache is not None and fresh:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        shutil.copyfile(db_path, partial)
        os.replace(partial, cache)
