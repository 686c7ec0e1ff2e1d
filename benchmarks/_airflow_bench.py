"""Shared helpers of the real-Airflow benchmarks (``worker_slots.py``, ``makespan.py``). Not a benchmark itself."""

from __future__ import annotations

import json
import tempfile
import textwrap
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def dags_folder(name: str, source: str) -> Path:
    """A temporary DAGs folder holding one DAG file with ``source``."""
    folder = Path(tempfile.mkdtemp(prefix="luma-bench-dags-"))
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


def parse_ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def worker_log(log_dir: Path, dag_id: str, run_id: str, task_id: str, map_index: int = -1, attempt: int = 1) -> str:
    """The worker's own log file of one try (without the ``.trigger.*`` files the triggerer writes beside it)."""
    folder = log_dir / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    if map_index >= 0:
        folder /= f"map_index={map_index}"
    path = folder / f"attempt={attempt}.log"
    return path.read_text() if path.exists() else ""


def worker_runs(log_text: str) -> list[tuple[float, float]]:
    """The worker runs in a try's worker log, as ``(first, last)`` timestamps of each run.

    Airflow 3.3 writes the task log as JSON lines; every worker run (the first one, and the one resuming after a
    deferral, appended to the same file) starts with a ``::group::Pre Execute`` line. A run lasts from that line to
    the last line before the next run's.
    """
    runs: list[list[float]] = []
    for raw in log_text.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict) or "timestamp" not in line:
            continue
        ts = parse_ts(str(line["timestamp"]))
        if line.get("event") == "::group::Pre Execute" or not runs:
            runs.append([ts, ts])
        else:
            runs[-1][1] = ts
    return [(first, last) for first, last in runs]


def wait_counting_deferred(
    cluster: Any, dag_id: str, run_id: str, *, interval: float, timeout: float
) -> tuple[str, int]:
    """Wait for the run to finish while sampling its task instances; return (final state, most deferred at once)."""
    most_deferred, stop = 0, threading.Event()

    def watch() -> None:
        nonlocal most_deferred
        while not stop.is_set():
            try:
                tis = cluster.task_instances(dag_id, run_id)
            except Exception:  # noqa: BLE001 - a busy SQLite; try again
                tis = []
            most_deferred = max(most_deferred, sum(t["state"] == "deferred" for t in tis))
            stop.wait(interval)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        state = cluster.wait_for_run(dag_id, run_id, timeout=timeout, poll_interval=interval)
    finally:
        stop.set()
        watcher.join()
    return str(state), most_deferred
