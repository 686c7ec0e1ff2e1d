"""Fixtures for end-to-end tests against a real local Airflow (scheduler, dag-processor, triggerer, api-server).

One :class:`~airflow_provider_luma.testing.cluster.LocalAirflowCluster` serves the whole session; it parses
every DAG file in ``tests/e2e/dags/``. Component logs live in ``<home>/logs/<component>.log`` and their tails
are attached to the report of any failing test that used the cluster.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from airflow_provider_luma.testing.cluster import LocalAirflowCluster

DAGS_FOLDER = Path(__file__).parent / "dags"

# The DAG files are parsed by the cluster, never collected as tests.
collect_ignore = ["dags"]


@pytest.fixture(scope="session")
def e2e_env() -> dict[str, str]:
    """Extra environment for every cluster process (e.g. ``AIRFLOW_CONN_LUMA_DEFAULT``); override to extend."""
    return {}


@pytest.fixture(scope="session")
def airflow_cluster(e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflowCluster]:
    """A running cluster shared by the session; ``LUMA_E2E_START_TIMEOUT`` bounds its startup (seconds)."""
    cluster = LocalAirflowCluster(DAGS_FOLDER, home=tmp_path_factory.mktemp("airflow-home"), env=e2e_env)
    try:
        cluster.start(timeout=float(os.environ.get("LUMA_E2E_START_TIMEOUT", "180")))
        yield cluster
    finally:
        cluster.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    cluster = getattr(item, "funcargs", {}).get("airflow_cluster")
    if report.failed and isinstance(cluster, LocalAirflowCluster):
        for name, text in cluster.component_logs(lines=60).items():
            report.sections.append((f"airflow {name} log (tail, {cluster.log_dir})", text))
    return report
