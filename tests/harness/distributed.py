"""Airflow's distributed engine on one machine: PostgreSQL, Redis, CeleryExecutor, two workers, two triggerers.

:class:`DistributedAirflowCluster` has the interface of :class:`~tests.harness.cluster.LocalAirflowCluster`
(REST helpers, logs, CLI, kill/restart), so the same tests run on either. It starts a private PostgreSQL (Debian's
``postgresql``) and ``redis-server`` on free ports, then ``api-server``,
``scheduler``, ``dag-processor``, two ``airflow celery worker`` processes and two ``triggerer`` processes, all
sharing one ``airflow.cfg`` (one JWT secret, one Fernet key). The triggerers are started one after the other so
that each one's row in the ``job`` table is known (:attr:`triggerer_jobs`): the ``job`` table records no PID.

Components: ``api-server``, ``scheduler``, ``dag-processor``, ``worker-1``, ``worker-2``, ``triggerer-1``,
``triggerer-2``. This module does not import Airflow.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import time
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.harness import _cluster_env as ce
from tests.harness._services import PostgresServer, RedisServer
from tests.harness.cluster import LocalAirflowCluster

__all__ = ["DISTRIBUTED_COMPONENTS", "DistributedAirflowCluster"]

WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
DISTRIBUTED_COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", *WORKERS, *TRIGGERERS)

# Timings for a loaded 2-core machine. The triggerer health-check threshold stays >= 4x the heartbeat, or a busy
# triggerer loses its triggers to the other one (apache/airflow#33089).
DISTRIBUTED_CONFIG: dict[str, str] = {
    "core.executor": "CeleryExecutor",
    "celery.worker_concurrency": "2",  # the default 16 forks far too many processes for 2 cores
    "triggerer.job_heartbeat_sec": "2",
    "triggerer.triggerer_health_check_threshold": "10",
    # A worker that dies with its task: the scheduler fails the task instance (and retries it) once the task's
    # heartbeat is this old. Default 300 s.
    "scheduler.task_instance_heartbeat_timeout": "15",
    "scheduler.task_instance_heartbeat_timeout_detection_interval": "3",
    # The task supervisor (Airflow 3.3.2) waits in select() for up to this long between polls of its task process.
    # If it has read EOF on every pipe before the kernel finished the process's exit, no further event wakes it,
    # and the worker slot stays taken for up to this long after the task ended: seen as 5-s tails (default 5)
    # on a busy 2-core machine. 1 s bounds the tail; heartbeats of long tasks then come every second.
    "workers.min_heartbeat_interval": "1",
    # Workers import the provider and s3fs once, before forking (see _celery_config).
    "celery.celery_config_options": "tests.harness._celery_config.CELERY_CONFIG",
    # Say it explicitly (Airflow warns otherwise): a message is redelivered this long after a worker took it.
    "celery_broker_transport_options.visibility_timeout": "86400",
}


class DistributedAirflowCluster(LocalAirflowCluster):
    """PostgreSQL + Redis + CeleryExecutor (2 workers) + 2 triggerers + scheduler, dag-processor, api-server.

    :param dags_folder: Folder with the DAG files.
    :param home: ``AIRFLOW_HOME``; a temporary directory (removed by :meth:`stop`) when omitted.
    :param env: Extra environment for every process (connections, ...).
    :param parallelism: ``[core] parallelism`` (task instances queued to Celery at once).
    :param extra_config: Airflow options as ``{"section.option": "value"}``; they override the defaults.
    :param worker_concurrency: task slots per Celery worker.
    :param triggerer_capacity: ``--capacity`` of each triggerer; keep it above the total trigger count so that
        one triggerer can take over all of the other's triggers.

    Besides the attributes of :class:`LocalAirflowCluster`: ``postgres`` (:class:`PostgresServer`, with
    :meth:`~PostgresServer.query`), ``redis`` and ``triggerer_jobs`` (``{"triggerer-1": job_id, ...}``).
    """

    def __init__(
        self,
        dags_folder: Path,
        home: Path | None = None,
        env: Mapping[str, str] | None = None,
        parallelism: int | None = None,
        extra_config: Mapping[str, str] | None = None,
        *,
        worker_concurrency: int = 2,
        triggerer_capacity: int = 1000,
        stop_grace_period: float = 5.0,
    ) -> None:
        self.postgres = PostgresServer()
        self.redis = RedisServer()
        config = {
            **DISTRIBUTED_CONFIG,
            "celery.worker_concurrency": str(worker_concurrency),
            "database.sql_alchemy_conn": self.postgres.url,
            "celery.broker_url": self.redis.url,
            "celery.result_backend": f"db+{self.postgres.url}",
            **(extra_config or {}),
        }
        super().__init__(
            dags_folder,
            home,
            env,
            parallelism or 32,
            config,
            reuse_migrated_db=False,
            stop_grace_period=stop_grace_period,
        )
        self.components = DISTRIBUTED_COMPONENTS
        self.worker_concurrency = worker_concurrency
        self.triggerer_capacity = triggerer_capacity
        self.triggerer_jobs: dict[str, int] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 240.0, *, wait_for_dags: bool = True) -> None:
        """Start PostgreSQL and Redis, migrate, start every component and wait until the cluster is usable.

        The second triggerer starts once the first one heartbeats, so that each one's ``job`` row is known.
        """
        started = time.monotonic()
        self.postgres.start()
        self.redis.start()
        # The first triggerer starts with the rest (its job row is the only one), the others one at a time.
        self.components = tuple(c for c in DISTRIBUTED_COMPONENTS if c not in TRIGGERERS[1:])
        try:
            super().start(timeout, wait_for_dags=False)
        finally:
            self.components = DISTRIBUTED_COMPONENTS
        deadline = started + timeout
        for triggerer in TRIGGERERS[1:]:
            self.restart_component(triggerer, timeout=deadline - time.monotonic())
        if wait_for_dags:
            self.wait_for_dags_parsed(timeout=deadline - time.monotonic())
        self.startup_seconds = time.monotonic() - started

    def stop(self, grace_period: float | None = None) -> None:
        """Stop every Airflow component, then Redis and PostgreSQL."""
        try:
            super().stop(grace_period)
        finally:
            self.redis.stop()
            self.postgres.stop()

    def __enter__(self) -> DistributedAirflowCluster:
        self.start()
        return self

    def kill_component(
        self, component: str, sig: int = signal.SIGKILL, timeout: float = 30.0, *, group: bool | None = None
    ) -> int | None:
        """As :meth:`LocalAirflowCluster.kill_component`; a SIGKILL also reaches every descendant process.

        A Celery worker's task runs in a process group of its own, so killing the worker's group alone would
        leave the task running: a machine that dies takes all of it.
        """
        proc = self._procs.get(self._check_name(component))
        if proc is not None and sig == signal.SIGKILL and group is not False:
            for pid in descendants(proc.pid):
                _signal_quietly(pid, signal.SIGKILL)
        return super().kill_component(component, sig, timeout, group=group)

    # ------------------------------------------------------------------ where things run
    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one SQL statement against the metadata database."""
        return self.postgres.query(sql, *params)

    def trigger_owners(self, trigger_ids: Collection[int] | None = None) -> dict[str | None, int]:
        """How many triggers each triggerer holds: ``{"triggerer-1": 3, None: 1}`` (None: unassigned).

        A job id of no current component (a killed triggerer) shows as ``"job <id>"``.
        """
        rows = self.query("SELECT id, triggerer_id FROM trigger")
        names = {job: name for name, job in self.triggerer_jobs.items()}
        owners: dict[str | None, int] = {}
        for trigger_id, job_id in rows:
            if trigger_ids is not None and trigger_id not in trigger_ids:
                continue
            name = None if job_id is None else names.get(job_id, f"job {job_id}")
            owners[name] = owners.get(name, 0) + 1
        return owners

    def component_of_pid(self, pid: int) -> str | None:
        """The component whose process tree holds ``pid`` (e.g. which worker runs a task's process)."""
        mains = {proc.pid: name for name, proc in self._procs.items() if proc.exit_code() is None}
        parents = _parent_map()
        seen: set[int] = set()
        while pid > 1 and pid not in seen:
            if pid in mains:
                return mains[pid]
            seen.add(pid)
            pid = parents.get(pid, 0)
        return None

    # ------------------------------------------------------------------ internals
    def _spawn(self, component: str) -> ce.ComponentProcess:
        if component.startswith("worker-"):
            number = component.rsplit("-", 1)[1]
            args = ["celery", "worker", "-H", f"w{number}@%h", "-c", str(self.worker_concurrency),
                    "--skip-serve-logs", "--without-mingle", "--without-gossip"]  # fmt: skip
        elif component.startswith("triggerer-"):
            args = ["triggerer", "--skip-serve-logs", "--capacity", str(self.triggerer_capacity)]
        elif component == "scheduler":
            args = ["scheduler", "--skip-serve-logs"]
        else:
            args = [component]
        return ce.ComponentProcess(component, self.log_dir / f"{component}.log", self.env, self.home, args)

    def _wait_healthy(self, components: Collection[str], since: datetime | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        super()._wait_healthy(components, since, timeout)
        for name in components:
            remaining = deadline - time.monotonic()
            if name in WORKERS:
                self._poll(functools.partial(self._worker_ready, name), remaining, functools.partial(str, name))
            elif name in TRIGGERERS:
                known = max(self.triggerer_jobs.values(), default=0)
                probe = functools.partial(self._new_triggerer_job, known)
                self.triggerer_jobs[name] = self._poll(probe, remaining, functools.partial(str, f"{name}'s job"))

    def _worker_ready(self, name: str) -> bool | None:
        number = name.rsplit("-", 1)[1]
        text = ce.read_text(self.log_dir / f"{name}.log").rsplit("===== starting", 1)[-1]
        return True if re.search(rf"\bw{number}@\S+ ready\.", text) else None

    def _new_triggerer_job(self, newer_than: int) -> int | None:
        rows = self.query(
            "SELECT id FROM job WHERE job_type = 'TriggererJob' AND end_date IS NULL AND id > %s "
            "AND latest_heartbeat > now() - interval '10 seconds' ORDER BY id",
            newer_than,
        )
        return int(rows[0][0]) if rows else None


def _parent_map() -> dict[int, int]:
    """``{pid: ppid}`` of every process, from ``/proc``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        parents[int(entry)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...), whatever their process group."""
    children: dict[int, list[int]] = {}
    for child, parent in _parent_map().items():
        children.setdefault(parent, []).append(child)
    found, stack = [], list(children.get(pid, []))
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def _signal_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
