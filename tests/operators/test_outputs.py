"""Operators storing their renders: output_path, Asset events, the "Luma video" link, max_cost_usd, downloads.

Driven like Airflow does (execute → TaskDeferred → trigger.run() → execute_complete) against the simulator; the
real scheduler/triggerer versions of these are in tests/e2e/test_luma_outputs.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskInstanceKey
from airflow.sdk import AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_luma.core.errors import LumaValidationError
from airflow_provider_luma.core.http import ClientSettings, LumaClient
from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.operators import (
    LumaDownloadVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaVideoLink,
)
from airflow_provider_luma.runtime.record import STATE_KEY
from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY, Fault, LumaSimulatorServer
from airflow_provider_luma.testing._media import EXR_BYTES, sample_mp4
from tests._helpers import finished_render, make, posts, run_deferred


@pytest.fixture
def outputs_context(context: dict[str, Any]) -> dict[str, Any]:
    return {**context, "outlet_events": OutletEventAccessors(), "run_id": "manual__1"}


def alias_events(context: dict[str, Any], alias: str = "luma_videos") -> list[Any]:
    return list(context["outlet_events"][AssetAlias(alias)].asset_alias_events)


def media_statuses(server: LumaSimulatorServer) -> list[int | None]:
    return [e.status for e in server.simulator.request_log if e.path.startswith("/files/")]


async def test_render_is_stored_announced_and_linked(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any], tmp_path: Path
) -> None:
    kwargs = {"prompt": "a fox", "hdr": True, "exr_export": True, "output_path": f"{tmp_path}/{{task_id}}/"}
    op = make(**kwargs)
    assert AssetAlias("luma_videos") in op.outlets, "declared at parse time, so the DAG graph shows it"
    result = await run_deferred(lambda: make(**kwargs), outputs_context)
    gid = result["generation_id"]
    # A folder names files {task_id}-{generation_id}, so a folder of clips reads by task.
    video, exr = tmp_path / "render" / f"render-{gid}.mp4", tmp_path / "render" / f"render-{gid}.exr"
    assert video.read_bytes() == sample_mp4() and exr.read_bytes() == EXR_BYTES
    assert (result["video_path"], result["exr_path"]) == (f"file://{video}", f"file://{exr}")
    events = alias_events(outputs_context)
    assert [e.dest_asset_key.uri for e in events] == [f"file://{video}", f"file://{exr}"]
    extra = events[0].extra
    assert extra["generation_id"] == gid and extra["mode"] == "text_to_video" and extra["estimated_cost_usd"] == 2.1
    assert extra["size_bytes"] == len(sample_mp4()) and len(extra["prompt_sha256"]) == 16
    assert outputs_context["task_state_store"].values[STATE_KEY]["phase"] == "succeeded"
    assert DEFAULT_TEST_API_KEY not in json.dumps([result, [e.extra for e in events]])


def test_the_link_opens_the_clip_in_the_run_gallery() -> None:
    key = TaskInstanceKey(dag_id="d", task_id="t 1", run_id="manual__2026-01-01T00:00:00+00:00", map_index=3)
    link = LumaVideoLink().get_link(make(prompt="p"), ti_key=key)  # the same before, during and after the render
    assert link.endswith("/luma/runs/d/manual__2026-01-01T00%3A00%3A00%2B00%3A00#clip=t%201%5B3%5D")
    unmapped = TaskInstanceKey(dag_id="d", task_id="t", run_id="r", map_index=-1)
    assert LumaVideoLink().get_link(make(prompt="p"), ti_key=unmapped).endswith("/luma/runs/d/r#clip=t")


async def test_url_refused_between_success_and_download_still_delivers(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("airflow_provider_luma.runtime.delivery.time.sleep", lambda s: None)
    luma_conn_env.simulator.inject(Fault.http_error(403, "Request has expired", on="download"))
    result = await run_deferred(lambda: make(prompt="a fox", output_path=str(tmp_path)), outputs_context)
    assert Path(result["video_path"].removeprefix("file://")).read_bytes() == sample_mp4()
    assert media_statuses(luma_conn_env) == [403, 200]
    assert len(posts(luma_conn_env)) == 1


async def test_failed_download_keeps_the_render_for_the_retry(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("airflow_provider_luma.core.media.time.sleep", lambda s: None)
    luma_conn_env.simulator.inject(Fault.cut_body(after_bytes=100, times=4))
    # reuse_existing=False buys a fresh take after a *successful* task; a failed download is not one.
    kwargs = {"prompt": "a fox", "output_path": str(tmp_path), "reuse_existing": False}
    with pytest.raises(AirflowException, match="a retry downloads it again") as caught:
        await run_deferred(lambda: make(**kwargs), outputs_context)
    assert not isinstance(caught.value, AirflowFailException), "retryable"
    assert outputs_context["task_state_store"].values[STATE_KEY]["phase"] == "rendered"
    assert list(tmp_path.iterdir()) == [] and alias_events(outputs_context) == []
    result = make(**kwargs).execute(outputs_context)  # the retry: no defer, no POST, just the download
    assert Path(result["video_path"].removeprefix("file://")).read_bytes() == sample_mp4()
    assert len(posts(luma_conn_env)) == 1


async def test_writes_to_an_object_store_uri(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any]
) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    kwargs = {"prompt": "a fox", "output_path": "memory://renders/{run_id}/{task_id}.mp4"}
    result = await run_deferred(lambda: make(**kwargs), outputs_context)
    # As the installed ObjectStoragePath spells it (memory:/// with Airflow 3.0's universal-pathlib 0.2).
    assert result["video_path"] == str(ObjectStoragePath("memory://renders/manual__1/render.mp4"))
    assert ObjectStoragePath(result["video_path"]).read_bytes() == sample_mp4()


def test_bad_output_path_fails_before_any_http(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any]
) -> None:
    with pytest.raises(LumaValidationError, match=r"output_path: got .*; unknown placeholder\(s\) \{gid\}"):
        make(prompt="a fox", output_path="/tmp/{gid}.mp4")  # a literal: the DAG file's import fails
    op = make(prompt="a fox", output_path="{{ params.path }}")
    op.output_path = "/tmp/{gid}.mp4"  # what templating renders: checked again before any request
    with pytest.raises(AirflowFailException, match=r"output_path: got .*; unknown placeholder\(s\) \{gid\}"):
        op.execute(outputs_context)
    assert luma_conn_env.simulator.request_log == []


def test_over_budget_fails_without_retry_or_http(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any]
) -> None:
    op = make(prompt="a fox", resolution="1080p", hdr=True, exr_export=True, max_cost_usd="5")
    with pytest.raises(AirflowFailException) as caught:
        op.execute(outputs_context)
    text = str(caught.value)
    assert "Estimated cost $8.40 is above max_cost_usd=$5.00" in text
    assert "resolution=1080p" in text and "hdr=True" in text and "exr_export=True" in text
    assert luma_conn_env.simulator.request_log == []
    assert outputs_context["task_state_store"].values == {}, "nothing recorded: nothing was attempted"


def test_budget_applies_dag_wide_through_default_args(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any]
) -> None:
    from airflow.sdk import DAG

    with DAG("budget", schedule=None, default_args={"max_cost_usd": 0.20}):
        cheap = LumaGenerateVideoOperator(task_id="cheap", prompt="p", resolution="540p")
        dear = LumaExtendVideoOperator(task_id="dear", generation_id="g", prompt="p", resolution="720p")
    assert cheap.max_cost_usd == dear.max_cost_usd == 0.20
    with pytest.raises(AirflowFailException, match=r"\$0.30 is above max_cost_usd=\$0.20"):
        dear.execute(outputs_context)
    assert luma_conn_env.simulator.request_log == []


# -- LumaDownloadVideoOperator ---------------------------------------------------------------------------


def test_download_operator_stores_an_earlier_render(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any], tmp_path: Path
) -> None:
    request_id = finished_render(luma_conn_env, "earlier")["request_id"]
    gid = luma_conn_env.simulator.generation(request_id).generation_id
    op = LumaDownloadVideoOperator(
        task_id="fetch", request_id=request_id, generation_id=gid, output_path=f"{tmp_path}/{{request_id}}.mp4"
    )
    result = op.execute(outputs_context)
    assert Path(result["video_path"].removeprefix("file://")) == tmp_path / f"{request_id}.mp4"
    assert (tmp_path / f"{request_id}.mp4").read_bytes() == sample_mp4()
    assert [e.extra["generation_id"] for e in alias_events(outputs_context)] == [gid]
    assert op.luma_video_link == result["video_url"]
    assert len(posts(luma_conn_env)) == 1, "only the earlier render's POST"


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"request_id": "None"}, AirflowFailException, "request_id: got 'None'"),
        ({"output_path": None}, AirflowFailException, "output_path: required"),
        ({"generation_id": "someone-else"}, AirflowFailException, "not someone-else"),
    ],
)
def test_download_operator_refuses_bad_input(
    luma_conn_env: LumaSimulatorServer,
    outputs_context: dict[str, Any],
    tmp_path: Path,
    kwargs: dict[str, Any],
    error: type[Exception],
    fragment: str,
) -> None:
    base = {
        "task_id": "fetch",
        "request_id": finished_render(luma_conn_env, "earlier")["request_id"],
        "output_path": str(tmp_path),
    }
    with pytest.raises(error, match=fragment):
        LumaDownloadVideoOperator(**{**base, **kwargs}).execute(outputs_context)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.luma_simulator(render_seconds=600)
def test_download_operator_waits_for_an_unfinished_render(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any], tmp_path: Path
) -> None:
    settings = ClientSettings(base_url=luma_conn_env.base_url, api_key=DEFAULT_TEST_API_KEY)
    with LumaClient(settings) as client:
        request_id = client.submit(GenerateRequest.validate_params({"prompt": "slow"})).request_id
    op = LumaDownloadVideoOperator(task_id="fetch", request_id=request_id, output_path=str(tmp_path))
    with pytest.raises(AirflowException, match="a retry will look again") as caught:
        op.execute(outputs_context)
    assert not isinstance(caught.value, AirflowFailException)


def test_a_lowered_cap_never_orphans_a_render_already_paid_for(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any]
) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    with pytest.raises(TaskDeferred):
        make(prompt="a fox", resolution="1080p").execute(outputs_context)  # try 1 submits ($1.20)
    with pytest.raises(TaskDeferred):  # try 2, cap lowered meanwhile: re-attaches instead of failing
        make(prompt="a fox", resolution="1080p", max_cost_usd=0.5).execute(outputs_context)
    assert len(posts(luma_conn_env)) == 1


class RecordingTI:
    """What the operators use of ``context["ti"]``: its map index and ``xcom_push``."""

    def __init__(self, map_index: int = -1) -> None:
        self.map_index = map_index
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_mapped_tasks_need_a_file_name_that_differs_per_element(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any], tmp_path: Path
) -> None:
    context = {**outputs_context, "ti": RecordingTI(map_index=1)}
    with pytest.raises(AirflowFailException, match=r"output_path: .* every element would write the same file"):
        make(prompt="a fox", output_path=f"{tmp_path}/{{run_id}}/clip.mp4").execute(context)
    assert luma_conn_env.simulator.request_log == []


def test_unusable_storage_fails_before_any_http(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(AirflowFailException, match="output_path: cannot write to .*nothing was submitted"):
        make(prompt="a fox", output_path=f"{tmp_path}/a-file/").execute(outputs_context)
    assert luma_conn_env.simulator.request_log == []


def test_estimate_is_pushed_as_soon_as_the_render_is_ours(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any]
) -> None:
    """So luma_cost_report counts a render whose task fails later (deadline, failed download)."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    ti = RecordingTI()
    with pytest.raises(TaskDeferred):
        make(prompt="a fox", resolution="1080p").execute({**outputs_context, "ti": ti})
    assert ti.pushed == {"estimated_cost_usd": 1.2}


