"""LumaGenerationTrigger.run() under asyncio against the simulator."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY, Fault, LumaSimulatorServer, ManualClock
from airflow_provider_luma.triggers import LumaGenerationTrigger
from tests._helpers import logged_lines
from tests.conftest import SimulatedTime


def submit(params: dict[str, Any] | None = None) -> str:
    return LumaHook().submit_generation(GenerateRequest.validate_params({"prompt": "p", **(params or {})})).request_id


def trigger_for(request_id: str, *, deadline_in: float = 30.0, poll: float = 0.05, **kw: Any) -> LumaGenerationTrigger:
    return LumaGenerationTrigger(
        request_id=request_id, deadline=time.time() + deadline_in, poll_interval=poll, submitted_at=time.time(), **kw
    )


def trigger_on(
    clock: SimulatedTime, request_id: str, *, deadline_in: float = 30.0, poll: float = 0.05, **kw: Any
) -> LumaGenerationTrigger:
    """A trigger that runs on ``clock`` (the simulator's), submitted now on it."""
    now = clock.time()
    trigger = LumaGenerationTrigger(
        request_id=request_id, deadline=now + deadline_in, poll_interval=poll, submitted_at=now, **kw
    )
    trigger.clock = clock
    return trigger


async def first_event(trigger: LumaGenerationTrigger) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1, "a task trigger yields exactly one event"
    return events[0]


def test_serialize_round_trips_json_primitives_without_secrets() -> None:
    trigger = LumaGenerationTrigger(request_id="r1", deadline=1_900_000_000.5, luma_conn_id="c", poll_interval=3)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_luma.triggers.LumaGenerationTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert DEFAULT_TEST_API_KEY not in json.dumps(kwargs)
    clone = LumaGenerationTrigger(**kwargs)
    assert clone.serialize() == (classpath, kwargs)


async def test_success_event_carries_ids_and_urls(
    luma_conn_env: LumaSimulatorServer,
    simulated_time: SimulatedTime,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # On the simulator's clock, moved only by the trigger's sleeps: the first poll comes while the render is still
    # queued however loaded the machine is (on the wall clock a 0.27-s queued state could be missed).
    rid = submit({"hdr": True, "exr_export": True})
    trigger = trigger_on(simulated_time, rid)
    with caplog.at_level(logging.INFO):
        event = await first_event(trigger)
    logs = caplog.text + capsys.readouterr().out
    assert event["status"] == "success" and event["request_id"] == rid
    assert event["generation_id"] == luma_conn_env.simulator.generation(rid).generation_id
    # Presigned URLs stay out of the event (the worker fetches them), so the triggerer's masker never grows.
    assert event["video_url"] is None and event["exr_url"] is None
    assert "submitted -> queued after 0 s" in logs and "processing -> success after 2 s" in logs  # state changes
    assert DEFAULT_TEST_API_KEY not in json.dumps(event) and DEFAULT_TEST_API_KEY not in logs


async def test_failed_generation_event_has_the_reason(luma_conn_env: LumaSimulatorServer) -> None:
    luma_conn_env.simulator.inject(
        Fault.fail_generation(reason="content_moderated: prompt", failure_code="content_moderated")
    )
    event = await first_event(trigger_for(submit()))
    assert event["status"] == "failed" and "content_moderated" in event["message"]
    assert event["failure_code"] == "content_moderated" and event["retryable"] is False


@pytest.mark.luma_simulator(render_seconds=60)
async def test_deadline_gives_timeout_event_naming_the_request(
    luma_conn_env: LumaSimulatorServer, simulated_time: SimulatedTime
) -> None:
    rid = submit()
    trigger = trigger_on(simulated_time, rid, deadline_in=0.6, poll=0.1)
    event = await first_event(trigger)
    assert simulated_time.time() == pytest.approx(trigger.deadline)  # it ended at its deadline, not later
    assert event["status"] == "timeout" and rid in event["message"] and "may still finish" in event["message"]
    assert event["retryable"] is True


async def test_transient_poll_failures_keep_polling(luma_conn_env: LumaSimulatorServer) -> None:
    rid = submit()
    luma_conn_env.simulator.inject(
        Fault.http_error(500, on="poll"),
        Fault.html_error(502, on="poll"),
        Fault.drop_connection(on="poll"),
        Fault.malformed(on="poll"),
        Fault.rate_limit_rpm(retry_after=1, on="poll"),
    )
    event = await first_event(trigger_for(rid, poll=0.05))
    assert event["status"] == "success"
    assert not luma_conn_env.simulator.pending_faults


async def test_unknown_request_is_an_error_event_not_an_endless_poll(luma_conn_env: LumaSimulatorServer) -> None:
    event = await first_event(trigger_for("no-such-request"))
    assert event["status"] == "error" and "LumaNotFoundError" in event["message"] and event["retryable"] is False


async def test_missing_connection_becomes_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_LUMA_DEFAULT", raising=False)
    event = await first_event(trigger_for("r1"))
    assert event["status"] == "error" and not event["retryable"]
    assert "'luma_default' is not defined" in event["message"] and "r1 was already bought" in event["message"]


@pytest.mark.luma_simulator(render_seconds=60)
async def test_first_poll_waits_until_first_poll_at(
    luma_conn_env: LumaSimulatorServer, simulated_time: SimulatedTime
) -> None:
    rid = submit()
    start = simulated_time.time()
    trigger = trigger_on(simulated_time, rid, deadline_in=0.6, first_poll_at=start + 0.5)
    await first_event(trigger)
    polls = [e.at - start for e in luma_conn_env.simulator.request_log if e.method == "GET" and e.request_id == rid]
    assert polls and polls[0] == pytest.approx(0.5)


@pytest.mark.luma_simulator(render_seconds=60)
async def test_triggers_taken_over_mid_render_spread_their_first_polls_over_one_gap(
    luma_conn_env: LumaSimulatorServer,
) -> None:
    # A survivor triggerer starts all of a dead peer's triggers at once; their first polls must not land together,
    # while a trigger that was just handed over (first poll due a moment ago) still polls at once. Each trigger
    # runs on its own clock, moved only by its sleeps: its first sleep is when its first poll comes.
    rids = [submit() for _ in range(31)]
    now = float(int(time.time()))
    taken_over = [
        LumaGenerationTrigger(request_id=rid, deadline=now + 2, poll_interval=1.0, first_poll_at=now - 60,
                              submitted_at=now - 61)
        for rid in rids[:30]
    ]  # fmt: skip
    fresh = LumaGenerationTrigger(
        request_id=rids[30], deadline=now + 2, poll_interval=1.0, first_poll_at=now - 0.5, submitted_at=now - 1
    )
    clocks = {}
    for trigger in [*taken_over, fresh]:
        trigger.clock = clocks[trigger.request_id] = SimulatedTime(ManualClock(now))
    events = await asyncio.gather(*(first_event(trigger) for trigger in [*taken_over, fresh]))
    assert {event["status"] for event in events} == {"timeout"}
    spread = sorted(clocks[trigger.request_id].slept[0] for trigger in taken_over)
    assert 0.0 <= spread[0] and spread[-1] <= 1.0, spread  # within one gap (1 s this late in the render)
    assert spread[-1] - spread[0] > 0.5, spread  # spread out (30 uniform draws: this fails with p ~ 1e-7)
    assert clocks[fresh.request_id].slept[0] == 0.0


async def test_on_kill_is_idempotent_and_says_the_render_is_billed(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = LumaGenerationTrigger(request_id="r9", deadline=time.time() + 60)
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(trigger.on_kill(), timeout=1)
        await asyncio.wait_for(trigger.on_kill(), timeout=1)
    lines = logged_lines(caplog, capsys, "Luma request r9")
    assert len(lines) == 2 and all("billed" in line for line in lines)


@pytest.mark.luma_simulator(render_seconds=0.2)
async def test_worker_fetches_fresh_urls_after_an_event_without_them(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_provider_luma.operators import LumaGenerateVideoOperator

    def make() -> LumaGenerateVideoOperator:
        return LumaGenerateVideoOperator(task_id="t", prompt="p", hdr=True, exr_export=True, poll_interval=0.05)

    with pytest.raises(TaskDeferred) as deferred:
        make().execute(context)
    event = await first_event(deferred.value.trigger)
    assert event["status"] == "success" and event["video_url"] is None
    result = make().execute_complete(context, event=event)
    assert result["video_url"].startswith(luma_conn_env.root_url) and result["exr_url"]
    assert result["generation_id"] == luma_conn_env.simulator.generation(result["request_id"]).generation_id


def test_the_first_trigger_of_a_process_imports_the_client_off_the_event_loop() -> None:
    # A triggerer's loop runs every trigger: the first one must not compile and import the hook, HTTP client and
    # specs on it (a fresh process here, so nothing is imported yet; the trigger gets a missing connection).
    code = """
import asyncio, json, sys, threading
threads = {}
class Recorder:  # sees every module the import system looks for, in the thread that imports it
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in ("airflow_provider_luma.hooks", "airflow_provider_luma.core.http"):
            threads[name] = threading.current_thread() is threading.main_thread()
sys.meta_path.insert(0, Recorder)
from airflow_provider_luma.triggers import LumaGenerationTrigger
async def main():
    trigger = LumaGenerationTrigger(request_id="r1", deadline=2e9)
    return [event.payload["status"] async for event in trigger.run()]
print(json.dumps({"events": asyncio.run(main()), "on_loop_thread": threads}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["events"] == ["error"]
    assert result["on_loop_thread"] == {"airflow_provider_luma.hooks": False, "airflow_provider_luma.core.http": False}
