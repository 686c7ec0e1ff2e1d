"""A render re-attached by a retry keeps its original poll schedule and clock, in the trigger and in the worker's own
loop; and triggers serialized by released versions still deserialize and run. Time is the simulator's manual clock
(``time.time``/``time.sleep`` patched to it for the worker, the trigger's ``clock`` for the triggerer)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, TaskDeferred

from airflow_provider_luma.core.specs.generate import GenerateRequest
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.operators import LumaGenerateVideoOperator
from airflow_provider_luma.testing import LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger
from tests.conftest import SimulatedTime

FIXTURES = Path(__file__).parents[1] / "fixtures"
FIRST_POLL = 36.0  # a 720p 5s render: expected 60 s, first poll at 60 % (core/schedule.py), then every 5 s


def render(**kwargs: Any) -> LumaGenerateVideoOperator:
    return LumaGenerateVideoOperator(task_id="render", prompt="p", resolution="720p", duration="5s", **kwargs)


def gets(server: LumaSimulatorServer, request_id: str) -> list[float]:
    return [e.at for e in server.simulator.request_log if e.method == "GET" and e.request_id == request_id]


def posts(server: LumaSimulatorServer) -> int:
    return sum(1 for e in server.simulator.request_log if e.method == "POST")


@dataclass
class Scene:
    """A 60-s render's world: the worker's clock and sleeps are the simulator's, so it passes in no real time."""

    clock: SimulatedTime
    t0: float
    caplog: pytest.LogCaptureFixture
    capsys: pytest.CaptureFixture[str]

    def logs(self) -> str:
        """What the task and the trigger logged so far (Airflow's structlog writes to stdout)."""
        return self.caplog.text + self.capsys.readouterr().out


@pytest.fixture
def scene(
    simulated_time: SimulatedTime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> Scene:
    monkeypatch.setattr(time, "time", simulated_time.time)
    monkeypatch.setattr(time, "sleep", simulated_time.sleep)
    caplog.set_level(logging.INFO)
    return Scene(simulated_time, simulated_time.time(), caplog, capsys)


@pytest.mark.luma_simulator(render_seconds=60)
async def test_a_retry_that_reattaches_defers_with_the_original_first_poll_and_clock(
    luma_conn_env: LumaSimulatorServer, scene: Scene, context: dict[str, Any]
) -> None:
    clock, t0 = scene.clock, scene.t0
    with pytest.raises(TaskDeferred) as first:
        render().execute(context)
    assert first.value.trigger.submitted_at == t0 and first.value.trigger.first_poll_at == t0 + FIRST_POLL

    clock.manual.advance(22)  # that try is lost (its worker died); the retry runs 22 s after the submission
    with pytest.raises(TaskDeferred) as retry:
        render().execute(context)
    trigger = retry.value.trigger
    assert isinstance(trigger, LumaGenerationTrigger) and posts(luma_conn_env) == 1  # re-attached, nothing bought
    assert (trigger.submitted_at, trigger.first_poll_at) == (t0, t0 + FIRST_POLL)  # not pushed 36 s out again
    assert trigger.deadline == t0 + 22 + 3600  # the deadline is this try's own budget

    trigger.clock = clock
    (event,) = [e.payload async for e in trigger.run()]
    polls = [at - t0 for at in gets(luma_conn_env, trigger.request_id)]
    assert polls[:2] == [22.0, FIRST_POLL]  # the retry's own check, then the trigger's first poll on schedule
    assert event["status"] == "success" and event["elapsed_seconds"] == 61.0
    logs = scene.logs()
    assert "submitted -> processing after 36 s" in logs and "processing -> success after 61 s" in logs
    assert render().execute_complete(context, event=event)["request_id"] == trigger.request_id


@pytest.mark.luma_simulator(render_seconds=60)
def test_the_worker_loop_keeps_the_schedule_too_and_logs_as_the_trigger_does(
    luma_conn_env: LumaSimulatorServer, scene: Scene, context: dict[str, Any]
) -> None:
    clock, t0 = scene.clock, scene.t0
    with pytest.raises(AirflowException, match="was still not confirmed at its deadline") as timed_out:
        render(deferrable=False, timeout=20).execute(context)  # its first poll (36 s) is past this deadline
    assert type(timed_out.value) is AirflowException  # retryable: a retry re-attaches
    assert clock.time() == t0 + 20 and gets(luma_conn_env, luma_conn_env.simulator.generations()[0].request_id) == []

    clock.manual.advance(2)
    result = render(deferrable=False).execute(context)
    request_id = result["request_id"]
    assert posts(luma_conn_env) == 1 and result["video_url"]
    polls = [at - t0 for at in gets(luma_conn_env, request_id)]
    assert polls == [22.0, 36.0, 41.0, 46.0, 51.0, 56.0, 61.0]  # the resume check, then the trigger's schedule
    logs = scene.logs()
    assert f"Luma request {request_id}: submitted -> processing after 36 s" in logs
    assert f"Luma request {request_id}: processing -> success after 61 s" in logs


def released_triggers() -> dict[str, dict[str, Any]]:
    """Trigger kwargs exactly as released versions serialized them (``tests/fixtures``; never regenerated)."""
    v0_1 = json.loads((FIXTURES / "v0_1_state.json").read_text())["trigger"]
    today = json.loads((FIXTURES / "trigger_kwargs_71adcc7.json").read_text())
    found = {"0.1 render": v0_1, "71adcc7 render": today["operator"], "71adcc7 sensor": today["sensor"]}
    for classpath, _kwargs in found.values():
        assert classpath == "airflow_provider_luma.triggers.LumaGenerationTrigger"
    return {name: kwargs for name, (_classpath, kwargs) in found.items()}


@pytest.mark.parametrize("name", list(released_triggers()))
async def test_triggers_serialized_by_released_versions_deserialize_and_run(
    luma_conn_env: LumaSimulatorServer, simulated_time: SimulatedTime, name: str
) -> None:
    kwargs = released_triggers()[name]
    request_id = LumaHook().submit_generation(GenerateRequest.validate_params({"prompt": "p"})).request_id
    # Moved in time as a whole (a render submitted now on the simulator's clock), every other field as written.
    shift = simulated_time.time() - kwargs["submitted_at"]
    moved = {
        **kwargs,
        "request_id": request_id,
        **{key: kwargs[key] + shift for key in ("deadline", "first_poll_at", "submitted_at") if kwargs[key]},
    }
    trigger = LumaGenerationTrigger(**moved)
    classpath, written = trigger.serialize()
    assert classpath == "airflow_provider_luma.triggers.LumaGenerationTrigger"
    assert {key: written[key] for key in kwargs} == moved  # every field it was written with is read back unchanged
    trigger.clock = simulated_time
    (event,) = [e.payload async for e in trigger.run()]
    assert (event["status"], event["request_id"]) == ("success", request_id)
    first = gets(luma_conn_env, request_id)[0] - moved["submitted_at"]
    assert first == pytest.approx(kwargs["first_poll_at"] - kwargs["submitted_at"] if kwargs["first_poll_at"] else 0)
