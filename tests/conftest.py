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


class SimulatedTime:
    """A wait's clock (``runtime.polling.Clock``) on the simulator's manual clock: sleeping moves it, nothing else does,
    so a poll loop runs in no real time and the same on a loaded machine as on an idle one."""

    def __init__(self, manual: Any) -> None:
        self.manual = manual
        self.slept: list[float] = []

    def time(self) -> float:
        return float(self.manual())

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        # To the microsecond, so a sleep computed as "until the deadline" lands on it exactly.
        self.manual.set(round(self.manual() + seconds, 6))

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def simulated_time(luma_simulator: Any) -> SimulatedTime:
    """The simulator's clock, stopped at a whole second of now; hand it to a poll loop (or a trigger's ``clock``)."""
    import time

    from airflow_provider_luma.testing import ManualClock

    manual = ManualClock(float(int(time.time())))
    luma_simulator.simulator.set_clock(manual)
    return SimulatedTime(manual)
