"""Operators driven directly (execute → TaskDeferred → trigger.run() → execute_complete) against the simulator.

Durable resume across tries uses a dict-backed stand-in for Airflow 3.3's ``task_state_store``; the real store,
scheduler and triggerer are exercised in tests/e2e.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_luma.exceptions import (
    LumaAuthError,
    LumaBadRequestError,
    LumaConfigurationError,
    LumaConnectionError,
    LumaGenerationCancelled,
    LumaGenerationFailed,
    LumaInsufficientCreditsError,
    LumaRateLimitError,
    LumaResponseError,
    LumaServerError,
    LumaSubmissionOutcomeUnknown,
    LumaTimeoutError,
    LumaValidationError,
)
from airflow_provider_luma.operators import (
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaInterpolateVideoOperator,
)
from airflow_provider_luma.runtime.record import STATE_KEY
from airflow_provider_luma.runtime.task import fail_or_retry
from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY, Fault, LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger
from tests._helpers import make, posts, run_deferred

RESULT_KEYS = {"generation_id", "request_id", "video_url", "exr_url", "mode", "estimated_cost_usd", "billed_blocks"}


async def test_generate_defers_and_returns_chainable_result(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    op = make(prompt="a fox", resolution="1080p", timeout=120)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    _, kwargs = trigger.serialize()
    assert deferred.value.method_name == "execute_complete"
    assert DEFAULT_TEST_API_KEY not in json.dumps(kwargs)
    # The defer() backstop is a little longer than the trigger's own deadline, so the trigger fires first.
    assert deferred.value.timeout is not None and deferred.value.timeout > timedelta(seconds=120)
    result = await run_deferred(lambda: make(prompt="a fox", resolution="1080p", timeout=120), context)
    assert RESULT_KEYS <= result.keys()
    assert result["mode"] == "text_to_video" and result["estimated_cost_usd"] == 1.2 and result["billed_blocks"] == 1
    assert result["generation_id"] == luma_conn_env.simulator.generation(result["request_id"]).generation_id
    assert len(posts(luma_conn_env)) == 1, "the second execute re-attached to the first request"


def test_multiple_outputs_is_on_by_default() -> None:
    assert make(prompt="p").multiple_outputs is True
    assert make(prompt="p", multiple_outputs=False).multiple_outputs is False


IMG = "https://x/a.jpg"
INVALID_INPUT: list[tuple[Any, dict[str, Any], str]] = [
    (LumaGenerateVideoOperator, {"prompt": "p", "aspect_ratio": "2:1"}, "image-only"),
    (LumaGenerateVideoOperator, {"prompt": "p", "hdr": True, "resolution": "540p"}, "540p"),
    (LumaGenerateVideoOperator, {"prompt": "p", "duration": "10s", "start_frame_url": IMG}, "duration=10s"),
    (LumaGenerateVideoOperator, {"prompt": ""}, "blank"),
    (LumaExtendVideoOperator, {"generation_id": "None", "prompt": "p"}, "generation_id"),
    (LumaExtendVideoOperator, {"generation_id": "g", "direction": "sideways", "prompt": "p"}, "direction"),
    (LumaInterpolateVideoOperator, {"start": IMG, "end": "https://x/b.png", "prompt": "p"}, "at least one"),
    (LumaInterpolateVideoOperator, {"start": "g1", "end": "", "prompt": "p"}, "both keyframes"),
]  # fmt: skip
INVALID_IDS = [f"{cls.__name__}-{fragment}" for cls, _, fragment in INVALID_INPUT]


@pytest.mark.parametrize(("cls", "kwargs", "fragment"), INVALID_INPUT, ids=INVALID_IDS)
def test_literal_invalid_input_fails_when_the_dag_is_parsed(cls: Any, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(LumaValidationError, match=fragment):
        make(cls, **kwargs)


@pytest.mark.parametrize(("cls", "kwargs", "fragment"), INVALID_INPUT, ids=INVALID_IDS)
def test_templated_invalid_input_fails_before_any_http(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], cls: Any, kwargs: dict[str, Any], fragment: str
) -> None:
    # Templated at parse time, so nothing can be judged then; rendered to the bad values before execute().
    op = make(cls, **{name: "{{ params." + name + " }}" for name in kwargs})
    for name, value in kwargs.items():
        setattr(op, name, value)
    with pytest.raises(AirflowFailException, match=fragment):
        op.execute(context)
    assert luma_conn_env.simulator.request_log == []


async def test_extend_and_interpolate_send_chain_references(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    sim = luma_conn_env.simulator
    first = await run_deferred(
        lambda: make(prompt="opening"), {"task_state_store": type(context["task_state_store"])()}
    )
    fwd = await run_deferred(
        lambda: make(LumaExtendVideoOperator, generation_id=first["generation_id"], prompt="more"),
        {"task_state_store": type(context["task_state_store"])()},
    )
    back = await run_deferred(
        lambda: make(
            LumaExtendVideoOperator, generation_id=first["generation_id"], direction="backward", prompt="before"
        ),
        {"task_state_store": type(context["task_state_store"])()},
    )
    bridge = await run_deferred(
        lambda: make(
            LumaInterpolateVideoOperator, start=fwd["generation_id"], end="https://img.example.com/end.png", prompt="x"
        ),
        {"task_state_store": type(context["task_state_store"])()},
    )
    assert fwd["mode"] == "extend_forward" and back["mode"] == "extend_backward" and bridge["mode"] == "interpolation"
    assert sim.generation(fwd["request_id"]).payload["start_frame_generation_id"] == first["generation_id"]
    assert sim.generation(back["request_id"]).payload["end_frame_generation_id"] == first["generation_id"]
    assert sim.generation(bridge["request_id"]).payload == {
        "prompt": "x",
        "start_frame_generation_id": fwd["generation_id"],
        "end_frame_url": "https://img.example.com/end.png",
    }


def test_non_deferrable_polls_in_the_worker(luma_conn_env: LumaSimulatorServer, context: dict[str, Any]) -> None:
    result = make(prompt="p", deferrable=False, resolution="540p").execute(context)
    assert result["generation_id"] and result["estimated_cost_usd"] == 0.15
    assert context["task_state_store"].values[STATE_KEY]["phase"] == "succeeded"


@pytest.mark.parametrize(
    ("fault", "exc", "fragment"),
    [
        (
            Fault.fail_generation(reason="GPU fell over", failure_code="generation_failed"),
            AirflowException,
            "GPU fell over",
        ),
        (
            Fault.fail_generation(reason="Prompt was moderated", failure_code="content_moderated"),
            AirflowFailException,
            "moderated",
        ),
    ],
)
async def test_failed_render_fails_the_task_with_the_servers_reason(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], fault: Fault, exc: type[Exception], fragment: str
) -> None:
    luma_conn_env.simulator.inject(fault)
    with pytest.raises(exc, match=fragment) as info:
        await run_deferred(lambda: make(prompt="p"), context)
    assert (type(info.value) is AirflowFailException) == (exc is AirflowFailException)


@pytest.mark.parametrize(
    ("event", "exc"),
    [
        ({"status": "timeout", "request_id": "r", "message": "still processing", "retryable": True}, AirflowException),
        (
            {"status": "error", "request_id": "r", "message": "LumaAuthError: HTTP 401", "retryable": False},
            AirflowFailException,
        ),
        ({"status": "cancelled", "request_id": "r", "message": "cancelled upstream"}, AirflowException),
        (None, AirflowException),
    ],
)
def test_execute_complete_maps_every_status(
    context: dict[str, Any], event: dict[str, Any] | None, exc: type[Exception]
) -> None:
    with pytest.raises(exc) as info:
        make(prompt="p").execute_complete(context, event=event)
    assert (type(info.value) is AirflowFailException) == (exc is AirflowFailException)


def test_permanent_submit_errors_skip_retries(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_LUMA_DEFAULT",
        json.dumps({"conn_type": "luma", "host": luma_conn_env.base_url, "password": "wrong-key"}),
    )
    with pytest.raises(AirflowFailException, match="401") as info:
        make(prompt="p").execute(context)
    assert "wrong-key" not in str(info.value)


# -- durable resume across tries ---------------------------------------------------------------------------------


async def test_retry_reattaches_to_an_in_flight_render(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    with pytest.raises(TaskDeferred):
        make(prompt="p").execute(context)  # try 1: submitted, then the worker "dies"
    result = await run_deferred(lambda: make(prompt="p"), context)  # try 2
    assert len(posts(luma_conn_env)) == 1 and result["generation_id"]


async def test_clear_after_success_reuses_or_rerenders(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    first = await run_deferred(lambda: make(prompt="p"), context)
    again = make(prompt="p").execute(context)  # cleared: reuse_existing=True returns the paid-for clip at once
    assert again["generation_id"] == first["generation_id"] and len(posts(luma_conn_env)) == 1
    fresh = await run_deferred(lambda: make(prompt="p", reuse_existing=False), context)
    assert fresh["generation_id"] != first["generation_id"] and len(posts(luma_conn_env)) == 2


async def test_retry_after_failed_render_submits_fresh(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    luma_conn_env.simulator.inject(Fault.fail_generation(reason="transient"))
    with pytest.raises(AirflowException):
        await run_deferred(lambda: make(prompt="p"), context)
    result = await run_deferred(lambda: make(prompt="p"), context)
    assert result["generation_id"] and len(posts(luma_conn_env)) == 2


async def test_changed_parameters_do_not_reattach(luma_conn_env: LumaSimulatorServer, context: dict[str, Any]) -> None:
    await run_deferred(lambda: make(prompt="p"), context)
    await run_deferred(lambda: make(prompt="p, but at night"), context)
    assert len(posts(luma_conn_env)) == 2


def test_lost_submission_answer_fails_loudly_and_is_not_resent(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    luma_conn_env.simulator.inject(Fault.drop_after_accept())
    with pytest.raises(AirflowFailException, match="may"):
        make(prompt="p").execute(context)
    with pytest.raises(AirflowFailException, match="never learned its request id"):
        make(prompt="p").execute(context)  # a retry must not silently buy another render
    assert len(luma_conn_env.simulator.create_requests()) == 1
    with pytest.raises(TaskDeferred):
        make(prompt="p", resubmit_unknown=True).execute(context)  # explicit opt-in
    assert len(luma_conn_env.simulator.create_requests()) == 2


def test_concurrency_limit_is_waited_out_in_the_triggerer(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    luma_conn_env.simulator.inject(Fault.rate_limit_concurrency(retry_after=60))
    with pytest.raises(TaskDeferred) as waiting:
        make(prompt="p").execute(context)
    assert waiting.value.method_name == "execute_after_rate_limit"
    assert isinstance(waiting.value.trigger, DateTimeTrigger)  # no worker slot held for the 60 s
    assert waiting.value.kwargs == {"rate_limit_waits": 1}
    assert "concurrent-jobs limit" in capsys.readouterr().out
    with pytest.raises(TaskDeferred) as rendering:
        make(prompt="p").execute_after_rate_limit(context, event=None, **waiting.value.kwargs)
    assert isinstance(rendering.value.trigger, LumaGenerationTrigger)
    assert len(luma_conn_env.simulator.create_requests()) == 1


def test_short_rpm_limit_is_slept_through_in_the_worker(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    luma_conn_env.simulator.inject(Fault.rate_limit_rpm(retry_after=1))
    with pytest.raises(TaskDeferred) as rendering:
        make(prompt="p").execute(context)
    assert isinstance(rendering.value.trigger, LumaGenerationTrigger)
    assert [e.status for e in luma_conn_env.simulator.request_log if e.method == "POST"] == [429, 200]


def test_non_deferrable_waits_out_the_concurrency_limit_in_the_worker(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time as time_module

    real_sleep, slept = time_module.sleep, []

    def fast_sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(min(seconds, 0.05))

    monkeypatch.setattr(time_module, "sleep", fast_sleep)
    luma_conn_env.simulator.inject(Fault.rate_limit_concurrency(retry_after=60))
    result = make(prompt="p", deferrable=False).execute(context)  # no triggerer: never defers
    assert result["generation_id"]
    assert 60 <= slept[0] <= 72  # Retry-After plus at most 20 % jitter
    assert [e.status for e in luma_conn_env.simulator.request_log if e.method == "POST"] == [429, 200]


@pytest.mark.parametrize(
    ("error", "retried_by_airflow"),
    [
        (LumaRateLimitError("Too many concurrent jobs", kind="concurrency"), True),
        (LumaServerError("Upstream service unavailable", status_code=502), True),
        (LumaConnectionError("refused"), True),
        (LumaTimeoutError("slow"), True),
        (LumaResponseError("truncated body"), True),
        (LumaGenerationFailed("r", "GPU fell over", failure_code="generation_failed"), True),
        (LumaGenerationFailed("r", "no output", failure_code="output_not_found"), True),
        (LumaGenerationFailed("r", "slow down", failure_code="rate_limited"), True),
        (LumaGenerationCancelled("r", "cancelled upstream"), True),
        (LumaValidationError(["hdr: needs 720p"]), False),
        (LumaAuthError("Invalid API key", status_code=401), False),
        (LumaAuthError("API client is suspended", status_code=403), False),
        (LumaBadRequestError("bad payload", status_code=400), False),
        (LumaBadRequestError("Parameter combination rejected", status_code=422), False),
        (LumaInsufficientCreditsError("Insufficient credits", status_code=402), False),
        (LumaGenerationFailed("r", "Prompt was moderated", failure_code="content_moderated"), False),
        (LumaGenerationFailed("r", "Content moderation rejected the prompt"), False),  # no code passed through
        (LumaGenerationFailed("r", "budget", failure_code="budget_exhausted"), False),
        (LumaSubmissionOutcomeUnknown("answer lost"), False),
        (LumaConfigurationError("no API key"), False),
    ],
)
def test_failure_classes(error: Exception, retried_by_airflow: bool) -> None:
    raised = fail_or_retry(error)
    assert isinstance(raised, AirflowException)
    assert isinstance(raised, AirflowFailException) is (not retried_by_airflow)
