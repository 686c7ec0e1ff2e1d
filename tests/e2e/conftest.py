"""Fixtures for end-to-end tests against a real local Airflow (scheduler, dag-processor, triggerer, api-server).

One :class:`~tests.harness.cluster.LocalAirflowCluster` serves the whole session (of each xdist worker); it parses
every DAG file in ``tests/e2e/dags/``, ``gallery_dags/``, ``lineage_dags/`` and ``example_dags/`` and talks to one
session-wide Luma simulator. Each cluster start costs tens of seconds of both cores, so the session cluster carries
every configuration a test file needs rather than a file starting its own: SimpleAuthManager users with the
deny-one-DAG auth manager (the gallery and forgery tests) and the OpenLineage file transport (the lineage tests).
Tests therefore find other tests' runs, renders and events in it: they filter by their own run ids, never assume an
empty list or folder. Component logs live in ``<home>/logs/<component>.log`` and their tails are attached to the
report of any failing test that used the cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from tests.harness.cluster import LocalAirflowCluster

HERE = Path(__file__).parent
DAG_FOLDERS = [HERE / "dags", HERE / "gallery_dags", HERE / "lineage_dags", HERE.parents[1] / "example_dags"]
# SimpleAuthManager roles. The harness logs in as the first user, so it may do everything the tests do (pools).
E2E_USERS = {"admin": ("admin", "admin-pw-1"), "editor": ("user", "editor-pw-1"), "viewer": ("viewer", "viewer-pw-1")}
GALLERY_DAG = "luma_gallery_chain"
# A 5-s 720p render takes 9 s of wall time at this factor. Much shorter renders hit an Airflow 3.3.2 race: the
# LocalExecutor's late "success" event for the deferring run of a TI arrives after its resumption started, and
# the scheduler then fails the resumed run ("finished with state success, but the task instance's state is
# running"). Real renders take minutes, far from that window.
E2E_TIME_FACTOR = 0.15

# The DAG files are parsed by the cluster, never collected as tests.
collect_ignore = ["dags", "gallery_dags", "lineage_dags"]


@pytest.fixture(scope="session")
def luma_sim() -> Iterator[LumaSimulatorServer]:
    """The session's Luma simulator (a real HTTP server on 127.0.0.1) that every cluster process talks to."""
    with LumaSimulatorServer(time_factor=E2E_TIME_FACTOR) as server:
        yield server


@pytest.fixture(scope="session")
def luma_native_sim(luma_sim: LumaSimulatorServer) -> Iterator[LumaSimulatorServer]:
    """The native Luma Agents front over the same simulator state (connection ``luma_native`` in the cluster)."""
    with LumaSimulatorServer(simulator=luma_sim.simulator, api="luma_agents") as server:
        yield server


@pytest.fixture
def sim_settings(luma_sim: LumaSimulatorServer) -> Iterator[Callable[..., None]]:
    """Lets a test change the session simulator's settings (``configure``); restores them afterwards."""
    before = luma_sim.simulator.config
    yield luma_sim.simulator.configure
    luma_sim.simulator.configure(**{f.name: getattr(before, f.name) for f in dataclasses.fields(before)})


@pytest.fixture(scope="session")
def simulator_env() -> Callable[[LumaSimulatorServer], dict[str, str]]:
    """Builds a cluster environment for a given simulator."""
    return _simulator_env


def _simulator_env(server: LumaSimulatorServer) -> dict[str, str]:
    """Cluster environment pointing ``luma_default`` at ``server`` and polling it every second."""
    return {"AIRFLOW_CONN_LUMA_DEFAULT": server.airflow_conn_json(), "LUMA_EXAMPLE_POLL_INTERVAL": "0.5"}


@pytest.fixture(scope="session")
def e2e_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the example DAGs store their clips (``LUMA_EXAMPLE_OUTPUT``) in the shared cluster."""
    return tmp_path_factory.mktemp("luma-output")


@pytest.fixture(scope="session")
def lineage_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session cluster's OpenLineage listener writes one ``ol-*.json`` file per event."""
    return tmp_path_factory.mktemp("lineage-events")


@pytest.fixture(scope="session")
def e2e_env(
    luma_sim: LumaSimulatorServer, luma_native_sim: LumaSimulatorServer, e2e_output: Path, lineage_events: Path
) -> dict[str, str]:
    """Extra environment for every cluster process: ``luma_default`` speaks GMI, ``luma_native`` the native API."""
    return {
        **_simulator_env(luma_sim),
        "AIRFLOW_CONN_LUMA_NATIVE": luma_native_sim.airflow_conn_json(),
        "LUMA_EXAMPLE_OUTPUT": str(e2e_output),
        # The gallery test's viewer may read every DAG but the gallery's (tests.harness._auth.DenyDagAuthManager).
        "LUMA_TEST_DENIED_DAGS": f"viewer:{GALLERY_DAG}",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(lineage_events / "ol")}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "luma-e2e",
    }


@pytest.fixture(scope="session")
def e2e_dags_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DAGs folder holding the e2e DAGs (gallery and lineage ones included) and the shipped example DAGs."""
    folder = tmp_path_factory.mktemp("dags")
    for source in (path for dags in DAG_FOLDERS for path in dags.glob("*.py")):
        shutil.copy(source, folder / source.name)
    return folder


@pytest.fixture(scope="session")
def airflow_cluster(
    e2e_env: dict[str, str], e2e_dags_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalAirflowCluster]:
    """A running cluster shared by the session; ``LUMA_E2E_START_TIMEOUT`` bounds its startup (seconds).

    It has the users of :data:`E2E_USERS` (the REST helper logs in as ``admin``) and the test auth manager.
    """
    cluster = LocalAirflowCluster(
        e2e_dags_folder,
        home=tmp_path_factory.mktemp("airflow-home"),
        env=e2e_env,
        extra_config={"core.auth_manager": "tests.harness._auth.DenyDagAuthManager"},
        users=E2E_USERS,
    )
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
    funcargs = getattr(item, "funcargs", {})
    cluster = funcargs.get("airflow_cluster") or funcargs.get("serial_cluster")
    if report.failed and isinstance(cluster, LocalAirflowCluster):
        for name, text in cluster.component_logs(lines=60).items():
            report.sections.append((f"airflow {name} log (tail, {cluster.log_dir})", text))
    return report
