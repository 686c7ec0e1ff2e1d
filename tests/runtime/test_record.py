"""The durable record (airflow_provider_luma.runtime.record): typed, versioned, and every released version resumes
without a new create request (tests/fixtures/v0_2_state.json: version 2, written by 0.2; v0_1_state.json: 0.1)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.runtime.record import (
    RECORD_VERSION,
    STATE_KEY,
    Phase,
    RecordVersionError,
    RenderFacts,
    RenderRecord,
    parse_record,
    serialise_record,
)
from airflow_provider_luma.testing import LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger
from tests._helpers import make, posts, run_deferred
from tests.conftest import MemoryStateStore

V2 = json.loads((Path(__file__).parents[1] / "fixtures" / "v0_2_state.json").read_text())
V1 = json.loads((Path(__file__).parents[1] / "fixtures" / "v0_1_state.json").read_text())
SUBMITTED, SUBMITTING, SUCCEEDED, RENDERED = V2["records"]


def with_record(record: dict[str, Any]) -> dict[str, Any]:
    store = MemoryStateStore()
    store.values[STATE_KEY] = record
    return {"task_state_store": store}


def bought(params: dict[str, Any]) -> tuple[str, str | None]:
    """A render the released version bought (request id, generation id), made on the simulator directly."""
    job = LumaHook().submit_generation(GenerateRequest.validate_params(params))
    return job.request_id, job.generation_id


def test_the_fixtures_are_what_0_2_wrote() -> None:
    assert {entry["record"]["version"] for entry in V2["records"]} == {2}
    assert [entry["record"]["phase"] for entry in V2["records"]] == ["submitted", "submitting", "succeeded", "rendered"]
    for entry in V2["records"]:
        record = parse_record(entry["record"])
        assert record is not None and record.version == 2 and record.facts is None


async def test_a_version_2_record_in_flight_re_attaches_without_a_new_create(
    luma_conn_env: LumaSimulatorServer,
) -> None:
    request_id, _ = bought(SUBMITTED["params"])
    context = with_record({**SUBMITTED["record"], "request_id": request_id})
    result = await run_deferred(lambda: make(**SUBMITTED["params"]), context)
    assert result["request_id"] == request_id and result["mode"] == "text_to_video"
    assert len(posts(luma_conn_env)) == 1, "only the render 0.2 bought"
    stored = context["task_state_store"].values[STATE_KEY]
    assert (stored["version"], stored["phase"]) == (RECORD_VERSION, "succeeded")


async def test_a_task_deferred_by_0_2_resumes_from_its_version_2_record_and_trigger(
    luma_conn_env: LumaSimulatorServer,
) -> None:
    """Deferred by 0.2, the workers upgraded, the trigger fires: execute_complete meets a record without facts."""
    request_id, _ = bought(SUBMITTED["params"])
    classpath, kwargs = V2["trigger"]
    assert classpath == "airflow_provider_luma.triggers.LumaGenerationTrigger"
    now = time.time()
    trigger = LumaGenerationTrigger(
        **{**kwargs, "request_id": request_id, "deadline": now + 60, "first_poll_at": now, "submitted_at": now}
    )
    (event,) = [e.payload async for e in trigger.run()]
    context = with_record({**SUBMITTED["record"], "request_id": request_id})
    result = make(**SUBMITTED["params"]).execute_complete(context, event=event)
    assert (result["request_id"], result["resolution"], result["estimated_cost_usd"]) == (request_id, "540p", 0.15)
    assert len(posts(luma_conn_env)) == 1
    assert context["task_state_store"].values[STATE_KEY]["render"]["mode"] == "text_to_video"  # gained its facts


def test_a_version_2_succeeded_record_is_reused_without_a_new_create(luma_conn_env: LumaSimulatorServer) -> None:
    request_id, _ = bought(SUCCEEDED["params"])
    luma_conn_env.simulator.complete_now(request_id)
    context = with_record({**SUCCEEDED["record"], "request_id": request_id})
    result = make(**SUCCEEDED["params"]).execute(context)
    assert result["request_id"] == request_id
    assert len(posts(luma_conn_env)) == 1


def test_a_version_2_rendered_record_is_downloaded_not_bought_again(
    luma_conn_env: LumaSimulatorServer, tmp_path: Path
) -> None:
    request_id, _ = bought(RENDERED["params"])
    luma_conn_env.simulator.complete_now(request_id)
    context = with_record({**RENDERED["record"], "request_id": request_id})
    output = RENDERED["output_path"].replace("REPLACE_WITH_TMP_FOLDER", str(tmp_path))
    result = make(**RENDERED["params"], reuse_existing=False, output_path=output).execute(context)
    assert result["video_path"].endswith(".mp4") and len(list(tmp_path.glob("*.mp4"))) == 1
    assert result["request_id"] == request_id
    assert len(posts(luma_conn_env)) == 1, "a rendered record is finished whatever reuse_existing says"


def test_a_version_2_ambiguous_record_still_fails_loudly(luma_conn_env: LumaSimulatorServer) -> None:
    with pytest.raises(AirflowFailException, match="may exist and be billed"):
        make(**SUBMITTING["params"]).execute(with_record(SUBMITTING["record"]))
    assert luma_conn_env.simulator.request_log == []


@pytest.mark.parametrize("version", [4, 99, "3", True, None])
def test_an_unknown_version_is_refused_with_what_to_do(luma_conn_env: LumaSimulatorServer, version: Any) -> None:
    record = {**SUBMITTED["record"], "version": version}
    with pytest.raises(AirflowFailException) as refused:
        make(**SUBMITTED["params"]).execute(with_record(record))
    message = str(refused.value)
    assert f"has version {version!r}" in message and "reads versions 1 to 3" in message
    assert "Nothing was polled or bought" in message
    assert luma_conn_env.simulator.request_log == []


def test_a_damaged_record_is_refused_not_guessed() -> None:
    with pytest.raises(RecordVersionError, match="cannot be read: 'resting' is not a valid Phase"):
        parse_record({**SUBMITTED["record"], "phase": "resting"})
    with pytest.raises(RecordVersionError, match="'render' field does not have this release's shape"):
        parse_record({**SUBMITTED["record"], "version": 3, "render": {"mode": "edit"}})
    assert parse_record(None) is None and parse_record("junk") is None


def test_records_of_every_version_parse_and_serialise_in_the_current_version() -> None:
    v1 = parse_record(V1["records"][0]["record"])
    assert v1 is not None and (v1.version, v1.backend, v1.model, v1.phase) == (1, "gmi", None, Phase.SUBMITTED)
    facts = RenderFacts(
        mode="edit", resolution="720p", duration="5s", aspect_ratio="9:16", quality="SDR",
        source_generation_ids=("g1",), source={"aspect_ratio": "9:16", "duration_seconds": 5.0},
        estimated_cost_usd=None, billed_blocks=1, estimate_text="unknown", prompt_sha256="ab" * 8,
    )  # fmt: skip
    record = RenderRecord(Phase.RENDERED, "luma_agents", "luma-ray-3-2-edit", "f" * 32, 1.5, "r1", "g2", facts)
    value = serialise_record(record)
    assert value["version"] == RECORD_VERSION and value["phase"] == "rendered"
    assert parse_record(json.loads(json.dumps(value))) == record
    moved = record.moved_to(Phase.SUCCEEDED, at=2.0, request_id="r1", generation_id="g2")
    assert (moved.phase, moved.attempted_at, moved.facts) == (Phase.SUCCEEDED, 2.0, facts)


def test_the_phases_are_the_strings_every_release_wrote() -> None:
    assert [p.value for p in Phase] == ["submitting", "rejected", "submitted", "rendered", "succeeded"]
    assert all(p.__doc__ for p in Phase), "each phase is documented where it is defined"


def test_a_record_written_now_holds_no_secret_and_no_prompt(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    with pytest.raises(TaskDeferred):
        make(prompt="a secret plan").execute(context)
    stored = json.dumps(context["task_state_store"].values[STATE_KEY])
    assert "secret plan" not in stored and luma_conn_env.api_key not in stored
