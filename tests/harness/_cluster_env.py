"""Configuration, environment and process helpers for :mod:`tests.harness.cluster`.

Nothing here imports Airflow: the cluster drives the ``airflow`` CLI of the interpreter running this code. The
metadata database comes from :mod:`airflow_provider_luma.testing._airflow_db`, which the ``luma_airflow`` fixture
shares.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from airflow_provider_luma.testing._airflow_db import AirflowCommandError, airflow_command, prepare_database, read_text

__all__ = [
    "COMPONENTS",
    "DEFAULT_PARALLELISM",
    "FAST_CONFIG",
    "CHECKOUT",
    "AirflowClusterError",
    "ComponentProcess",
    "airflow_command",
    "build_config",
    "dag_files",
    "env_name",
    "free_ports",
    "prepare_database",
    "process_environment",
    "read_text",
    "run_path",
    "ti_path",
    "users_config",
    "write_airflow_cfg",
    "write_passwords",
]


class AirflowClusterError(AirflowCommandError):
    """A cluster process failed, a REST call failed, or a wait timed out (``airflow db migrate`` failing at start
    raises the base class)."""


CHECKOUT = Path(__file__).resolve().parents[2]
"""The source checkout holding the ``tests`` package (put on the components' ``PYTHONPATH``)."""

COMPONENTS: tuple[str, ...] = ("scheduler", "dag-processor", "triggerer", "api-server")
"""The long-running Airflow processes of a cluster, in start order."""

DEFAULT_PARALLELISM = 8

# Intervals shortened so that a 2-core machine parses, schedules and resumes deferred tasks within seconds.
FAST_CONFIG: dict[str, str] = {
    "core.load_examples": "False",
    "core.executor": "LocalExecutor",
    "core.dags_are_paused_at_creation": "False",
    "core.simple_auth_manager_all_admins": "True",
    "core.min_serialized_dag_update_interval": "5",
    "api.host": "127.0.0.1",
    "api.workers": "1",
    "scheduler.scheduler_heartbeat_sec": "1",
    "scheduler.job_heartbeat_sec": "2",
    "scheduler.scheduler_idle_sleep_time": "0.5",
    "scheduler.trigger_timeout_check_interval": "2",
    "scheduler.task_queued_timeout_check_interval": "10",
    "triggerer.job_heartbeat_sec": "1",
    "triggerer.triggerer_health_check_threshold": "10",
    "dag_processor.refresh_interval": "2",
    "dag_processor.bundle_refresh_check_interval": "1",
    "dag_processor.min_file_process_interval": "10",
    "dag_processor.parsing_processes": "2",
    "dag_processor.print_stats_interval": "600",
    # The provider's operators follow this setting (as first-party ones do); Airflow ships it false, and a
    # deployment with triggerers sets it true, which is what these clusters mirror.
    "operators.default_deferrable": "True",
}


def env_name(key: str) -> str:
    """Map ``"section.option"`` to ``AIRFLOW__SECTION__OPTION``."""
    section, _, option = key.partition(".")
    if not section or not option:
        raise ValueError(f"config keys must look like 'section.option', got {key!r}")
    return f"AIRFLOW__{section.upper()}__{option.upper()}"


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports that are free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def build_config(
    *,
    home: Path,
    dags_folder: Path,
    db_path: Path,
    api_port: int,
    worker_log_port: int,
    trigger_log_port: int,
    parallelism: int,
    extra_config: Mapping[str, str],
) -> dict[str, str]:
    """Return the full ``{"section.option": value}`` configuration shared by every cluster process."""
    base_url = f"http://127.0.0.1:{api_port}"
    config = dict(FAST_CONFIG)
    config.update(
        {
            "core.dags_folder": str(dags_folder),
            "core.parallelism": str(parallelism),
            "core.fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "core.execution_api_server_url": f"{base_url}/execution/",
            "database.sql_alchemy_conn": f"sqlite:///{db_path}",
            "api.port": str(api_port),
            "api.base_url": base_url,
            "api.secret_key": secrets.token_urlsafe(32),
            "api_auth.jwt_secret": secrets.token_urlsafe(64),  # >= 64 bytes, or PyJWT warns (HS512)
            "logging.base_log_folder": str(home / "logs"),
            "logging.worker_log_server_port": str(worker_log_port),
            "logging.trigger_log_server_port": str(trigger_log_port),
        }
    )
    for key, value in extra_config.items():
        env_name(key)  # validates the key
        config[key.lower()] = value
    return config


def users_config(home: Path, users: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """Options that replace "everyone is admin" by SimpleAuthManager users (``{name: (role, password)}``)."""
    if not users:
        return {}
    return {
        "core.simple_auth_manager_all_admins": "False",
        "core.simple_auth_manager_users": ",".join(f"{name}:{role}" for name, (role, _) in users.items()),
        "core.simple_auth_manager_passwords_file": str(home / "simple_auth_manager_passwords.json"),
    }


def write_passwords(home: Path, users: Mapping[str, tuple[str, str]]) -> None:
    """Write SimpleAuthManager's password file for ``users`` (it generates passwords only for missing users)."""
    if users:
        path = home / "simple_auth_manager_passwords.json"
        path.write_text(json.dumps({name: password for name, (_, password) in users.items()}), encoding="utf-8")
        path.chmod(0o600)


def write_airflow_cfg(path: Path, config: Mapping[str, str]) -> None:
    """Write ``config`` as an ``airflow.cfg`` so that ad-hoc ``airflow`` commands see the same settings.

    Having the file in place also stops every process from racing to generate a default one.
    """
    sections: dict[str, list[str]] = {}
    for key, value in sorted(config.items()):
        section, _, option = key.partition(".")
        sections.setdefault(section, []).append(f"{option} = {value}".replace("%", "%%"))
    lines = ["# Generated by tests.harness.cluster.LocalAirflowCluster; processes also get it as env."]
    for section, options in sections.items():
        lines += ["", f"[{section}]", *options]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


def process_environment(home: Path, config: Mapping[str, str], extra_env: Mapping[str, str]) -> dict[str, str]:
    """Build the environment of every cluster process.

    The test process's own ``AIRFLOW*`` variables are dropped so that they cannot leak into the cluster; the
    interpreter's ``bin`` directory goes first on ``PATH`` so that every child uses this virtualenv. The checkout
    goes first on ``PYTHONPATH``: components load test-side code by dotted path (the test auth manager
    ``tests.harness._auth``, the Celery config ``tests.harness._celery_config``), and their working directory is
    the cluster's home, not the checkout.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST_"))}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW_CONFIG"] = str(home / "airflow.cfg")
    env.update({env_name(key): value for key, value in config.items()})
    env.update(extra_env)
    return env


# On Linux, exec airflow with PR_SET_PDEATHSIG=SIGTERM so that the components go away even when the process
# that started them is SIGKILLed (a preexec_fn would do the same but is unsafe with threads in the parent).
_PDEATHSIG_EXEC = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'airflow', *sys.argv[2:]])\n"
)


class ComponentProcess:
    """One ``airflow <name>`` (or ``airflow <args>``) process in its own process group, its output in ``log_path``."""

    def __init__(
        self, name: str, log_path: Path, env: Mapping[str, str], cwd: Path, args: Sequence[str] | None = None
    ) -> None:
        self.name = name
        self._log = log_path.open("ab")
        self._log.write(f"\n===== starting {name} at {datetime.now(timezone.utc).isoformat()} =====\n".encode())
        self._log.flush()
        cli_args = list(args) if args is not None else [name]
        argv = airflow_command(*cli_args)
        if sys.platform.startswith("linux"):
            argv = [sys.executable, "-c", _PDEATHSIG_EXEC, str(os.getpid()), *cli_args]
        self._proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, so signals reach forked workers too
        )

    @property
    def pid(self) -> int:
        """PID of the component, which is also its process-group id."""
        return self._proc.pid

    def exit_code(self) -> int | None:
        """The exit code if the process has exited, else ``None``."""
        return self._proc.poll()

    def signal(self, sig: int, *, group: bool = True) -> None:
        """Send ``sig`` to the whole process group, or only to the component's main process."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(self._proc.pid, sig)
            else:
                os.kill(self._proc.pid, sig)

    def reap(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the exit, SIGKILL what is left of the group, close the log."""
        try:
            code: int | None = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        self.signal(signal.SIGKILL)  # orphaned LocalExecutor workers, the trigger runner, ...
        if code is None:
            code = self._proc.wait(timeout=10)
        self._log.close()
        return code


def dag_files(dags_folder: Path) -> set[str]:
    """Paths (relative to ``dags_folder``) of the files that Airflow's safe-mode heuristic would parse."""
    found = set()
    for path in dags_folder.rglob("*.py"):
        content = path.read_bytes().lower()
        if "__pycache__" not in path.parts and b"airflow" in content and b"dag" in content:
            found.add(str(path.relative_to(dags_folder)))
    return found


def run_path(dag_id: str, run_id: str) -> str:
    """REST path of a DAG run, relative to ``/api/v2/``."""
    return f"dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"


def ti_path(dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """REST path of a task instance (of one mapped instance when ``map_index`` is given)."""
    path = f"{run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}"
    return f"{path}/{map_index}" if map_index is not None else path
