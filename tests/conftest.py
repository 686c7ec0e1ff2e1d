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
# process that started it, so every e2e module belongs to one of two chains (xdist groups), each run on one worker,
# module after module, while the other workers take the unit tests. Never more than two chains: on 2 cores, four
# clusters at once (one group per module) made each start several times slower and the distributed deployment
# missed its start timeout. The chains hold about the same work (per-module times from `--durations`); they go
# first so the unit tests fill the other workers around them.
_CHAIN_1 = {
    "tests/distributed/test_distributed.py",
    "tests/e2e/test_gallery_browser.py",
    "tests/e2e/test_lineage_chain.py",
}


def _group_of(item: pytest.Item) -> str | None:
    path = item.nodeid.split("::", 1)[0]
    if not path.startswith(("tests/e2e/", "tests/distributed/")):
        return None
    # Everything else shares the session-wide ``airflow_cluster`` or starts a small module cluster.
    return "clusters-1" if path in _CHAIN_1 else "clusters-2"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (group := _group_of(item)) is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    order = {"clusters-1": 0, "clusters-2": 1, None: 2}
    items.sort(key=lambda item: order[_group_of(item)])  # stable: within a chain, collection order
