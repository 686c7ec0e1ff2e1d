"""Fixtures for the distributed e2e tests (all in ``test_distributed.py``): one deployment per module (PostgreSQL,
Redis, CeleryExecutor with two workers, two triggerers, scheduler, dag-processor, api-server), one Luma simulator
and one S3 (moto) server.

The deployment stops when that module ends, and this folder sorts before ``tests/e2e/``: it is gone before the
LocalExecutor cluster of ``tests/e2e`` starts, so the two never compete for the 2 cores of a CI machine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from tests.harness._services import S3Server
from tests.harness.distributed import DistributedAirflowCluster

DAGS = Path(__file__).parent / "dags"
PIPELINE_DAG = Path(__file__).parents[2] / "example_dags" / "example_luma_content_pipeline.py"
BUCKET = "luma-e2e"
# 540p 5-s clips render in about 4 s of wall time: every worker slot is busy during the fan-out.
TIME_FACTOR = 0.08

collect_ignore = ["dags"]


@pytest.fixture(scope="module")
def dist_sim() -> Iterator[LumaSimulatorServer]:
    """The simulator every process of the deployment talks to."""
    with LumaSimulatorServer(time_factor=TIME_FACTOR) as server:
        yield server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 with the bucket ``luma-e2e``."""
    with S3Server(BUCKET) as server:
        yield server


@pytest.fixture(scope="module")
def dist_cluster(dist_sim: LumaSimulatorServer, s3: S3Server) -> Iterator[DistributedAirflowCluster]:
    """The running deployment; ``LUMA_E2E_START_TIMEOUT`` bounds its startup (seconds)."""
    # Not under pytest's basetemp: other pytest sessions on the machine may prune it while this one runs.
    dags = Path(tempfile.mkdtemp(prefix="luma-dist-dags-"))
    for source in [*DAGS.glob("*.py"), PIPELINE_DAG]:
        shutil.copy(source, dags / source.name)
    env = {
        "AIRFLOW_CONN_LUMA_DEFAULT": dist_sim.airflow_conn_json(),
        "AIRFLOW_CONN_AWS_DEFAULT": s3.airflow_conn_json(),
        "LUMA_EXAMPLE_POLL_INTERVAL": "0.5",
        # Workers on other machines share no disk: every clip goes to the bucket.
        "LUMA_EXAMPLE_OUTPUT": f"s3://aws_default@{BUCKET}/clips",
    }
    cluster = DistributedAirflowCluster(dags, env=env)  # its own temporary home, removed at stop()
    try:
        cluster.start(timeout=float(os.environ.get("LUMA_E2E_START_TIMEOUT", "240")))
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(dags, ignore_errors=True)


@pytest.fixture
def sim_settings(dist_sim: LumaSimulatorServer) -> Iterator[Any]:
    """Lets a test change simulator settings; restores them afterwards."""
    before = dist_sim.simulator.config
    yield dist_sim.simulator.configure
    dist_sim.simulator.configure(**{f.name: getattr(before, f.name) for f in dataclasses.fields(before)})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    cluster = getattr(item, "funcargs", {}).get("dist_cluster")
    if report.failed and isinstance(cluster, DistributedAirflowCluster):
        for name, text in cluster.component_logs(lines=40).items():
            report.sections.append((f"airflow {name} log (tail, {cluster.log_dir})", text))
    return report