def test_a_render_whose_task_never_finished_is_finished_not_bought_again(
    luma_conn_env: LumaSimulatorServer, outputs_context: dict[str, Any]
) -> None:
    """reuse_existing=False means "a clear after success buys a fresh take", not "abandon a render in progress"."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:  # try 1 submits, then e.g. its trigger times out
        make(prompt="a fox", reuse_existing=False).execute(outputs_context)
    luma_conn_env.simulator.complete_now(deferred.value.trigger.request_id)
    result = make(prompt="a fox", reuse_existing=False).execute(outputs_context)  # try 2
    assert result["request_id"] == deferred.value.trigger.request_id
    assert len(posts(luma_conn_env)) == 1


@pytest.mark.parametrize(
    ("output_path", "stored"),
    [
        # A folder: placeholders in any of its parts; files are named {task_id}-{generation_id}.mp4 inside.
        ("/clips/{dag_id}/{run_id}/", "/clips/social/manual__1/cut-g-1.mp4"),
        # A file name pattern: placeholders in folder parts and in the name; a value cannot climb out (.. -> _).
        ("/clips/{mode}/{map_index}/{task_id}.mp4", "/clips/reframe/3/cut.mp4"),
        ("/clips/day-{run_id}/x.mp4", "/clips/day-manual__1/x.mp4"),
        ("/clips/{dag_id}/fixed/", "/clips/_/fixed/cut-g-1.mp4"),
    ],
)
def test_placeholders_in_folder_parts(output_path: str, stored: str) -> None:
    from airflow_provider_luma.runtime.storage import parse_output_path

    spec = parse_output_path(output_path)
    assert spec is not None
    dag_id = ".." if "fixed" in output_path else "social"
    values = {"dag_id": dag_id, "run_id": "manual__1", "task_id": "cut", "generation_id": "g-1", "mode": "reframe"}
    assert spec.resolve("mp4", {**values, "map_index": 3, "request_id": "r-1"}).path == stored
    assert spec.static_folder().path == "/clips", "the write probe goes where no placeholder is"
