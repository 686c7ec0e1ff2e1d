"""What the ``luma_airflow`` pytest fixture sets up: a migrated Airflow metadata database for ``dag.test()``.

``dag.test()`` (Airflow 3.0 → 3.3) needs four things a plain pytest process does not have:

1. **A migrated metadata database.** ``airflow db migrate`` takes seconds, so it runs once per machine (the
   cluster's cached copy, keyed by the Airflow version) and each test gets a copy of that SQLite file.
2. **The ORM pointed at it.** Airflow configures its engine when ``airflow`` is first imported, usually long before
   a fixture runs, so the fixture sets ``[database] sql_alchemy_conn`` and re-configures the ORM, and restores
   the previous engine afterwards.
3. **The DAG serialized in that database.** ``dag.test()`` re-parses the DAG bundles and refuses a DAG that is in
   none of them ("the dag is not serialized"), which is every DAG built in a test. The fixture writes the DAGs it
   is given (:meth:`LumaAirflow.register`, :meth:`LumaAirflow.run`) and every DAG object found in the test's
   module, as the dag-processor would (3.0's ``dag.test()`` does not re-parse, but the run it creates takes the
   DAG's latest version and bundle version from those rows, so the same registration serves every version).
4. **Airflow's in-process Execution API**, which runs the tasks: started once per process, for the one API
   version the Task SDK speaks (:mod:`airflow_provider_luma.testing._execution_api`).

Imported by the fixture only (it imports Airflow's core).
"""

from __future__ import annotations

import os
import secrets
import shutil
import types
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS

from airflow_provider_luma.testing._airflow_db import prepare_database
from airflow_provider_luma.testing._execution_api import JWT_SECRET_VAR, shared_execution_api
from airflow_provider_luma.testing._reviewer import Reviewer

if TYPE_CHECKING:
    from airflow_provider_luma.testing._server import LumaSimulatorServer
    from airflow_provider_luma.testing._state import LumaSimulator

BUNDLE = "dags-folder"  # the bundle Airflow configures by default: the dags folder
TEMPLATE_CACHE_KEY: Mapping[str, str] = {"purpose": "luma_airflow fixture"}


def migrated_template(folder: Path) -> Path:
    """A freshly migrated SQLite metadata database under ``folder`` (copied from the machine's cache if present)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "airflow.db"
    if not db.exists():
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            AIRFLOW_HOME=str(folder),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{db}",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
        )
        prepare_database(db, env, folder / "db-migrate.log", timeout=300, cache_key_items=TEMPLATE_CACHE_KEY)
    return db


def _reconfigure_orm() -> None:
    from airflow import settings

    settings.configure_vars()  # type: ignore[no-untyped-call]
    settings.reconfigure_orm()  # type: ignore[no-untyped-call]


@contextmanager
def airflow_home(home: Path, template_db: Path, conn_json: str) -> Iterator[Path]:
    """Point this process's Airflow at a copy of ``template_db`` in ``home`` and ``luma_default`` at
    ``conn_json``; restore the environment and the previous engine on exit."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dags").mkdir(exist_ok=True)
    db = home / "airflow.db"
    shutil.copyfile(template_db, db)
    values = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        # dag.test() re-parses every bundle; Airflow's ~80 example DAGs would cost seconds per test.
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_LUMA_DEFAULT": conn_json,
        # 3.2 starts a new in-process Execution API for every task dag.test() runs; its lifespan needs this.
        JWT_SECRET_VAR: secrets.token_urlsafe(32),
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        _reconfigure_orm()
        with shared_execution_api():
            yield home
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reconfigure_orm()


class LumaAirflow:
    """What the ``luma_airflow`` fixture gives a test: a migrated Airflow home, the simulator, the connection.

    :param server: the running simulator that ``luma_default`` points at.
    :param home: this test's Airflow home (``airflow.db``, an empty ``dags`` folder).
    """

    def __init__(self, server: LumaSimulatorServer, home: Path) -> None:
        self.server = server
        self.home = home
        self.reviewer = Reviewer()
        """Answers the review steps of ``dag.test()`` (Airflow 3.3): scripted answers in order, then "Approve"."""

    @property
    def simulator(self) -> LumaSimulator:
        """The simulator's state: ``create_requests()``, ``request_log``, ``inject(Fault…)``, …"""
        return self.server.simulator

    def register(self, *dags: Any) -> None:
        """Write DAGs to this test's metadata database, as the dag-processor would (``dag.test()`` needs it)."""
        from airflow import settings
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.collection import update_dag_parsing_results_in_db

        if settings.Session is None:  # pragma: no cover - configured by airflow_home()
            raise RuntimeError("Airflow's ORM is not configured")
        session = settings.Session()
        try:
            DagBundlesManager().sync_bundles_to_db(session=session)  # type: ignore[no-untyped-call]
            session.commit()  # the bundle row first: the DAG rows reference it
            serialized = [_lazy_serialized(d) for d in dags]
            if AIRFLOW_V_3_1_PLUS:
                update_dag_parsing_results_in_db(BUNDLE, None, serialized, {}, None, set(), session=session)
            else:  # 3.0: no parse_duration argument (added in 3.1); typed against the installed (newest) Airflow
                update_30: Any = update_dag_parsing_results_in_db
                update_30(BUNDLE, None, serialized, {}, set(), session=session)
            session.commit()
        finally:
            session.close()

    def run(self, dag: Any, **test_kwargs: Any) -> Any:
        """``register(dag)``, then ``dag.test(**test_kwargs)``; returns the DagRun."""
        self.register(dag)
        return dag.test(**test_kwargs)


def _lazy_serialized(dag: Any) -> Any:
    """``dag`` as the dag-processor hands it to the database: a ``LazyDeserializedDAG``."""
    from airflow.serialization.serialized_objects import LazyDeserializedDAG

    if AIRFLOW_V_3_1_PLUS:
        return LazyDeserializedDAG.from_dag(dag)
    # 3.0: no LazyDeserializedDAG.from_dag (added in 3.1); the dag-processor builds it from the serialized dict.
    # 3.0's LazyDeserializedDAG also lacks a default relative_fileloc: DagBag sets it on the DAG before
    # serializing (to the file path when there is no bundle path), so the dict gets the same here.
    from airflow.serialization import serialized_objects

    data = serialized_objects.SerializedDAG.to_dict(dag)  # type: ignore[attr-defined,unused-ignore]
    data["dag"].setdefault("relative_fileloc", dag.relative_fileloc or dag.fileloc)
    return LazyDeserializedDAG(data=data)


def module_dags(module: types.ModuleType | None) -> list[Any]:
    """The DAG objects a test module holds at its top level (defined there or imported)."""
    if module is None:
        return []
    from airflow.sdk import DAG

    found: Iterable[Any] = vars(module).values()
    return [value for value in found if isinstance(value, DAG)]
