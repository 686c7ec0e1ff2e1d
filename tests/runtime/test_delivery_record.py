"""The worker writes ``luma_delivery`` (what the gallery may open) into the operator, so the rendered template
fields it sends after each execution carry it; redaction by the secrets masker leaves it intact.

The real task runner sending it to a real api-server is pinned by tests/e2e/test_gallery_forgery.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

from airflow_provider_luma.operators import (
    LumaDownloadVideoOperator,
    LumaGenerateVideoOperator,
    LumaReframeVideoOperator,
)
from airflow_provider_luma.runtime import delivery_record as _delivery_record
from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY, LumaSimulatorServer
from tests._helpers import finished_render, make

FIELD = "luma_delivery"


@pytest.fixture
def ctx(context: dict[str, Any]) -> dict[str, Any]:
    return {**context, "outlet_events": OutletEventAccessors(), "run_id": "manual__1"}


def test_the_record_is_a_template_field_but_never_a_parameter() -> None:
    for op in (
        make(prompt="p"),
        LumaReframeVideoOperator(task_id="r", source_generation_id="g", aspect_ratio="9:16", prompt="p"),
        LumaDownloadVideoOperator(task_id="d", request_id="r", output_path="/tmp/x/"),
    ):
        assert FIELD in op.template_fields and getattr(op, FIELD) is None
        assert type(op).overwrite_rtif_after_execution is True, "re-sent after execute and after a deferral"
    with pytest.raises(TypeError, match="Invalid arguments"):
        LumaGenerateVideoOperator(task_id="t", prompt="p", luma_delivery={"video_path": "/etc/hostname"})


def test_build_keeps_ids_and_paths_only() -> None:
    record = _delivery_record.build(
        {"request_id": "r1", "video_url": "https://cdn/x?sig=1", "video_path": "file:///c/a.mp4", "model": "m"}
    )
    assert record == {"request_id": "r1", "generation_id": None, "model": "m", "backend": None,
                      "video_path": "file:///c/a.mp4", "exr_path": None}  # fmt: skip


async def test_render_records_its_request_at_submit_then_its_stored_file(
    luma_conn_env: LumaSimulatorServer, ctx: dict[str, Any], tmp_path: Path
) -> None:
    first = make(prompt="a fox", output_path=str(tmp_path))
    with pytest.raises(TaskDeferred) as deferred:
        first.execute({**ctx, "task": first})
    submitted = first.luma_delivery
    assert submitted is not None and submitted["request_id"] and submitted["video_path"] is None
    assert (submitted["model"], submitted["backend"]) == ("luma-ray-3-2-generate", "gmi")

    second = make(prompt="a fox", output_path=str(tmp_path))  # a fresh instance resumes, as in Airflow
    event = [e.payload async for e in deferred.value.trigger.run()][0]
    result = second.execute_complete({**ctx, "task": second}, event=event)
    assert second.luma_delivery == {key: result[key] for key in _delivery_record.KEYS}
    assert Path(result["video_path"].removeprefix("file://")).is_file()
    # What the task runner sends: redaction (the presigned URLs are registered secrets) leaves the record whole.
    sent = _serialize_rendered_fields(second)
    assert sent[FIELD] == second.luma_delivery
    assert result["video_url"] not in json.dumps(sent) and DEFAULT_TEST_API_KEY not in json.dumps(sent)


def test_wait_for_completion_false_records_the_request(luma_conn_env: LumaSimulatorServer, ctx: dict[str, Any]) -> None:
    op = make(prompt="a fox", wait_for_completion=False)
    result = op.execute({**ctx, "task": op})
    assert op.luma_delivery is not None and op.luma_delivery["request_id"] == result["request_id"]
    assert op.luma_delivery["video_path"] is None


def test_download_operator_records_the_stored_file(
    luma_conn_env: LumaSimulatorServer, ctx: dict[str, Any], tmp_path: Path
) -> None:
    request_id = finished_render(luma_conn_env, "earlier")["request_id"]
    op = LumaDownloadVideoOperator(task_id="fetch", request_id=request_id, output_path=str(tmp_path))
    result = op.execute(ctx)
    assert op.luma_delivery is not None
    assert op.luma_delivery["request_id"] == request_id and op.luma_delivery["video_path"] == result["video_path"]
    assert _serialize_rendered_fields(op)[FIELD] == op.luma_delivery
