"""Shared fixtures: a fake task_state_store and a context for driving operators outside a scheduler.

Plain helpers (``make``, ``run_deferred``, ``posts``, ``MemoryStateStore``) live in ``tests/_helpers.py``.

The end-to-end suite in tests/e2e runs the same operators under a real scheduler and triggerer.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest

# Keep Airflow's config, logs and SQLite files out of ~/airflow: set before any test module imports airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="luma-tests-airflow-home-"))
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
