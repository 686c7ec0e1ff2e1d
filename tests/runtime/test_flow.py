"""The render flow (airflow_provider_luma.runtime.flow / .resume) driven without an operator: a plan and an object
with the RenderTask protocol's members are all it needs."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, NoReturn

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_luma.core.pricing import PriceTable
from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.core.specs.base import RenderSpec, SourceFacts
from airflow_provider_luma.runtime import flow, resume
from airflow_provider_luma.runtime.plan import RenderPlan, RunOptions
from airflow_provider_luma.runtime.task import RenderTask
from airflow_provider_luma.testing import LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger
from tests.conftest import MemoryStateStore


class Task:
    """Not an operator: the members of :class:`RenderTask`, recording what the flow asks of the task."""

    def __init__(self, problems: list[str] | None = None) -> None:
        self.log = logging.getLogger("flow-test")
        self.luma_video_link: str | None = None
        self.luma_delivery: dict[str, str | None] | None = None
        self.problems = problems or []
        self.preflights: list[tuple[str, SourceFacts]] = []

    def defer(
        self, *, trigger: Any, method_name: str, kwargs: dict[str, Any] | None = None, timeout: timedelta | None = None
    ) -> NoReturn:
        raise TaskDeferred(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def preflight_problems(self, context: Any, spec: RenderSpec, source: SourceFacts, table: PriceTable) -> list[str]:
        self.preflights.append((spec.MODEL_ID, source))
        return self.problems


def options(**changes: Any) -> RunOptions:
    values: dict[str, Any] = {
        "task_id": "clip",
        "model_id": "luma-ray-3-2-generate",
        "conn_id": "luma_default",
        "deferrable": True,
        "wait_for_completion": True,
        "reuse_existing": True,
        "resubmit_unknown": False,
        "poll_interval": 0.05,
        "deadline_seconds": 120.0,
        "output": None,
        "asset_alias": None,
        "max_cost": None,
        "max_run_cost": None,
    }
    return RunOptions(**{**values, **changes})


def plan(**changes: Any) -> RenderPlan:
    return RenderPlan(
        options(**changes), GenerateRequest.validate_params({"prompt": "a fox", "resolution": "540p"}), SourceFacts()
    )


def test_the_test_task_has_every_member_of_the_protocol() -> None:
    protocols = [c for c in RenderTask.__mro__ if c.__module__ == RenderTask.__module__]
    members = {name for c in protocols for name in [*vars(c), *c.__annotations__] if not name.startswith("_")}
    task = Task()
    assert members >= {"log", "defer", "preflight_problems", "luma_video_link", "luma_delivery"}
    assert all(hasattr(task, name) for name in members)


async def test_a_deferred_render_submits_defers_and_finishes_from_the_record_without_an_operator(
    luma_conn_env: LumaSimulatorServer,
) -> None:
    task, context = Task(), {"task_state_store": MemoryStateStore()}
    with pytest.raises(TaskDeferred) as deferred:
        flow.execute(task, context, plan)
    assert deferred.value.method_name == "execute_complete"
    assert task.preflights == [("luma-ray-3-2-generate", SourceFacts())]
    assert task.luma_delivery is not None and task.luma_delivery["model"] == "luma-ray-3-2-generate"
    trigger = deferred.value.trigger
    assert isinstance(trigger, LumaGenerationTrigger)
    (event,) = [e.payload async for e in trigger.run()]

    def no_plan() -> RenderPlan:
        raise AssertionError("a resume with a version-3 record never builds the plan")

    result = resume.execute_complete(task, context, options(), event, no_plan)
    assert (result["request_id"], result["mode"], result["resolution"]) == (
        event["request_id"],
        "text_to_video",
        "540p",
    )
    assert (
        task.luma_video_link == result["video_url"] and task.luma_delivery["generation_id"] == result["generation_id"]
    )
    assert len(luma_conn_env.simulator.create_requests()) == 1


def test_a_non_deferrable_render_polls_in_the_worker(luma_conn_env: LumaSimulatorServer) -> None:
    task = Task()
    result = flow.execute(task, {"task_state_store": MemoryStateStore()}, lambda: plan(deferrable=False))
    assert result["generation_id"] and result["estimated_cost_usd"] == 0.15


def test_the_pre_flight_comes_from_the_task_and_refuses_before_any_request(luma_conn_env: LumaSimulatorServer) -> None:
    task = Task(problems=["task 'other', max_run_cost_usd: too much"])
    with pytest.raises(AirflowFailException, match="(?s)Run pre-flight.*task 'other'"):
        flow.execute(task, {"task_state_store": MemoryStateStore()}, plan)
    assert luma_conn_env.simulator.request_log == []


def test_wait_for_completion_false_returns_the_request_at_once(luma_conn_env: LumaSimulatorServer) -> None:
    result = flow.execute(Task(), {"task_state_store": MemoryStateStore()}, lambda: plan(wait_for_completion=False))
    assert result["request_id"] and result["generation_id"] is None and result["model"] == "luma-ray-3-2-generate"
