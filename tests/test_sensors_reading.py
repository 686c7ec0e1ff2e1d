"""The sensor reads a wait's end as a render task does (one reading: ``runtime.polling.read_event``), and its own
status checks in the same words as the trigger and the worker loop."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_luma.core.specs.generate import GenerateRequest
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.operators import LumaGenerateVideoOperator
from airflow_provider_luma.sensors import LumaGenerationSensor
from airflow_provider_luma.testing import LumaSimulatorServer
from tests._helpers import logged_lines


def ended(status: str, **fields: Any) -> dict[str, Any]:
    event = {"status": status, "request_id": "r-1", "generation_id": None, "video_url": None, "exr_url": None,
             "message": "why", "failure_code": None, "retryable": False, "elapsed_seconds": 1.0}  # fmt: skip
    return event | fields


@pytest.mark.parametrize(
    "event",
    [
        ended("failed", message="content moderated", failure_code="content_moderated"),
        ended("failed", message="GPU node lost", retryable=True),
        ended("cancelled", message="cancelled by the service", retryable=True),
        ended("timeout", message="still processing at its deadline", retryable=True),
        ended("error", message="LumaAuthenticationError: 401"),
        ended("error", message="LumaServerError: 503", retryable=True),
        {"no": "status"},
        None,
    ],
    ids=["failed-permanent", "failed-transient", "cancelled", "timeout", "error-permanent", "error-retryable",
         "not-an-event", "none"],
)  # fmt: skip
def test_the_sensor_ends_as_a_render_task_does(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], event: dict[str, Any] | None
) -> None:
    with pytest.raises(AirflowException) as task:
        LumaGenerateVideoOperator(task_id="render", prompt="p").execute_complete(context, event=event)
    with pytest.raises(AirflowException) as sensor:
        LumaGenerationSensor(task_id="wait", request_id="r-1").execute_complete({}, event=event)
    assert (type(sensor.value), str(sensor.value)) == (type(task.value), str(task.value))
    assert luma_conn_env.simulator.request_log == []  # read from the event alone: nothing looked up


@pytest.mark.luma_simulator(render_seconds=0.3)
def test_the_sensor_logs_state_changes_in_the_words_of_every_wait(
    luma_conn_env: LumaSimulatorServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = LumaHook().submit_generation(GenerateRequest.validate_params({"prompt": "p"})).request_id
    sensor = LumaGenerationSensor(task_id="wait", request_id=request_id, deferrable=False, poke_interval=0.01)
    with caplog.at_level(logging.INFO):
        result = sensor.execute({})
    assert result["request_id"] == request_id and result["generation_id"]
    changes = [line for line in logged_lines(caplog, capsys, f"Luma request {request_id}: ") if " -> " in line]
    assert changes and "submitted -> " in changes[0] and re.search(r"-> success after \d+ s", changes[-1]), changes
    assert len(changes) <= 3  # queued, processing, success: a change is logged once, not at every poke
