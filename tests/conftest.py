"""Shared fixtures: a fake task_state_store and a context for driving operators outside a scheduler.

Plain helpers (``make``, ``run_deferred``, ``posts``, ``MemoryStateStore``) live in ``tests/_helpers.py``.

The end-to-end suite in tests/e2e runs the same operators under a real scheduler and triggerer.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest

# Keep Airflow's config, logs and SQLite files out of ~/airflow: set before any test module imports airflow. Under
# pytest-xdist every worker inherits the controller's environment; a home this file made is replaced, so no two
# processes share one SQLite file or write one airflow.cfg at once (a home the caller set is kept).
if os.environ.get("AIRFLOW_HOME") in (None, os.environ.get("LUMA_TESTS_AIRFLOW_HOME")):
    _worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix=f"luma-tests-airflow-home-{_worker}-")
    os.environ["LUMA_TESTS_AIRFLOW_HOME"] = os.environ["AIRFLOW_HOME"]
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# The operators' `deferrable` default follows [operators] default_deferrable (read when they are imported); the suite
# exercises the deferring path by default. tests/runtime/test_lineage.py checks both settings in fresh interpreters.
os.environ.setdefault("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")

# After the environment above: the helpers import Airflow, which reads it once.
from tests._helpers import MemoryStateStore  # noqa: E402


@pytest.fixture
def state_store() -> MemoryStateStore:
    return MemoryStateStore()


@pytest.fixture
def context(state_store: MemoryStateStore) -> dict[str, Any]:
    return {"task_state_store": state_store}


# -- pytest-xdist: what must stay in one process ---------------------------------------------------------------
# `make unit` and `make test` run on several workers with `--dist loadgroup`. An Airflow cluster lives in the
# process that started it, so the tests sharing one are a group: the session-wide ``airflow_cluster`` is one group,
# every other e2e or distributed module (each starts its own cluster) is one group. The groups go first, longest
# first, so their waiting overlaps the unit tests on the other workers.
_GROUP_ORDER = ("tests/distributed/", "airflow_cluster", "tests/e2e/")


def _group_of(item: pytest.Item) -> str | None:
    if "airflow_cluster" in getattr(item, "fixturenames", ()):
        return "airflow_cluster"
    path = item.nodeid.split("::", 1)[0]
    return path if path.startswith(("tests/e2e/", "tests/distributed/")) else None


def _rank(item: pytest.Item) -> int:
    group = _group_of(item)
    if group is None:
        return len(_GROUP_ORDER)
    return next(i for i, prefix in enumerate(_GROUP_ORDER) if group.startswith(prefix))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (group := _group_of(item)) is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_rank)  # stable: within a rank, collection order
