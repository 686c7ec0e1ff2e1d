"""Throw-away PostgreSQL, Redis and S3 (moto) servers on 127.0.0.1, for the distributed deployment and benchmarks.

* :class:`PostgresServer` runs Debian's ``postgresql`` binaries (``initdb`` / ``pg_ctl``) on a free port in a
  temporary directory, with trust authentication for 127.0.0.1 only. Both tools refuse to run as root, so as root
  they run as the ``postgres`` user (``runuser``), and the directory is created under ``/tmp`` (pytest's
  ``/tmp/pytest-of-root`` is mode 0700 and not reachable for that user).
* :class:`RedisServer` runs ``redis-server`` on a free port without persistence.
* :class:`S3Server` runs moto's S3 server (``moto.server.ThreadedMotoServer``) as a real HTTP server in this
  process and hands out an ``aws`` Airflow connection that points at it.

Nothing here imports Airflow.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness._cluster_env import AirflowClusterError, free_ports

__all__ = ["PostgresServer", "RedisServer", "S3Server", "wait_for_port"]


def wait_for_port(port: int, timeout: float, what: str) -> None:
    """Wait until something accepts TCP connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AirflowClusterError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s") from None
            time.sleep(0.1)


def _pg_binary(name: str) -> str:
    """``initdb`` / ``pg_ctl``: Debian keeps them in /usr/lib/postgresql/<major>/bin, off PATH."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    found = candidates[-1] if candidates else shutil.which(name)
    if not found:
        raise AirflowClusterError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return found


class PostgresServer:
    """A private PostgreSQL cluster with one database; ``url`` is a SQLAlchemy URL for it (psycopg2, no password).

    :param database: the database created at start.
    :param user: the superuser ``initdb`` creates (trust authentication, so no password).
    """

    def __init__(self, database: str = "airflow", user: str = "airflow") -> None:
        self.database, self.user = database, user
        (self.port,) = free_ports(1)
        self.root = Path(tempfile.mkdtemp(prefix="luma-pg-", dir="/tmp"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self._started = False

    @property
    def url(self) -> str:
        """``postgresql+psycopg2://user@127.0.0.1:port/database``."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """A libpq connection string (for psycopg2 / psql)."""
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.database}"

    def _run(self, *argv: str, timeout: float = 120.0) -> None:
        command = list(argv)
        if os.geteuid() == 0:  # initdb and pg_ctl refuse to run as root
            shutil.chown(self.root, "postgres", "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise AirflowClusterError(f"{' '.join(argv[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}\n{log}")

    def start(self) -> None:
        """``initdb``, ``pg_ctl start`` (fsync off: the data is thrown away) and ``CREATE DATABASE``."""
        self._run(_pg_binary("initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--no-instructions")  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(_pg_binary("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-o", options,
                  "start")  # fmt: skip
        self._started = True
        import psycopg2

        conn = psycopg2.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement in its own connection and return its rows (empty for statements without rows)."""
        import psycopg2

        conn = psycopg2.connect(self.dsn)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(sql, params or None)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            conn.close()

    def stop(self) -> None:
        """``pg_ctl stop -m immediate`` and remove the directory."""
        if self._started:
            self._started = False
            try:
                self._run(_pg_binary("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", timeout=60)
            except AirflowClusterError:
                pass  # the directory goes anyway
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """``redis-server`` on a free port of 127.0.0.1, no RDB/AOF persistence; ``url`` is the broker URL."""

    def __init__(self) -> None:
        (self.port,) = free_ports(1)
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="luma-redis-"))

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:port/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Start the server and wait until it accepts connections."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise AirflowClusterError("redis-server not found: install it (apt-get install redis-server)")
        log = (self._dir / "redis.log").open("ab")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self._dir)]  # fmt: skip
        self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        wait_for_port(self.port, timeout, "redis-server")

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        shutil.rmtree(self._dir, ignore_errors=True)


class S3Server:
    """moto's S3 server as a real HTTP server on 127.0.0.1 (a thread of this process).

    :param buckets: buckets created at start.
    """

    ACCESS_KEY = "luma-test-key"
    SECRET_KEY = "luma-test-secret"  # moto accepts any credentials
    REGION = "us-east-1"

    def __init__(self, *buckets: str) -> None:
        (self.port,) = free_ports(1)
        self.buckets = buckets
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and create the buckets."""
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        wait_for_port(self.port, 20.0, "moto's S3 server")
        for bucket in self.buckets:
            self.client().create_bucket(Bucket=bucket)

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.ACCESS_KEY,
            aws_secret_access_key=self.SECRET_KEY,
            region_name=self.REGION,
        )

    def airflow_conn_json(self) -> str:
        """An ``aws`` connection (for ``AIRFLOW_CONN_<ID>``) whose ``endpoint_url`` extra points here."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": self.ACCESS_KEY,
                "password": self.SECRET_KEY,
                "extra": {"endpoint_url": self.endpoint_url, "region_name": self.REGION},
            }
        )

    def stop(self) -> None:
        """Stop the server (its data lives in this process's memory and goes with it)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
