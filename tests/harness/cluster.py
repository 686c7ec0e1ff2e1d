"""A real, throw-away Airflow deployment for end-to-end tests and demos.

:class:`LocalAirflowCluster` runs ``airflow scheduler``, ``dag-processor``, ``triggerer`` and ``api-server``
as subprocesses (LocalExecutor, SQLite, a private ``AIRFLOW_HOME`` and free ports) and talks to them through
the ``/api/v2`` REST API. This module does not import Airflow.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from tests.harness import _cluster_env as ce
from tests.harness._cluster_env import AirflowClusterError, run_path, ti_path

if TYPE_CHECKING:
    import httpx

__all__ = ["COMPONENTS", "AirflowClusterError", "LocalAirflowCluster"]

COMPONENTS = ce.COMPONENTS
_JOB_OF = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}
_FINISHED_RUN_STATES = frozenset({"success", "failed"})
_T = TypeVar("_T")
# Options that name per-cluster files and change nothing in the migrated database: keyed on them (their temporary
# paths differ on every run), the cached database never matched and such a cluster ran `airflow db migrate` (~10 s).
_SCHEMA_NEUTRAL = frozenset(
    {"core.simple_auth_manager_passwords_file", "airflow__openlineage__transport", "openlineage.transport"}
)


class LocalAirflowCluster:
    """Scheduler + dag-processor + triggerer + api-server of the current virtualenv, on SQLite.

    :param dags_folder: Folder with the DAG files (``[core] dags_folder``).
    :param home: ``AIRFLOW_HOME``; a temporary directory (removed by :meth:`stop`) when omitted.
    :param env: Extra environment for every process, e.g. ``AIRFLOW_CONN_LUMA_DEFAULT``.
    :param parallelism: ``[core] parallelism`` (LocalExecutor forks this many workers up front).
    :param extra_config: Airflow options as ``{"section.option": "value"}``; they override the defaults.
    :param reuse_migrated_db: Copy a cached freshly migrated database instead of running ``db migrate``.
    :param stop_grace_period: Seconds between SIGTERM and SIGKILL in :meth:`stop` (nothing of a throw-away
        cluster needs saving; the triggerer sometimes needs 10 s to notice that its runner exited).
    :param users: ``{username: (role, password)}`` for SimpleAuthManager instead of "everyone is admin without
        logging in" (``[core] simple_auth_manager_all_admins``); :meth:`api` then logs in as the first one.

    Attributes: ``home``, ``log_dir`` (``<home>/logs``: ``<component>.log`` plus Airflow's task logs),
    ``db_path``, ``api_url``, ``config`` (``{"section.option": value}``), ``env`` (of every process) and
    ``startup_seconds``. On Linux the components get SIGTERM when the thread that started them dies.
    """

    def __init__(
        self,
        dags_folder: Path,
        home: Path | None = None,
        env: Mapping[str, str] | None = None,
        parallelism: int | None = None,
        extra_config: Mapping[str, str] | None = None,
        *,
        reuse_migrated_db: bool = True,
        stop_grace_period: float = 5.0,
        users: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.dags_folder = Path(dags_folder).resolve()
        self._owns_home = home is None
        self.home = Path(home or tempfile.mkdtemp(prefix="luma-airflow-")).resolve()
        self.log_dir = self.home / "logs"
        self.db_path = self.home / "airflow.db"
        self.stop_grace_period = stop_grace_period
        api_port, worker_log_port, trigger_log_port = ce.free_ports(3)
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.users = dict(users or {})
        extra_config = {**ce.users_config(self.home, self.users), **(extra_config or {})}
        user_items = {**(extra_config or {}), **{k: v for k, v in (env or {}).items() if k.startswith("AIRFLOW__")}}
        cache_items = {k: v for k, v in user_items.items() if k.lower() not in _SCHEMA_NEUTRAL}
        self._db_cache_key = cache_items if reuse_migrated_db else None
        self.config = ce.build_config(
            home=self.home,
            dags_folder=self.dags_folder,
            db_path=self.db_path,
            api_port=api_port,
            worker_log_port=worker_log_port,
            trigger_log_port=trigger_log_port,
            parallelism=parallelism or ce.DEFAULT_PARALLELISM,
            extra_config=extra_config or {},
        )
        self.env = ce.process_environment(self.home, self.config, env or {})
        self.components: tuple[str, ...] = COMPONENTS
        self._procs: dict[str, ce.ComponentProcess] = {}
        self._client: httpx.Client | None = None
        self._token: str | None = None
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 180.0, *, wait_for_dags: bool = True) -> None:
        """Migrate the database, start every component and wait until the cluster is usable.

        Ready means: the API answers, scheduler/triggerer/dag-processor heartbeat, and (with
        ``wait_for_dags``) every DAG file in ``dags_folder`` has been parsed into DAGs or import errors.
        """
        if self._procs:
            raise AirflowClusterError("the cluster is already running")
        started = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        ce.write_airflow_cfg(self.home / "airflow.cfg", self.config)
        ce.write_passwords(self.home, self.users)
        atexit.register(self.stop)
        ce.prepare_database(
            self.db_path,
            self.env,
            self.log_dir / "db-migrate.log",
            timeout=timeout,
            cache_key_items=self._db_cache_key,
        )
        for name in self.components:
            self._procs[name] = self._spawn(name)
        deadline = started + timeout
        self._wait_healthy(self.components, since=None, timeout=deadline - time.monotonic())
        if wait_for_dags:
            self.wait_for_dags_parsed(timeout=deadline - time.monotonic())
        self.startup_seconds = time.monotonic() - started

    def stop(self, grace_period: float | None = None) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after the grace period."""
        atexit.unregister(self.stop)
        grace = self.stop_grace_period if grace_period is None else grace_period
        if self._client is not None:  # an idle keep-alive connection would delay uvicorn's graceful shutdown
            self._client.close()
            self._client = None
        for proc in self._procs.values():
            proc.signal(signal.SIGTERM, group=False)  # like a service manager; each one stops its children
        deadline = time.monotonic() + grace
        for name, proc in self._procs.items():
            # The api-server keeps no state; after uvicorn's quick shutdown its interpreter can spend seconds
            # in the final garbage collection, so it gets a short grace period.
            limit = min(deadline, time.monotonic() + 2.0) if name == "api-server" else deadline
            proc.reap(max(0.0, limit - time.monotonic()))
        self._procs.clear()
        if self._owns_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> LocalAirflowCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def pid(self, component: str) -> int | None:
        """PID (= process-group id) of a running component, else ``None``."""
        proc = self._procs.get(self._check_name(component))
        return proc.pid if proc is not None and proc.exit_code() is None else None

    def kill_component(
        self, component: str, sig: int = signal.SIGKILL, timeout: float = 30.0, *, group: bool | None = None
    ) -> int | None:
        """Send ``sig`` and wait up to ``timeout`` s for the exit (then SIGKILL); return the exit code.

        By default SIGKILL goes to the whole process group (a crash: the triggerer's trigger-runner child and
        the scheduler's forked workers die too) and other signals only to the main process (a graceful stop,
        as a service manager does it). Whatever is left of the group is SIGKILLed afterwards.
        """
        proc = self._procs.pop(self._check_name(component), None)
        if proc is None:
            return None
        proc.signal(sig, group=sig == signal.SIGKILL if group is None else group)
        return proc.reap(timeout)

    def restart_component(
        self, component: str, timeout: float = 90.0, *, stop_timeout: float = 30.0, wait: bool = True
    ) -> None:
        """(Re)start a component, first SIGTERMing it if it still runs; wait until it heartbeats/answers."""
        self._check_name(component)
        if component in self._procs:
            self.kill_component(component, signal.SIGTERM, timeout=stop_timeout)
        since = datetime.now(timezone.utc)
        self._procs[component] = self._spawn(component)
        if wait:
            self._wait_healthy((component,), since=since, timeout=timeout)

    # ------------------------------------------------------------------ REST
    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Authenticated REST call; ``path`` is relative to ``/api/v2/`` unless it starts with ``/``."""
        import httpx

        if self._client is None:
            self._client = httpx.Client(base_url=self.api_url, timeout=30.0)
        url = path if path.startswith("/") else f"/api/v2/{path}"
        extra_headers = dict(kwargs.pop("headers", None) or {})
        for attempt in range(2):
            if self._token is None and self.users:
                user, (_, password) = next(iter(self.users.items()))
                token_response = self._client.post("/auth/token", json={"username": user, "password": password})
                token_response.raise_for_status()
                self._token = str(token_response.json()["access_token"])
            if self._token is None:  # [core] simple_auth_manager_all_admins: no credentials needed
                token_response = self._client.get("/auth/token")
                token_response.raise_for_status()
                self._token = str(token_response.json()["access_token"])
            headers = {**extra_headers, "Authorization": f"Bearer {self._token}"}
            response = self._client.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401 or attempt:
                return response
            self._token = None
        raise AssertionError("unreachable")  # pragma: no cover

    def user_token(self, user: str) -> str:
        """A fresh API token for one of the cluster's ``users`` (e.g. to call the API as a Viewer)."""
        import httpx

        response = httpx.post(f"{self.api_url}/auth/token", json={"username": user, "password": self.users[user][1]})
        response.raise_for_status()
        return str(response.json()["access_token"])

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.api(method, path, **kwargs)
        retries = 5 if self.config["database.sql_alchemy_conn"].startswith("sqlite") else 0
        for _ in range(retries):
            # SQLite allows one writer: under load the api-server's write can time out ("database is locked") and
            # surfaces as a 500 "Database error". Every call made here is safe to repeat. (Not needed on PostgreSQL.)
            if response.status_code != 500 or "Database error" not in response.text:
                break
            time.sleep(1.0)
            response = self.api(method, path, **kwargs)
        if response.is_error:
            raise AirflowClusterError(f"{method} {path} -> HTTP {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def _paged(self, path: str, key: str) -> list[dict[str, Any]]:
        """All items of a paginated collection (the API caps ``limit`` at ``[api] maximum_page_limit``)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self._json("GET", path, params={"limit": 100, "offset": len(items)})
            items += page[key]
            if not page[key] or len(items) >= page["total_entries"]:
                return items

    def wait_for_dags_parsed(self, timeout: float = 60.0) -> list[str]:
        """Wait until every likely DAG file is parsed (has DAGs or an import error); return the dag ids."""
        candidates = ce.dag_files(self.dags_folder)
        pending: set[str] = set(candidates)

        def parsed() -> list[str] | None:
            dags = self._paged("dags", "dags")
            seen = {d["relative_fileloc"] for d in dags} | {e["filename"] for e in self.import_errors()}
            pending.clear()
            pending.update(c for c in candidates if c not in seen)
            return None if pending else [str(d["dag_id"]) for d in dags]

        return self._poll(parsed, timeout, lambda: f"the dag-processor to parse {sorted(pending)}")

    def import_errors(self) -> list[dict[str, Any]]:
        """Current DAG import errors (``filename``, ``stack_trace``, ...)."""
        return self._paged("importErrors", "import_errors")

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until ``dag_id`` is parsed and visible through the API; return its DAG resource."""

        def found() -> dict[str, Any] | None:
            response = self.api("GET", f"dags/{quote(dag_id, safe='')}")
            return dict(response.json()) if response.status_code == 200 else None

        return self._poll(found, timeout, lambda: f"DAG {dag_id!r} (import errors: {self.import_errors()})")

    def trigger_dag(
        self,
        dag_id: str,
        conf: Mapping[str, Any] | None = None,
        logical_date: datetime | None = None,
        *,
        run_id: str | None = None,
    ) -> str:
        """Unpause ``dag_id`` and create a manual run; return its ``dag_run_id``."""
        path = f"dags/{quote(dag_id, safe='')}"
        self.set_paused(dag_id, False)
        body: dict[str, Any] = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "conf": dict(conf or {}),
        }
        # A client-side run id keeps a repeated POST (see _json) from creating a second run.
        body["dag_run_id"] = run_id or f"manual__{uuid.uuid4().hex[:12]}"
        return str(self._json("POST", f"{path}/dagRuns", json=body)["dag_run_id"])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause a DAG (an asset-scheduled DAG must be unpaused before the event to be queued)."""
        self._json("PATCH", f"dags/{quote(dag_id, safe='')}", json={"is_paused": paused})

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of ``dag_id`` (``dag_run_id``, ``state``, ``run_type``, ...)."""
        return self._paged(f"dags/{quote(dag_id, safe='')}/dagRuns", "dag_runs")

    def extra_links(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, str | None]:
        """The operator extra links of a task instance as the UI gets them (``{name: url}``)."""
        path = f"{run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}/links"
        return dict(self._json("GET", path, params={"map_index": map_index})["extra_links"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG run resource (``state``, ``start_date``, ``conf``, ...)."""
        return dict(self._json("GET", run_path(dag_id, run_id)))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120.0, poll_interval: float = 0.5) -> str:
        """Wait until the run is ``success`` or ``failed`` and return that state."""

        def finished() -> str | None:
            state = self.dag_run(dag_id, run_id)["state"]
            return str(state) if state in _FINISHED_RUN_STATES else None

        return self._poll(
            finished,
            timeout,
            lambda: f"run {dag_id}/{run_id} to finish ({self._ti_summary(dag_id, run_id)})",
            poll_interval,
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """All task instances of a run, mapped ones included (``task_id``, ``map_index``, ``state``, ...)."""
        return self._paged(f"{run_path(dag_id, run_id)}/taskInstances", "task_instances")

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance (``map_index=-1`` for unmapped tasks)."""
        return dict(self._json("GET", ti_path(dag_id, run_id, task_id, map_index if map_index >= 0 else None)))

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: str | Collection[str],
        map_index: int = -1,
        timeout: float = 60.0,
        poll_interval: float = 0.25,
    ) -> dict[str, Any]:
        """Wait until a task instance is in one of ``states`` (e.g. ``"deferred"``); return the TI resource."""
        wanted = {states} if isinstance(states, str) else set(states)

        def reached() -> dict[str, Any] | None:
            ti = self.task_instance(dag_id, run_id, task_id, map_index)
            return ti if ti["state"] in wanted else None

        return self._poll(
            reached, timeout, lambda: f"{dag_id}/{run_id}/{task_id} to be {sorted(wanted)}", poll_interval
        )

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """The value of an XCom entry as JSON (what the API returns for ``deserialize=false``)."""
        path = f"{run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}/xcomEntries/{quote(key, safe='')}"
        return self._json("GET", path, params={"map_index": map_index})["value"]

    def patch_task_instance(
        self, dag_id: str, run_id: str, task_id: str, new_state: str, map_index: int | None = None
    ) -> Any:
        """Set a task instance's state like "Mark success/failed" in the UI (``success``/``failed``/``skipped``)."""
        return self._json("PATCH", ti_path(dag_id, run_id, task_id, map_index), json={"new_state": new_state})

    def clear_task_instances(
        self,
        dag_id: str,
        run_id: str,
        task_ids: Collection[str | tuple[str, int]],
        *,
        only_failed: bool = False,
        include_downstream: bool = False,
    ) -> list[dict[str, Any]]:
        """Clear task instances like the UI's "Clear" does (they are re-run); return the cleared task instances."""
        body = {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [list(t) if isinstance(t, tuple) else t for t in task_ids],
            "only_failed": only_failed,
            "include_downstream": include_downstream,
            "reset_dag_runs": True,
        }
        result = self._json("POST", f"dags/{quote(dag_id, safe='')}/clearTaskInstances", json=body)
        return list(result["task_instances"])

    # ------------------------------------------------------------------ logs and CLI
    def component_logs(self, lines: int | None = None) -> dict[str, str]:
        """stdout+stderr of each component (the last ``lines`` lines if given)."""
        paths = {name: self.log_dir / f"{name}.log" for name in (*self.components, "db-migrate")}
        return {name: ce.read_text(path, lines) for name, path in paths.items() if path.exists()}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """The task's log file for one try, followed by any trigger log files of that try."""
        folder = self.log_dir / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        return "\n".join(ce.read_text(f) for f in sorted(folder.glob(f"attempt={try_number}.log*")))

    def cli(self, *args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this cluster and return the completed process."""
        proc = subprocess.run(
            ce.airflow_command(*args), env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AirflowClusterError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return proc

    # ------------------------------------------------------------------ internals
    def _check_name(self, component: str) -> str:
        if component not in self.components:
            raise ValueError(f"unknown component {component!r}; expected one of {self.components}")
        return component

    def _spawn(self, component: str) -> ce.ComponentProcess:
        """Start one component (``airflow <component>``); subclasses map names to other command lines."""
        return ce.ComponentProcess(component, self.log_dir / f"{component}.log", self.env, self.home)

    def _check_processes(self) -> None:
        for name, proc in self._procs.items():
            if (code := proc.exit_code()) is not None:
                raise AirflowClusterError(f"{name} exited unexpectedly with code {code}\n{self._diagnostics()}")

    def _diagnostics(self) -> str:
        return "\n".join(
            f"----- {name} (last 25 lines of {self.log_dir / (name + '.log')}) -----\n{text}"
            for name, text in self.component_logs(lines=25).items()
        )

    def _poll(
        self, probe: Callable[[], _T | None], timeout: float, what: Callable[[], str], interval: float = 0.5
    ) -> _T:
        import httpx

        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            self._check_processes()
            try:
                result = probe()
            except (httpx.TransportError, AirflowClusterError) as exc:
                result, last_error = None, f"{type(exc).__name__}: {exc}"
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                try:
                    description = what()
                except Exception as exc:  # the description itself may need the API
                    description = f"<{exc}>"
                raise AirflowClusterError(
                    f"timed out after {timeout:.0f}s waiting for {description}\n"
                    f"last error: {last_error or '-'}\n{self._diagnostics()}"
                )
            time.sleep(interval)

    def _wait_healthy(self, components: Collection[str], since: datetime | None, timeout: float) -> None:
        jobs = [_JOB_OF[c] for c in components if c in _JOB_OF]

        def healthy() -> bool | None:
            health = self._json("GET", "monitor/health")
            for job in jobs:
                info = health[job]
                beat = info.get(f"latest_{job}_heartbeat")
                if info.get("status") != "healthy" or not beat:
                    return None
                if since is not None and datetime.fromisoformat(beat.replace("Z", "+00:00")) < since:
                    return None
            return True

        self._poll(healthy, timeout, lambda: f"{', '.join(components)} to become healthy")

    def _ti_summary(self, dag_id: str, run_id: str) -> str:
        return ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}" for t in self.task_instances(dag_id, run_id))
