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

* ``luma_connection_extra``: further extras of the ``luma_default`` connection that ``luma_conn_env`` and
  ``luma_airflow`` set, e.g. your account's ``prices`` (needed to test a capped pipeline with edit or reframe,
  which have no built-in price). Give them with a marker, its ``extra`` laid key by key over farther ones (a
  module's ``pytestmark``, a class's)::

    @pytest.mark.luma_connection(extra={"prices": {"luma-ray-3-2-reframe": {"SDR": {"540p": 0.20}}}})
    def test_capped_pipeline(luma_airflow): ...

  or override the fixture (in a ``conftest.py``, a module, a class) to compute them.

This module is imported by every pytest run in an environment that has the provider installed, so it imports
the simulator only inside the fixtures.
"""

from __future__ import annotations

import gc
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
CONNECTION_MARKER = "luma_connection"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``luma_simulator`` and ``luma_connection`` markers (so ``--strict-markers`` accepts them)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**kwargs): keyword arguments for the LumaSimulatorServer of the luma_simulator fixture "
        "(api, time_factor, render_seconds, response_style, rpm_limit, max_concurrent_jobs, api_key, ...)",
    )
    config.addinivalue_line(
        "markers",
        f"{CONNECTION_MARKER}(extra={{...}}): extras of the luma_default connection that luma_conn_env and "
        "luma_airflow set (prices, organization_id, ...)",
    )


def _marker_kwargs(request: pytest.FixtureRequest, name: str = MARKER) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    # iter_markers yields the closest marker first; apply the farthest first so the closest one wins.
    for marker in reversed(list(request.node.iter_markers(name))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{name} takes keyword arguments only, got {marker.args!r}")
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
def luma_connection_extra(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Extras for the ``luma_default`` connection of ``luma_conn_env`` and ``luma_airflow``: the ``extra`` of the
    ``@pytest.mark.luma_connection`` markers, the closest one winning key by key (``{}`` without one)."""
    extra: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(CONNECTION_MARKER))):
        if marker.args or set(marker.kwargs) - {"extra"} or not isinstance(marker.kwargs.get("extra", {}), dict):
            raise pytest.UsageError(
                f"@pytest.mark.{CONNECTION_MARKER} takes one keyword, extra={{...}} (a dict of connection "
                f"extras), got args={marker.args!r} kwargs={marker.kwargs!r}"
            )
        extra.update(marker.kwargs.get("extra", {}))
    return extra


def _conn_json(server: LumaSimulatorServer, extra: dict[str, Any], *, follow_speed: bool = False) -> str:
    try:
        return server.airflow_conn_json(follow_speed=follow_speed, extra=extra)
    except ValueError as error:  # a marker contradicting the server's API: the test's set-up is wrong
        raise pytest.UsageError(str(error)) from None


@pytest.fixture
def luma_conn_env(
    luma_simulator: LumaSimulatorServer, luma_connection_extra: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> LumaSimulatorServer:
    """The ``luma_simulator`` server, with ``AIRFLOW_CONN_LUMA_DEFAULT`` set to reach it during the test (with
    the ``luma_connection_extra`` extras)."""
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", _conn_json(luma_simulator, luma_connection_extra))
    return luma_simulator


@pytest.fixture(scope="session")
def luma_airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated Airflow metadata database (SQLite) that every ``luma_airflow`` test copies, and Airflow's
    in-process Execution API started for the session."""
    from airflow_provider_luma.testing._dag_test import migrated_template
    from airflow_provider_luma.testing._execution_api import warm_up

    # What is alive now (Airflow, SQLAlchemy, pydantic, FastAPI once warm_up has run: ~400k objects) stays alive
    # until the process exits. Frozen, it is no longer re-scanned by every full collection of the session, by
    # pytest's collections when it ends and by the interpreter's last one: ~1.5 s of a one-test run (measured,
    # docs/performance.md). Objects made later, by the tests, are collected as usual; cycles already unreachable
    # when it runs are never freed (a bounded leak, once per session), hence a collection first.
    gc.collect()
    gc.freeze()
    template = migrated_template(tmp_path_factory.mktemp("luma-airflow-template"))
    warm_up()
    gc.freeze()
    return template


@pytest.fixture
def luma_airflow(
    request: pytest.FixtureRequest,
    luma_simulator: LumaSimulatorServer,
    luma_connection_extra: dict[str, Any],
    luma_airflow_template: Path,
    tmp_path: Path,
) -> Iterator[LumaAirflow]:
    """A migrated Airflow home + the ``luma_simulator`` server + ``luma_default`` for ``dag.test()`` (with the
    ``luma_connection_extra`` extras).

    The DAGs at the test module's top level are written to the database, so ``dag.test()`` works on them as
    is; a DAG built inside the test runs with ``luma_airflow.run(dag)`` (or ``register(dag)`` first). On Airflow
    3.3 ``luma_airflow.reviewer`` answers review steps (``review=LumaReview(...)``): the answers the test scripts,
    in order, then "Approve".
    """
    from airflow_provider_luma.testing._dag_test import LumaAirflow, airflow_home, module_dags
    from airflow_provider_luma.testing._reviewer import reviewing

    conn = _conn_json(luma_simulator, luma_connection_extra, follow_speed=True)
    with airflow_home(tmp_path / "airflow-home", luma_airflow_template, conn) as home:
        env = LumaAirflow(luma_simulator, home)
        if dags := module_dags(getattr(request, "module", None)):
            env.register(*dags)
        with reviewing(env.reviewer):
            yield env
