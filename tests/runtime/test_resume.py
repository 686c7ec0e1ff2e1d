"""A resume starts from the durable record (airflow_provider_luma.runtime.resume): it pulls no upstream XCom and
never reads or hashes a source video again, so what changed upstream since the render was bought cannot change it."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

import airflow_provider_luma.testing as testing_pkg
from airflow_provider_luma.operators import LumaEditVideoOperator, LumaGenerateVideoOperator, LumaReframeVideoOperator
from airflow_provider_luma.runtime.record import STATE_KEY, parse_record
from airflow_provider_luma.testing import Fault, LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger
from tests._helpers import make, posts, run_deferred
from tests.conftest import MemoryStateStore

SAMPLE = Path(testing_pkg.__file__).with_name("sample.mp4")


class UpstreamTI:
    """A task instance whose upstream ``master`` result can change between execute and resume; counts pulls."""

    task_id, dag_id, run_id, map_index = "reframe", "d", "r", -1

    def __init__(self, result: dict[str, Any]) -> None:
        self.result, self.pulls, self.pushed = result, 0, {}

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        self.pulls += 1
        return self.result[key]

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class Task:
    upstream_task_ids = {"master"}


async def trigger_event(deferred: TaskDeferred) -> dict[str, Any]:
    trigger = deferred.trigger
    assert isinstance(trigger, LumaGenerationTrigger)
    return [e.payload async for e in trigger.run()][0]


async def test_a_resume_finishes_from_the_record_although_the_upstream_xcom_changed(
    luma_conn_env: LumaSimulatorServer,
) -> None:
    master = await run_deferred(
        lambda: make(prompt="a 16:9 master", resolution="540p", duration="10s"),
        {"task_state_store": MemoryStateStore()},
    )
    ti = UpstreamTI({"generation_id": master["generation_id"], "aspect_ratio": "16:9", "duration": "10s"})
    context = {"task_state_store": MemoryStateStore(), "ti": ti, "task": Task()}

    def reframe() -> LumaReframeVideoOperator:
        return make(
            LumaReframeVideoOperator, source_generation_id=master["generation_id"], aspect_ratio="9:16", prompt="sky"
        )

    with pytest.raises(TaskDeferred) as deferred:
        reframe().execute(context)
    assert ti.pulls > 0, "a fresh start reads what the upstream task says about the source"
    event = await trigger_event(deferred.value)
    # Upstream changed since (a rerun of master with another ratio and length): a rebuilt plan would now refuse
    # the reframe (same ratio) or report the wrong duration.
    ti.result, ti.pulls = {"generation_id": master["generation_id"], "aspect_ratio": "9:16", "duration": "5s"}, 0
    creates = len(posts(luma_conn_env))
    result = reframe().execute_complete(context, event=event)
    assert ti.pulls == 0, "the resume read the durable record, not the upstream XComs"
    assert len(posts(luma_conn_env)) == creates, "no create request on resume"
    assert (result["model"], result["aspect_ratio"], result["duration"]) == ("luma-ray-3-2-reframe", "9:16", "10s")
    assert result["source_generation_ids"] == [master["generation_id"]]
    assert result["request_id"] == event["request_id"]


class EditOfAFile:
    """An edit task of a copy of the sample clip, with its context, as a scheduler would run it again and again."""

    def __init__(self, tmp_path: Path) -> None:
        self.clip = tmp_path / "clip.mp4"
        shutil.copy(SAMPLE, self.clip)
        self.context: dict[str, Any] = {"task_state_store": MemoryStateStore()}

    def op(self) -> LumaEditVideoOperator:
        return make(LumaEditVideoOperator, source_video=str(self.clip), prompt="p", edit_strength="flex_1")

    def deferred(self) -> TaskDeferred:
        """Run ``execute`` until it defers (to the trigger, or to wait out a rate limit)."""
        with pytest.raises(TaskDeferred) as deferred:
            self.op().execute(self.context)
        return deferred.value

    def record(self) -> dict[str, Any]:
        return dict(self.context["task_state_store"].values[STATE_KEY])


async def test_a_resume_finishes_although_the_source_video_was_deleted(
    luma_conn_env: LumaSimulatorServer, tmp_path: Path
) -> None:
    edit = EditOfAFile(tmp_path)
    event = await trigger_event(edit.deferred())
    edit.clip.unlink()  # the old resume re-read and re-hashed it here, and failed
    result = edit.op().execute_complete(edit.context, event=event)
    assert len(posts(luma_conn_env)) == 1
    assert (result["model"], result["mode"], result["source_generation_ids"]) == ("luma-ray-3-2-edit", "edit", [])
    assert (result["estimated_cost_usd"], result["generation_id"]) == (None, event["generation_id"])
    assert edit.record()["phase"] == "succeeded"


async def test_a_rate_limit_wake_up_sends_the_request_without_hashing_the_video_again(
    luma_conn_env: LumaSimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit = EditOfAFile(tmp_path)
    luma_conn_env.simulator.inject(Fault.rate_limit_concurrency(retry_after=60))
    waiting = edit.deferred()
    assert waiting.method_name == "execute_after_rate_limit"

    def no_inspection(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the source video was inspected (read and hashed) again on wake-up")

    monkeypatch.setattr("airflow_provider_luma.core.specs.source.inspect_video", no_inspection)
    with pytest.raises(TaskDeferred) as rendering:
        edit.op().execute_after_rate_limit(edit.context, event=None, **(waiting.kwargs or {}))
    assert isinstance(rendering.value.trigger, LumaGenerationTrigger)
    (sent,) = [e.payload for e in luma_conn_env.simulator.create_requests()]
    assert base64.b64decode(sent["payload"]["source_data"]) == SAMPLE.read_bytes()  # the bytes, read to be sent


def test_a_wake_up_refuses_a_source_video_that_changed_since_it_was_checked(
    luma_conn_env: LumaSimulatorServer, tmp_path: Path
) -> None:
    edit = EditOfAFile(tmp_path)
    luma_conn_env.simulator.inject(Fault.rate_limit_concurrency(retry_after=60))
    waiting = edit.deferred()
    edit.clip.write_bytes(edit.clip.read_bytes() + b"\0" * 16)
    with pytest.raises(AirflowFailException, match="changed since this task first checked it"):
        edit.op().execute_after_rate_limit(edit.context, event=None, **(waiting.kwargs or {}))
    assert luma_conn_env.simulator.create_requests() == []


async def test_the_record_carries_what_the_finish_needs(luma_conn_env: LumaSimulatorServer) -> None:
    context = {"task_state_store": MemoryStateStore()}
    with pytest.raises(TaskDeferred):
        make(LumaGenerateVideoOperator, prompt="a fox", resolution="1080p", hdr=True).execute(context)
    record = parse_record(context["task_state_store"].values[STATE_KEY])
    assert record is not None and record.facts is not None and record.phase == "submitted"
    facts = record.facts
    assert (facts.mode, facts.resolution, facts.quality, facts.duration) == ("text_to_video", "1080p", "HDR", "5s")
    assert facts.estimated_cost_usd is not None and facts.prompt_sha256 is not None
    assert "fox" not in json.dumps(context["task_state_store"].values[STATE_KEY]), "a digest, never the prompt"


async def test_a_wake_up_never_sends_a_file_the_task_does_not_name(
    luma_conn_env: LumaSimulatorServer, tmp_path: Path
) -> None:
    """A record is writable through the REST API: one naming another file is not trusted on wake-up."""
    edit = EditOfAFile(tmp_path)
    other = tmp_path / "other.mp4"
    other.write_bytes(SAMPLE.read_bytes() + b"forged")
    luma_conn_env.simulator.inject(Fault.rate_limit_concurrency(retry_after=60))
    waiting = edit.deferred()
    forged = edit.record()
    forged["render"] = {**forged["render"], "source_video": {**forged["render"]["source_video"], "label": str(other)}}
    forged["render"]["source_video"]["size"] = other.stat().st_size
    edit.context["task_state_store"].values[STATE_KEY] = forged
    with pytest.raises(TaskDeferred):
        edit.op().execute_after_rate_limit(edit.context, event=None, **(waiting.kwargs or {}))
    (sent,) = [e.payload for e in luma_conn_env.simulator.create_requests()]
    assert base64.b64decode(sent["payload"]["source_data"]) == SAMPLE.read_bytes()
