"""pytest fixtures for the Luma simulator, installed with the provider as the ``luma`` pytest11 plugin.

* ``luma_simulator``: a started :class:`~airflow_provider_luma.testing.LumaSimulatorServer` (one per test) with
  renders 100 times faster than real (``time_factor=0.01``).
* ``luma_conn_env``: the same server, with ``AIRFLOW_CONN_LUMA_DEFAULT`` pointing at it for the test.
* ``luma_airflow``: everything ``dag.test()`` of a user's DAG needs: the server, ``luma_default`` pointing at it
  with the poll schedule at the simulator's speed, and a migrated Airflow metadata database for this test
  (:class:`~airflow_provider_luma.testing._dag_test.LumaAirflow`; the migration runs once per machine).

* ``luma_api``: which API the server speaks, ``"gmi"`` (GMI's request queue, the default) or ``"luma_agents"``
  (the native Luma Agents API under ``/v1``; the Connection then has ``"extra": {"api": "luma_agents"}``).

Configure the server with a marker; its keywords go to ``LumaSimulatorServer``, the closest marker winning::

    @pytest.mark.luma_simulator(render_seconds=0, response_style="flat")
    def test_chain(luma_conn_env): ...

    @pytest.mark.luma_simulator(api="luma_agents")
    def test_native(luma_simulator): ...

To run one test against both APIs, parametrize ``luma_api`` indirectly (a marker's ``api``, if any, must agree)::

    @pytest.mark.parametrize("luma_api", ["gmi", "luma_agents"], indirect=True)
    def test_both(luma_conn_env, luma_api): ...

This module is imported by every pytest run in an environment that has the provider installed, so it imports
the simulator only inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_luma.testing._dag_test import LumaAirflow
    from airflow_provider_luma.testing._server import LumaSimulatorServer

FIXTURE_TIME_FACTOR = 0.01
"""Default ``time_factor`` of the ``luma_simulator`` fixture: a 5-s 720p render takes 0.6 s."""

MARKER = "luma_simulator"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``luma_simulator`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**kwargs): keyword arguments for the LumaSimulatorServer of the luma_simulator fixture "
        "(api, time_factor, render_seconds, response_style, rpm_limit, max_concurrent_jobs, api_key, ...)",
    )


def _marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    # iter_markers yields the closest marker first; apply the farthest first so the closest one wins.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keyword arguments only, got {marker.args!r}")
        kwargs.update(marker.kwargs)
    return kwargs


@pytest.fixture
def luma_api(request: pytest.FixtureRequest) -> str:
    """The API the ``luma_simulator`` server speaks: the indirect parameter, else the marker's ``api``, else
    ``"gmi"``."""
    marked = _marker_kwargs(request).get("api")
    param = getattr(request, "param", None)
    if param is not None and marked is not None and param != marked:
        raise pytest.UsageError(f"luma_api={param!r} contradicts @pytest.mark.{MARKER}(api={marked!r})")
    return str(param or marked or "gmi")


@pytest.fixture
def luma_simulator(request: pytest.FixtureRequest, luma_api: str) -> Iterator[LumaSimulatorServer]:
    """A running Luma simulator for this test, configured by ``@pytest.mark.luma_simulator(**kwargs)`` and
    speaking ``luma_api``."""
    from airflow_provider_luma.testing._server import LumaSimulatorServer

    kwargs = {**_marker_kwargs(request), "api": luma_api}
    if "simulator" not in kwargs:
        kwargs.setdefault("time_factor", FIXTURE_TIME_FACTOR)
    with LumaSimulatorServer(**kwargs) as server:
        yield server


@pytest.fixture
def luma_conn_env(luma_simulator: LumaSimulatorServer, monkeypatch: pytest.MonkeyPatch) -> LumaSimulatorServer:
    """The ``luma_simulator`` server, with ``AIRFLOW_CONN_LUMA_DEFAULT`` set to reach it during the test."""
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", luma_simulator.airflow_conn_json())
    return luma_simulator


@pytest.fixture(scope="session")
def luma_airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated Airflow metadata database (SQLite) that every ``luma_airflow`` test copies."""
    from airflow_provider_luma.testing._dag_test import migrated_template, warm_up

    template = migrated_template(tmp_path_factory.mktemp("luma-airflow-template"))
    warm_up()
    return template


@pytest.fixture
def luma_airflow(
    request: pytest.FixtureRequest, luma_simulator: LumaSimulatorServer, luma_airflow_template: Path, tmp_path: Path
) -> Iterator[LumaAirflow]:
    """A migrated Airflow home + the ``luma_simulator`` server + ``luma_default`` for ``dag.test()``.

    The DAGs at the test module's top level are written to the database, so ``dag.test()`` works on them as
    is; a DAG built inside the test runs with ``luma_airflow.run(dag)`` (or ``register(dag)`` first).
    """
    from airflow_provider_luma.testing._dag_test import LumaAirflow, airflow_home, module_dags

    conn = luma_simulator.airflow_conn_json(follow_speed=True)
    with airflow_home(tmp_path / "airflow-home", luma_airflow_template, conn) as home:
        env = LumaAirflow(luma_simulator, home)
        if dags := module_dags(getattr(request, "module", None)):
            env.register(*dags)
        yield env
