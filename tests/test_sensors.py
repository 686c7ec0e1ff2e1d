"""``wait_for_completion=False`` + ``LumaGenerationSensor``: submit now, pick the clip up later, in a real
``dag.test()`` run (deferring sensor, in-process triggerer) and driven directly for each outcome."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred
from airflow.sdk import DAG

from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.operators import LumaGenerateVideoOperator
from airflow_provider_luma.sensors import LumaGenerationSensor
from airflow_provider_luma.testing import Fault, LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger


def test_submit_without_waiting_then_a_sensor_pushes_the_render_result(luma_airflow: Any) -> None:
    with DAG("submit_then_sense", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        submit = LumaGenerateVideoOperator(
            task_id="submit", prompt="a lighthouse", resolution="540p", wait_for_completion=False
        )
        LumaGenerationSensor(task_id="wait", request_id=submit.output["request_id"], poke_interval=0.1)
    run = luma_airflow.run(dag)

    assert run.state == "success"
    submitted = run.get_task_instance("submit").xcom_pull(task_ids="submit")
    sensed = run.get_task_instance("wait").xcom_pull(task_ids="wait")
    (request,) = luma_airflow.simulator.create_requests()
    assert submitted["request_id"] == sensed["request_id"] == request.request_id
    assert submitted["generation_id"] is None and submitted["estimated_cost_usd"] == 0.15
    assert sensed["generation_id"] == luma_airflow.simulator.generation(request.request_id).generation_id
    assert set(sensed) == set(submitted) and sensed["video_url"]


def submitted(params: dict[str, Any] | None = None) -> str:
    return LumaHook().submit_generation(GenerateRequest.validate_params({"prompt": "p", **(params or {})})).request_id


@pytest.mark.luma_simulator(render_seconds=0.3)
async def test_the_sensor_defers_with_the_unchanged_trigger_and_resumes_with_the_result(
    luma_conn_env: LumaSimulatorServer,
) -> None:
    sensor = LumaGenerationSensor(task_id="wait", request_id=submitted(), poke_interval=0.05)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, LumaGenerationTrigger)
    assert trigger.serialize()[0] == "airflow_provider_luma.triggers.LumaGenerationTrigger"
    event = [e.payload async for e in trigger.run()][0]
    assert sensor.execute_complete({}, event=event)["generation_id"]


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        (Fault.fail_generation("content moderated"), AirflowFailException, "failed.*content moderated"),
        (Fault.fail_generation("GPU node lost"), AirflowException, "failed.*GPU node lost"),
    ],
)
@pytest.mark.luma_simulator(render_seconds=0)
def test_a_failed_render_fails_the_sensor_with_the_reason(
    luma_conn_env: LumaSimulatorServer, fault: Fault, error: type[Exception], match: str
) -> None:
    luma_conn_env.simulator.inject(fault)
    sensor = LumaGenerationSensor(task_id="wait", request_id=submitted(), deferrable=False, poke_interval=0)
    with pytest.raises(error, match=match) as raised:
        sensor.execute({})
    assert (type(raised.value) is AirflowFailException) == (error is AirflowFailException)


@pytest.mark.luma_simulator(render_seconds=0)
def test_a_generation_id_alone_is_refused_on_gmi_before_any_request(luma_conn_env: LumaSimulatorServer) -> None:
    sensor = LumaGenerationSensor(task_id="wait", generation_id="g-1", deferrable=False)
    with pytest.raises(AirflowFailException, match="GMI's request queue documents no lookup by generation id"):
        sensor.execute({})
    assert luma_conn_env.simulator.request_log == []


@pytest.mark.luma_simulator(render_seconds=0, api="luma_agents")
def test_a_generation_id_alone_finds_the_render_on_the_native_api(luma_conn_env: LumaSimulatorServer) -> None:
    generation_id = LumaHook().submit_generation(GenerateRequest.validate_params({"prompt": "p"})).generation_id
    sensor = LumaGenerationSensor(task_id="wait", generation_id=generation_id, deferrable=False, poke_interval=0)
    result = sensor.execute({})
    assert (result["generation_id"], result["request_id"]) == (generation_id, generation_id)


def test_the_sensor_needs_an_id() -> None:
    with pytest.raises(ValueError, match="request_id or generation_id is required"):
        LumaGenerationSensor(task_id="wait")


def test_output_path_needs_the_render_to_be_waited_for() -> None:
    with pytest.raises(ValueError, match="output_path: not with wait_for_completion=False"):
        LumaGenerateVideoOperator(task_id="r", prompt="p", wait_for_completion=False, output_path="/tmp/clips/")
