"""Every mode of every operator on both backends (GMI's queue and the native Luma Agents API), through the real
client and the simulator: one table, parametrized by the API the connection speaks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

import airflow_provider_luma.testing as testing_pkg
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.operators import (
    LumaDownloadVideoOperator,
    LumaEditVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaInterpolateVideoOperator,
    LumaReframeVideoOperator,
)
from airflow_provider_luma.runtime.record import STATE_KEY
from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY, Fault, LumaSimulatorServer
from tests._helpers import MemoryStateStore, fresh_context, make, posts, run_deferred

BOTH = pytest.mark.parametrize("luma_api", ["gmi", "luma_agents"], indirect=True)
SAMPLE = Path(testing_pkg.__file__).with_name("sample.mp4")
IMG = "https://images.example.com/frame.png"


Source = Callable[[], dict[str, Any]]
MODES: list[tuple[str, Any, Callable[[str], dict[str, Any]], str]] = [
    ("text", LumaGenerateVideoOperator, lambda g: {"prompt": "p", "resolution": "540p"}, "text_to_video"),
    ("image", LumaGenerateVideoOperator, lambda g: {"prompt": "p", "start_frame_url": IMG}, "image_to_video"),
    ("extend-fwd", LumaExtendVideoOperator, lambda g: {"prompt": "p", "generation_id": g}, "extend_forward"),
    ("extend-back", LumaExtendVideoOperator, lambda g: {"prompt": "p", "generation_id": g, "direction": "backward"},
     "extend_backward"),
    ("interpolate", LumaInterpolateVideoOperator, lambda g: {"prompt": "p", "start": g, "end": IMG}, "interpolation"),
    ("reframe", LumaReframeVideoOperator, lambda g: {"prompt": "p", "source_generation_id": g, "aspect_ratio": "9:16"},
     "reframe"),
    ("edit", LumaEditVideoOperator, lambda g: {"prompt": "p", "source_generation_id": g, "edit_strength": "flex_1"},
     "edit"),
    ("edit-inline", LumaEditVideoOperator, lambda g: {"prompt": "p", "source_video": str(SAMPLE)}, "edit"),
]  # fmt: skip


@BOTH
@pytest.mark.parametrize(("cls", "kwargs", "mode"), [m[1:] for m in MODES], ids=[m[0] for m in MODES])
async def test_every_mode_on_both_backends(
    luma_conn_env: LumaSimulatorServer, luma_api: str, cls: Any, kwargs: Callable[[str], dict[str, Any]], mode: str
) -> None:
    source = await run_deferred(lambda: make(LumaGenerateVideoOperator, prompt="source"), fresh_context())
    if mode == "interpolation" and luma_api == "luma_agents":
        # Luma's docs: "interpolation from a prior generation plus another keyframe is not available yet".
        with pytest.raises(AirflowFailException, match="does not offer interpolation"):
            make(cls, **kwargs(source["generation_id"])).execute(fresh_context())
        assert len(posts(luma_conn_env)) == 1
        return
    result = await run_deferred(lambda: make(cls, **kwargs(source["generation_id"])), fresh_context())
    assert (result["mode"], result["backend"]) == (mode, luma_api)
    assert result["model"] == cls.MODEL_ID and result["video_url"]
    record = luma_conn_env.simulator.generation(luma_conn_env.simulator.request_id_of(result["generation_id"]))
    assert (record.api, record.model) == (luma_api, cls.MODEL_ID)
    assert len(posts(luma_conn_env)) == 2, "one create request per render"
    if luma_api == "luma_agents":
        assert result["request_id"] == result["generation_id"]  # the native API has one id
    assert DEFAULT_TEST_API_KEY not in json.dumps(result)


@BOTH
async def test_results_have_the_same_keys_on_both_backends(luma_conn_env: LumaSimulatorServer, luma_api: str) -> None:
    result = await run_deferred(lambda: make(prompt="p", output_path="/tmp/luma-test-backends/"), fresh_context())
    assert set(result) == {
        "generation_id", "request_id", "model", "backend", "mode", "source_generation_ids", "video_url", "exr_url",
        "video_path", "exr_path", "video_bytes", "exr_bytes", "estimated_cost_usd", "billed_blocks", "resolution",
        "duration", "aspect_ratio", "hdr",
    }  # fmt: skip
    assert Path(result["video_path"].removeprefix("file://")).read_bytes() == SAMPLE.read_bytes()


@BOTH
def test_download_operator_on_both_backends(luma_conn_env: LumaSimulatorServer, luma_api: str, tmp_path: Path) -> None:
    from airflow_provider_luma.core.specs import GenerateRequest

    job = LumaHook().submit_generation(GenerateRequest.validate_params({"prompt": "earlier"}))
    sim = luma_conn_env.simulator
    sim.complete_now(job.request_id if luma_api == "gmi" else sim.request_id_of(job.request_id))
    op = LumaDownloadVideoOperator(task_id="dl", request_id=job.request_id, output_path=str(tmp_path) + "/")
    result = op.execute(fresh_context())
    assert Path(result["video_path"].removeprefix("file://")).read_bytes() == SAMPLE.read_bytes()
    assert result["backend"] == luma_api


NATIVE_ONLY = [
    ("keyframes", {"prompt": "p", "keyframes": [IMG, IMG], "keyframe_indexes": [0, 96]}, "keyframes"),
    ("draft-360p", {"prompt": "p", "resolution": "360p"}, "text_to_video"),
    ("user-id", {"prompt": "p", "user_id": "customer-42"}, "text_to_video"),
]


@pytest.mark.parametrize(("params", "mode"), [(p, m) for _, p, m in NATIVE_ONLY], ids=[i for i, _, _ in NATIVE_ONLY])
@pytest.mark.parametrize("luma_api", ["luma_agents"], indirect=True)
async def test_native_only_parameters_render_on_the_native_api(
    luma_conn_env: LumaSimulatorServer, params: dict[str, Any], mode: str
) -> None:
    result = await run_deferred(lambda: make(**params), fresh_context())
    assert result["mode"] == mode
    sent = posts(luma_conn_env)[0].payload
    assert sent["type"] == "video" and sent["model"] == "ray-3.2"


@pytest.mark.parametrize(("params", "mode"), [(p, m) for _, p, m in NATIVE_ONLY], ids=[i for i, _, _ in NATIVE_ONLY])
def test_native_only_parameters_are_refused_on_gmi_before_any_request(
    luma_conn_env: LumaSimulatorServer, params: dict[str, Any], mode: str
) -> None:
    with pytest.raises(AirflowFailException, match="needs the native Luma Agents API"):
        make(**params).execute(fresh_context())
    assert luma_conn_env.simulator.request_log == []


@BOTH
def test_bad_input_fails_before_any_request_on_both(luma_conn_env: LumaSimulatorServer, luma_api: str) -> None:
    op = make(LumaReframeVideoOperator, prompt="p", source_generation_id="g", aspect_ratio="{{ params.r }}")
    op.aspect_ratio = "2:1"
    with pytest.raises(AirflowFailException, match="aspect_ratio '2:1' is image-only"):
        op.execute(fresh_context())
    assert luma_conn_env.simulator.request_log == []


@BOTH
def test_failures_keep_the_key_out_of_messages(
    luma_conn_env: LumaSimulatorServer, luma_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    luma_conn_env.simulator.inject(Fault.http_error(402, on="submit"))
    with pytest.raises(AirflowFailException) as caught:
        make(prompt="p").execute(fresh_context())
    assert "HTTP 402" in str(caught.value) and "Insufficient credits" in str(caught.value)
    assert DEFAULT_TEST_API_KEY not in str(caught.value) + capsys.readouterr().out


@pytest.mark.parametrize(("bought_on", "now"), [("gmi", "luma_agents"), ("luma_agents", "gmi")])
def test_switching_the_connections_api_never_polls_across_or_buys_again(
    luma_simulator: LumaSimulatorServer, monkeypatch: pytest.MonkeyPatch, bought_on: str, now: str
) -> None:
    conn = json.loads(luma_simulator.airflow_conn_json())
    conn["extra"] = {"api": now}
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", json.dumps(conn))
    store = MemoryStateStore()
    store.values[STATE_KEY] = {"version": 2, "backend": bought_on, "model": "luma-ray-3-2-generate",
                               "phase": "submitted", "request_id": "bought-elsewhere", "fingerprint": "x"}  # fmt: skip
    with pytest.raises(AirflowFailException, match=f"bought on {bought_on}.*now speaks {now}. Nothing was polled"):
        make(prompt="p").execute({"task_state_store": store})
    assert luma_simulator.simulator.request_log == []


@pytest.mark.parametrize("luma_api", ["luma_agents"], indirect=True)
def test_connection_test_on_the_native_api(luma_conn_env: LumaSimulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = LumaHook().test_connection()
    assert ok and "key accepted" in message
    conn = json.loads(luma_conn_env.airflow_conn_json())
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", json.dumps({**conn, "password": "luma-api-wrong"}))
    ok, message = LumaHook().test_connection()
    assert not ok and "401" in message
