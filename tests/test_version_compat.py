"""The version module's promises (:mod:`airflow_provider_luma.version_compat`): a feature a release lacks fails
naming the release it needs, and where ``task_state_store`` is missing (Airflow < 3.3) the durable record of a
render lives in one Variable per task instance, written through the Task SDK and kept after the task succeeds."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pendulum
import pytest
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator
from airflow_provider_luma.runtime.record import STATE_KEY
from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY, LumaSimulatorServer
from airflow_provider_luma.version_compat import (
    AIRFLOW_V_3_3_PLUS,
    AIRFLOW_VERSION,
    VariableStateStore,
    require,
    variable_key,
)
from tests._helpers import MemoryStateStore, make, run_deferred

START = pendulum.datetime(2026, 1, 1, tz="UTC")


@pytest.mark.parametrize(
    ("minimum", "fails"),
    [((3, 0), False), (AIRFLOW_VERSION[:2], False), ((AIRFLOW_VERSION[0], AIRFLOW_VERSION[1] + 1), True)],
)
def test_require_names_the_feature_and_both_versions(minimum: tuple[int, int], fails: bool) -> None:
    if not fails:
        require("The review step", minimum)
        return
    installed = ".".join(map(str, AIRFLOW_VERSION))
    wanted = f"{minimum[0]}.{minimum[1]}"
    with pytest.raises(RuntimeError, match=rf"^The review step needs Airflow {wanted} or newer; this is Airflow "):
        require("The review step", minimum)
    with pytest.raises(RuntimeError, match=rf"this is Airflow {installed}\.$"):
        require("The review step", minimum)


def test_variable_keys_fit_airflow_and_name_one_task_instance() -> None:
    long_id = "x" * 250
    keys = {
        variable_key("dag", "render", "manual__1", -1),
        variable_key("dag", "render", "manual__1", 0),
        variable_key("dag", "render", "manual__2", -1),
        variable_key("dag", "render2", "manual__1", -1),
        variable_key(long_id, long_id, long_id, 7),
    }
    assert len(keys) == 5 and all(len(k) <= 250 and k.startswith("luma_render.") for k in keys)
    assert variable_key("dag", "render", "manual__1", -1) == variable_key("dag", "render", "manual__1", -1)


def test_the_variable_store_round_trips_and_honours_retention(luma_airflow: Any) -> None:
    """Written and read back inside a real task (the Task SDK's Variable channel), as the record is."""
    seen: dict[str, Any] = {}

    def use_store(**context: Any) -> None:
        store = VariableStateStore(context["ti"])
        store.set(STATE_KEY, {"phase": "submitted", "request_id": "r-1"}, retention=timedelta(days=30))
        seen["fresh"] = store.get(STATE_KEY)
        seen["other key"] = store.get("something_else")
        store.set(STATE_KEY, {"phase": "succeeded"}, retention=timedelta(seconds=-1))
        seen["expired"] = store.get(STATE_KEY)
        store.set(STATE_KEY, {"phase": "succeeded", "request_id": "r-1"}, retention=timedelta(days=30))
        seen["key"] = store.key

    with DAG("variable_store", schedule=None, start_date=START) as dag:
        PythonOperator(task_id="store", python_callable=use_store)
    assert luma_airflow.run(dag).state == "success"
    assert seen["fresh"] == {"phase": "submitted", "request_id": "r-1"}
    assert seen["other key"] is None and seen["expired"] is None
    from airflow.models.variable import Variable

    # Kept after the task succeeded (clearing it must find the render), readable by a person.
    stored = json.loads(Variable.get(seen["key"]))
    assert stored[STATE_KEY] == {"phase": "succeeded", "request_id": "r-1"} and "expires_at" in stored


def test_a_render_keeps_its_record_where_this_airflow_keeps_durable_state(luma_airflow: Any) -> None:
    """Airflow 3.3: ``task_state_store`` (no Variable is written). Older: the task instance's Variable."""
    with DAG("record_home", schedule=None, start_date=START) as dag:
        LumaGenerateVideoOperator(task_id="render", prompt="a fox", resolution="540p")
    run = luma_airflow.run(dag)
    assert run.state == "success"
    from airflow.models.variable import Variable

    raw = Variable.get(variable_key("record_home", "render", run.run_id, -1), default_var=None)
    if AIRFLOW_V_3_3_PLUS:
        assert raw is None
        return
    record = json.loads(raw)[STATE_KEY]
    (create,) = luma_airflow.simulator.create_requests()
    assert record["phase"] == "succeeded" and record["request_id"] == create.request_id


async def test_the_record_holds_no_key_and_no_url(luma_conn_env: LumaSimulatorServer) -> None:
    """What a person who may read Variables (Airflow < 3.3) or the state store sees: ids and digests only."""
    store = MemoryStateStore()
    result = await run_deferred(lambda: make(prompt="a fox at dawn"), {"task_state_store": store})
    stored = json.dumps(store.values[STATE_KEY])
    assert result["generation_id"] in stored and result["video_url"].startswith("http")
    assert DEFAULT_TEST_API_KEY not in stored and "http" not in stored and "a fox at dawn" not in stored
