"""The simulator's native Luma Agents front (``/v1/generations``) over a real socket with httpx.

One :class:`LumaSimulator` on a :class:`ManualClock` is served twice, natively and as GMI's request queue, so a
test can cross fronts; ``finish`` jumps far enough ahead for any render to end.
"""

from __future__ import annotations

import base64
import json
import shlex
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from airflow_provider_luma.testing import (
    DEFAULT_TEST_API_KEY,
    Fault,
    LumaSimulator,
    LumaSimulatorServer,
    ManualClock,
    sample_mp4,
)

pytest_plugins = ["pytester"]

T0 = 1_750_000_000.0
AUTH_KEY = DEFAULT_TEST_API_KEY
AUTH = {"Authorization": f"Bearer {AUTH_KEY}"}
MP4_B64 = base64.b64encode(sample_mp4()).decode()
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(32)).decode()
FRAME = {"url": "https://cdn.example.com/frame.png"}
CONTROLS = {
    "pose": {"enabled": True, "strength": "coarse"},
    "depth": {"enabled": True, "blur": 0.5},
    "normals": {"augmentation": 1},
    "trajectory": {"sparsity": 0},
    "face": {"enabled": False},
}
POSITION = {"x_norm": -0.5, "y_norm": 0, "w_norm": 2, "h_norm": 1}  # x/y may be negative, w/h up to 2
SOURCE = "<source>"  # replaced by the id of a completed 16:9, 5-s native generation


@dataclass
class Native:
    """The native front and the GMI front of one simulator, with its clock."""

    sim: LumaSimulator
    clock: ManualClock
    http: httpx.Client  # native, base URL …/v1
    gmi: httpx.Client  # GMI, base URL …/api/v1/ie/requestqueue/apikey

    def post(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.http.post("/generations", json=body, headers=headers)

    def create(self, kind: str = "video", **fields: Any) -> str:
        response = self.post({"model": "ray-3.2", "type": kind, "prompt": "a misty greenhouse", **fields})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def get(self, generation_id: str) -> dict[str, Any]:
        response = self.http.get(f"/generations/{generation_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def finish(self, generation_id: str) -> dict[str, Any]:
        self.clock.advance(10_000)
        return self.get(generation_id)

    def rendered(self, kind: str = "video", **fields: Any) -> str:
        generation_id = self.create(kind, **fields)
        assert self.finish(generation_id)["state"] == "completed"
        return generation_id


@pytest.fixture
def server_kwargs() -> dict[str, Any]:
    """Simulator settings; a test parametrizes ``server_kwargs`` to change them."""
    return {}


@pytest.fixture
def native(server_kwargs: dict[str, Any]) -> Iterator[Native]:
    clock = ManualClock(T0)
    sim = LumaSimulator(clock=clock, **server_kwargs)
    with (
        LumaSimulatorServer(sim, api="luma_agents") as native_server,
        LumaSimulatorServer(sim) as gmi_server,
        httpx.Client(base_url=native_server.base_url, headers=AUTH, timeout=5.0) as http,
        httpx.Client(base_url=gmi_server.base_url, headers=AUTH, timeout=5.0) as gmi,
    ):
        yield Native(sim, clock, http, gmi)


def iso(at: float) -> str:
    return datetime.fromtimestamp(int(at), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def request(kind: str, **fields: Any) -> dict[str, Any]:
    return {"model": "ray-3.2", "type": kind, "prompt": "make it autumn", **fields}


def with_source(body: Any, source_id: str) -> Any:
    """``body`` with every ``SOURCE`` placeholder replaced by ``source_id``."""
    return json.loads(json.dumps(body).replace(SOURCE, source_id))


# -- create: valid requests of each type ----------------------------------------------------------------------

VALID = [
    ("text-to-video", request("video", aspect_ratio="16:9", video={"resolution": "720p", "duration": "5s"}),
     "luma-ray-3-2-generate"),
    ("draft-360p-10s", request("video", video={"resolution": "360p", "duration": "10s"}), "luma-ray-3-2-generate"),
    ("hdr-exr", request("video", video={"resolution": "1080p", "hdr": True, "exr_export": True}),
     "luma-ray-3-2-generate"),
    ("loop", request("video", video={"loop": True, "start_frame": FRAME}), "luma-ray-3-2-generate"),
    ("frames-url-and-data", request("video", video={"start_frame": FRAME,
                                                    "end_frame": {"data": PNG_B64, "media_type": "image/png"}}),
     "luma-ray-3-2-generate"),
    ("keyframes-10s-hdr-off", request("video", video={"duration": "10s", "keyframes": [FRAME, FRAME, FRAME],
                                                      "keyframe_indexes": [0, 120, 240]}), "luma-ray-3-2-generate"),
    ("keyframes-hdr", request("video", video={"hdr": True, "keyframes": [FRAME], "keyframe_indexes": [60]}),
     "luma-ray-3-2-generate"),
    ("extend-forward", request("video", video={"start_frame": {"generation_id": SOURCE}}), "luma-ray-3-2-generate"),
    ("extend-backward", request("video", video={"end_frame": {"generation_id": SOURCE}}), "luma-ray-3-2-generate"),
    ("user-id", request("video", user_id="end-user-42"), "luma-ray-3-2-generate"),
    ("edit-auto", request("video_edit", source={"generation_id": SOURCE},
                          video={"resolution": "720p", "edit": {"auto_controls": True}}), "luma-ray-3-2-edit"),
    ("edit-controls", request("video_edit", aspect_ratio="9:16", source={"data": MP4_B64, "media_type": "video/mp4"},
                              video={"edit": {"strength": "flex_2", "controls": CONTROLS}}), "luma-ray-3-2-edit"),
    ("reframe", request("video_reframe", aspect_ratio="21:9", source={"generation_id": SOURCE},
                        video={"resolution": "720p"}), "luma-ray-3-2-reframe"),
    ("reframe-url-position", request("video_reframe", aspect_ratio="9:16",
                                     source={"url": "https://example.com/source.mp4", "media_type": "video/mp4"},
                                     video={"source_position": POSITION}),
     "luma-ray-3-2-reframe"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "model"), [row[1:] for row in VALID], ids=[row[0] for row in VALID])
def test_valid_requests_are_created_as_the_gmi_job_they_map_to(native: Native, body: Any, model: str) -> None:
    sent = with_source(body, native.rendered()) if SOURCE in json.dumps(body) else body
    response = native.post(sent)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"], "created_at": iso(native.clock()), "model": "ray-3.2", "state": "queued",
        "type": sent["type"], "output": [], "failure_reason": None, "failure_code": None,
    }  # fmt: skip
    uuid.UUID(created["id"])
    assert response.headers["X-API-Version"] == "2026-04-01"
    uuid.UUID(response.headers["X-Request-Id"])
    assert "X-RateLimit-Limit" not in response.headers  # no RPM limit configured
    record = native.sim.generations()[-1]
    assert (record.model, record.api) == (model, "luma_agents")
    assert native.sim.create_requests()[-1].payload == sent  # the body as sent
    assert native.finish(created["id"])["state"] == "completed"


# -- create: invalid requests; each names its field -----------------------------------------------------------

INVALID = [
    ("unknown-model", {"model": "super-model-v9", "type": "video", "prompt": "x"}, 400,
     "Unknown model: super-model-v9"),
    ("no-model", {"type": "video", "prompt": "x"}, 400, "model"),
    ("image-model", {"model": "uni-1", "type": "video", "prompt": "x"}, 400, "model 'uni-1'"),
    ("image-type", request("image"), 400, "type"),
    ("no-prompt", {"model": "ray-3.2", "type": "video"}, 400, "prompt: is required"),
    ("blank-prompt", request("video", prompt="  "), 400, "Prompt must be between 1 and 6000 characters"),
    ("long-prompt", request("video", prompt="x" * 6001), 400, "Prompt must be between 1 and 6000 characters"),
    ("bad-ratio", request("video", aspect_ratio="3:1"), 400, "aspect_ratio"),
    ("bad-resolution", request("video", video={"resolution": "4k"}), 400, "video.resolution"),
    ("bad-duration", request("video", video={"duration": "7s"}), 400, "video.duration"),
    ("hdr-not-bool", request("video", video={"hdr": "yes"}), 400, "video.hdr"),
    ("unknown-field", request("video", video={"fps": 30}), 400, "video.fps"),
    ("image-only-field", request("video", style="auto"), 400, "style"),
    ("source-on-video", request("video", source={"generation_id": "g"}), 400, "source"),
    ("edit-on-video", request("video", video={"edit": {"auto_controls": True}}), 400, "video.edit"),
    ("frame-two-ways", request("video", video={"start_frame": {"url": FRAME["url"], "generation_id": "g"}}), 400,
     "video.start_frame"),
    ("frame-not-image", request("video", video={"start_frame": {"url": "https://x.example/clip.mp4"}}), 400,
     "video.start_frame.url"),
    ("frame-file-id", request("video", video={"start_frame": {"file_id": "f"}}), 400, "video.start_frame.file_id"),
    ("frame-data-no-type", request("video", video={"end_frame": {"data": PNG_B64}}), 400, "video.end_frame.media_type"),
    ("frame-data-not-image", request("video", video={"end_frame": {"data": MP4_B64, "media_type": "image/png"}}), 422,
     "video.end_frame.data"),
    ("keyframes-empty", request("video", video={"keyframes": [], "keyframe_indexes": []}), 400, "video.keyframes"),
    ("keyframes-65", request("video", video={"keyframes": [FRAME] * 65, "keyframe_indexes": list(range(65))}), 400,
     "video.keyframes"),
    ("keyframe-generation-id", request("video", video={"keyframes": [{"generation_id": "g"}], "keyframe_indexes": [0]}),
     400, "video.keyframes[0].generation_id"),
    ("keyframe-index-not-int", request("video", video={"keyframes": [FRAME], "keyframe_indexes": [1.5]}), 400,
     "video.keyframe_indexes[0]"),
    ("keyframe-index-negative", request("video", video={"keyframes": [FRAME], "keyframe_indexes": [-1]}), 400,
     "video.keyframe_indexes[0]"),
    ("keyframe-indexes-repeat", request("video", video={"keyframes": [FRAME, FRAME], "keyframe_indexes": [5, 5]}), 400,
     "video.keyframe_indexes"),
    ("keyframe-index-past-5s", request("video", video={"keyframes": [FRAME], "keyframe_indexes": [121]}), 422,
     "video.keyframe_indexes"),
    ("keyframe-index-past-10s", request("video", video={"duration": "10s", "keyframes": [FRAME],
                                                        "keyframe_indexes": [241]}), 422, "video.keyframe_indexes"),
    ("keyframes-lengths", request("video", video={"keyframes": [FRAME, FRAME], "keyframe_indexes": [0]}), 422,
     "video.keyframe_indexes"),
    ("keyframes-no-indexes", request("video", video={"keyframes": [FRAME]}), 422, "video.keyframe_indexes"),
    ("keyframes-and-start", request("video", video={"keyframes": [FRAME], "keyframe_indexes": [0],
                                                    "start_frame": FRAME}), 422, "video.start_frame"),
    ("keyframes-and-loop", request("video", video={"keyframes": [FRAME], "keyframe_indexes": [0], "loop": True}), 422,
     "video.loop"),
    ("hdr-540p", request("video", video={"hdr": True, "resolution": "540p"}), 422, "video.resolution=540p"),
    ("hdr-360p", request("video", video={"hdr": True, "resolution": "360p"}), 422, "video.resolution=360p"),
    ("exr-without-hdr", request("video", video={"exr_export": True}), 422, "video.exr_export"),
    ("10s-hdr", request("video", video={"duration": "10s", "hdr": True}), 422, "video.duration"),
    ("10s-start-frame", request("video", video={"duration": "10s", "start_frame": FRAME}), 422, "video.start_frame"),
    ("loop-10s", request("video", video={"loop": True, "duration": "10s"}), 422, "video.loop"),
    ("loop-hdr", request("video", video={"loop": True, "hdr": True}), 422, "video.loop"),
    ("loop-end-frame", request("video", video={"loop": True, "end_frame": FRAME}), 422, "video.end_frame"),
    ("extend-hdr", request("video", video={"start_frame": {"generation_id": "g"}, "hdr": True}), 422,
     "video.start_frame.generation_id"),
    ("extend-10s", request("video", video={"end_frame": {"generation_id": "g"}, "duration": "10s"}), 422,
     "video.duration"),
    ("extend-plus-frame", request("video", video={"start_frame": {"generation_id": "g"}, "end_frame": FRAME}), 422,
     "video.start_frame.generation_id"),
    ("edit-no-source", request("video_edit"), 400, "source: is required"),
    ("edit-two-sources", request("video_edit", source={"generation_id": "g", "data": MP4_B64,
                                                       "media_type": "video/mp4"}), 400, "source"),
    ("edit-bad-base64", request("video_edit", source={"data": "not base64!", "media_type": "video/mp4"}), 422,
     "source.data"),
    ("edit-url-no-type", request("video_edit", source={"url": "https://example.com/a.mp4"}), 400, "source.media_type"),
    ("edit-image-media-type", request("video_edit", source={"data": MP4_B64, "media_type": "image/png"}), 400,
     "source.media_type"),
    ("edit-360p", request("video_edit", source={"generation_id": "g"}, video={"resolution": "360p"}), 400,
     "video.resolution"),
    ("edit-hdr", request("video_edit", source={"generation_id": "g"}, video={"hdr": True}), 400, "video.hdr"),
    ("edit-duration", request("video_edit", source={"generation_id": "g"}, video={"duration": "5s"}), 400,
     "video.duration"),
    ("edit-keyframes", request("video_edit", source={"generation_id": "g"}, video={"keyframes": [FRAME]}), 400,
     "video.keyframes"),
    ("edit-bad-strength", request("video_edit", source={"generation_id": "g"}, video={"edit": {"strength": "max"}}),
     400, "video.edit.strength"),
    ("edit-auto-and-strength", request("video_edit", source={"generation_id": "g"},
                                       video={"edit": {"auto_controls": True, "strength": "adhere_1"}}), 422,
     "video.edit.auto_controls"),
    ("edit-pose-strength", request("video_edit", source={"generation_id": "g"},
                                   video={"edit": {"controls": {"pose": {"strength": "loose"}}}}), 400,
     "video.edit.controls.pose.strength"),
    ("edit-blur-range", request("video_edit", source={"generation_id": "g"},
                                video={"edit": {"controls": {"depth": {"blur": 1.5}}}}), 400,
     "video.edit.controls.depth.blur"),
    ("edit-unknown-control", request("video_edit", source={"generation_id": "g"},
                                     video={"edit": {"controls": {"color": {}}}}), 400, "video.edit.controls.color"),
    ("reframe-no-ratio", request("video_reframe", source={"generation_id": "g"}), 400, "aspect_ratio: is required"),
    ("reframe-hdr", request("video_reframe", aspect_ratio="1:1", source={"generation_id": "g"}, video={"hdr": True}),
     400, "video.hdr"),
    ("reframe-same-ratio", request("video_reframe", aspect_ratio="16:9", source={"generation_id": SOURCE}), 422,
     "aspect_ratio"),
    ("reframe-position-partial", request("video_reframe", aspect_ratio="1:1", source={"generation_id": "g"},
                                         video={"source_position": {"x_norm": 0}}), 400,
     "video.source_position.w_norm"),
    ("reframe-position-too-wide", request("video_reframe", aspect_ratio="1:1", source={"generation_id": "g"},
                                          video={"source_position": {"x_norm": 0, "y_norm": 0, "w_norm": 2.5,
                                                                     "h_norm": 1}}), 400,
     "video.source_position.w_norm"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "names"), [r[1:] for r in INVALID], ids=[r[0] for r in INVALID])
def test_invalid_requests_name_their_field(native: Native, body: Any, status: int, names: str) -> None:
    sent = with_source(body, native.rendered()) if SOURCE in json.dumps(body) else body
    response = native.post(sent)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detail"}
    assert names in response.json()["detail"]
    assert response.headers["X-API-Version"] == "2026-04-01"


def test_body_that_is_not_json_is_a_400(native: Native) -> None:
    response = native.http.post("/generations", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, {"detail": "Request body is not valid JSON"})


# -- reading generations back ---------------------------------------------------------------------------------


def test_state_goes_queued_processing_completed_with_fresh_output_urls(native: Native) -> None:
    generation_id = native.create(video={"resolution": "1080p", "hdr": True, "exr_export": True})
    assert native.get(generation_id)["state"] == "queued"
    native.clock.advance(100)  # 1080p HDR+EXR renders in 360 s; 15 % of it is queued
    assert native.get(generation_id)["state"] == "processing"
    native.clock.advance(300)
    done = native.get(generation_id)
    assert done["state"] == "completed" and done["failure_code"] is None
    assert [entry["type"] for entry in done["output"]] == ["video", "exr"]
    video = httpx.get(done["output"][0]["url"], timeout=5.0)
    assert (video.status_code, video.content) == (200, sample_mp4())
    assert httpx.get(done["output"][1]["url"], timeout=5.0).content.startswith(b"v/1\x01")
    native.clock.advance(1)
    assert native.get(generation_id)["output"][0]["url"] != done["output"][0]["url"]  # minted per GET
    get = native.http.get(f"/generations/{generation_id}")
    assert "X-RateLimit-Limit" not in get.headers and get.headers["X-API-Version"] == "2026-04-01"


def test_unknown_or_another_keys_generation_is_not_found(native: Native) -> None:
    response = native.http.get(f"/generations/{uuid.uuid4()}")
    assert (response.status_code, response.json()) == (404, {"detail": "Generation not found"})
    generation_id = native.create()
    with LumaSimulatorServer(native.sim, api="luma_agents", api_key="other-key") as other:
        url = f"{other.base_url}/generations/{generation_id}"
        response = httpx.get(url, headers={"Authorization": "Bearer other-key"}, timeout=5.0)
    assert (response.status_code, response.json()) == (404, {"detail": "Generation not found"})


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": DEFAULT_TEST_API_KEY}])
def test_missing_or_invalid_key_is_a_401(native: Native, headers: dict[str, str]) -> None:
    url = str(native.http.base_url).rstrip("/")
    for response in (httpx.post(f"{url}/generations", json=request("video"), headers=headers),
                     httpx.get(f"{url}/generations/{uuid.uuid4()}", headers=headers)):  # fmt: skip
        assert (response.status_code, response.json()) == (401, {"detail": "Invalid API key"})
        assert response.headers["X-API-Version"] == "2026-04-01"
    assert native.sim.generations() == []


def test_x_request_id_is_echoed_on_every_answer(native: Native) -> None:
    created = native.post(request("video"), **{"X-Request-Id": "trace-1"})
    assert created.headers["X-Request-Id"] == "trace-1"
    got = native.http.get(f"/generations/{created.json()['id']}", headers={"X-Request-Id": "trace-2"})
    assert got.headers["X-Request-Id"] == "trace-2"
    assert native.post(request("nope"), **{"X-Request-Id": "trace-3"}).headers["X-Request-Id"] == "trace-3"
    native.sim.inject(Fault.http_error(503, on="poll"))
    assert native.http.get("/generations/x", headers={"X-Request-Id": "t4"}).headers["X-Request-Id"] == "t4"
    fresh = {native.post(request("video")).headers["X-Request-Id"] for _ in range(2)}
    assert len(fresh) == 2 and all(uuid.UUID(value) for value in fresh)


# -- limits and faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("server_kwargs", [{"rpm_limit": 2}])
def test_rpm_limit_headers_on_201_and_429(native: Native) -> None:
    first = native.post(request("video"))
    limits = {name: first.headers[f"X-RateLimit-{name}"] for name in ("Limit", "Remaining", "Reset")}
    assert limits == {"Limit": "2", "Remaining": "1", "Reset": str(int(T0) + 60)}
    native.clock.advance(15)
    assert native.post(request("video")).headers["X-RateLimit-Remaining"] == "0"
    refused = native.post(request("video"))
    assert (refused.status_code, refused.json()) == (429, {"detail": "Rate limit exceeded"})
    assert refused.headers["Retry-After"] == "45"
    assert (refused.headers["X-RateLimit-Limit"], refused.headers["X-RateLimit-Remaining"]) == ("2", "0")
    assert refused.headers["X-RateLimit-Reset"] == str(int(T0) + 60)


@pytest.mark.parametrize("server_kwargs", [{"max_concurrent_jobs": 1}])
def test_concurrency_limit_is_a_429_without_rate_limit_headers(native: Native) -> None:
    generation_id = native.create()
    refused = native.post(request("video"))
    assert (refused.status_code, refused.json()) == (429, {"detail": "Too many concurrent jobs"})
    assert refused.headers["Retry-After"] == "60"
    assert not [name for name in refused.headers if name.lower().startswith("x-ratelimit")]
    native.finish(generation_id)
    assert native.post(request("video")).status_code == 201


@pytest.mark.parametrize(
    ("fault", "status", "detail"),
    [
        (Fault.http_error(402, on="submit"), 402, "Insufficient credits. Please add credits to continue."),
        (Fault.http_error(502, on="submit"), 502, "Upstream service unavailable"),
        (Fault.http_error(503, "Image URL ingestion unavailable", on="submit"), 503, "Image URL ingestion unavailable"),
        (Fault.rate_limit_rpm(7), 429, "Rate limit exceeded"),
        (Fault.rate_limit_concurrency(), 429, "Too many concurrent jobs"),
    ],
)
def test_injected_faults_answer_in_the_native_error_shape(
    native: Native, fault: Fault, status: int, detail: str
) -> None:
    native.sim.inject(fault)
    response = native.post(request("video"))
    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert native.sim.generations() == []  # the job is not queued
    assert native.post(request("video")).status_code == 201


def test_failed_generation_reports_failure_code_and_reason(native: Native) -> None:
    native.sim.inject(Fault.fail_generation("Prompt was moderated", "content_moderated"))
    failed = native.finish(native.create())
    assert (failed["state"], failed["output"]) == ("failed", [])
    assert (failed["failure_code"], failed["failure_reason"]) == ("content_moderated", "Prompt was moderated")


def test_unknown_source_fails_asynchronously_as_invalid_request(native: Native) -> None:
    generation_id = native.create("video_edit", source={"generation_id": "d290f1ee-6c54-4b01-90e6-d701748f0851"})
    failed = native.finish(generation_id)
    assert (failed["state"], failed["failure_code"]) == ("failed", "invalid_request")
    assert "source.generation_id 'd290f1ee-6c54-4b01-90e6-d701748f0851'" in failed["failure_reason"]


# -- chains and both fronts on one state ----------------------------------------------------------------------


def test_chain_generate_reframe_edit_extend(native: Native) -> None:
    generate = native.rendered(aspect_ratio="16:9", video={"duration": "10s"})
    reframe = native.rendered("video_reframe", aspect_ratio="9:16", source={"generation_id": generate})
    edit = native.rendered("video_edit", source={"generation_id": reframe}, video={"edit": {"strength": "flex_1"}})
    extend = native.rendered(video={"start_frame": {"generation_id": edit}})
    records = {r.generation_id: r for r in native.sim.generations()}
    facts = [
        (records[g].model, records[g].aspect_ratio, records[g].duration) for g in (generate, reframe, edit, extend)
    ]
    assert facts == [
        ("luma-ray-3-2-generate", "16:9", "10s"), ("luma-ray-3-2-reframe", "9:16", "10s"),
        ("luma-ray-3-2-edit", "9:16", "10s"), ("luma-ray-3-2-generate", "16:9", "5s"),
    ]  # fmt: skip
    assert records[extend].start_frame_generation_id == edit
    assert records[extend].chained_from_request_ids == (records[edit].request_id,)
    assert records[edit].payload == {"prompt": "a misty greenhouse", "source_generation_id": reframe,
                                     "edit_strength": "flex_1"}  # fmt: skip


def test_a_native_generation_is_a_source_on_the_gmi_front_and_back(native: Native) -> None:
    native_id = native.rendered(aspect_ratio="16:9")
    payload = {"prompt": "square it", "aspect_ratio": "1:1", "source_generation_id": native_id}
    created = native.gmi.post("/requests", json={"model": "luma-ray-3-2-reframe", "payload": payload})
    assert created.status_code == 200, created.text
    native.clock.advance(10_000)
    done = native.gmi.get(f"/requests/{created.json()['request_id']}").json()
    assert done["status"] == "success"
    gmi_id = done["outcome"]["generation_id"]
    # The GMI front's generation reads back natively, and sources a native edit.
    assert native.get(gmi_id)["type"] == "video_reframe"
    edit = native.rendered("video_edit", source={"generation_id": gmi_id})
    assert [(r.api, r.model) for r in native.sim.generations()] == [
        ("luma_agents", "luma-ray-3-2-generate"), ("gmi", "luma-ray-3-2-reframe"), ("luma_agents", "luma-ray-3-2-edit"),
    ]  # fmt: skip
    assert native.sim.generation(native.sim.create_requests()[-1].request_id or "").generation_id == edit


# -- CLI and pytest plugin ------------------------------------------------------------------------------------


def test_cli_serves_the_native_api() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    command = [sys.executable, "-m", "airflow_provider_luma.testing", "--api", "luma_agents", "--port", str(port)]
    # Popen's context manager closes the pipe and reaps the process, whatever the assertions do.
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            base_url = f"http://127.0.0.1:{port}/v1"
            assert process.stdout.readline().strip() == f"Luma simulator listening on {base_url}"
            name, _, value = shlex.split(process.stdout.readline().removeprefix("export "))[0].partition("=")
            assert name == "AIRFLOW_CONN_LUMA_DEFAULT"
            # The extra also carries schedule_time_factor (the poll schedule follows the simulator's clock).
            conn = json.loads(value)
            assert {k: conn[k] for k in ("conn_type", "host", "password")} == {
                "conn_type": "luma", "host": base_url, "password": AUTH_KEY,
            }  # fmt: skip
            assert conn["extra"]["api"] == "luma_agents" and "schedule_time_factor" in conn["extra"]
            assert httpx.post(base_url + "/generations", json=request("video"), headers=AUTH).status_code == 201
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_plugin_marker_and_indirect_luma_api(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json, pytest

        @pytest.mark.luma_simulator(api="luma_agents")
        def test_marker(luma_conn_env, luma_api):
            assert luma_api == "luma_agents" and luma_conn_env.base_url.endswith("/v1")
            assert json.loads(luma_conn_env.airflow_conn_json())["extra"] == {"api": "luma_agents"}

        @pytest.mark.parametrize("luma_api", ["gmi", "luma_agents"], indirect=True)
        def test_both(luma_simulator, luma_api):
            assert luma_simulator.api == luma_api
            assert ("extra" in json.loads(luma_simulator.airflow_conn_json())) == (luma_api == "luma_agents")

        def test_default(luma_simulator, luma_api):
            assert luma_api == luma_simulator.api == "gmi"

        @pytest.mark.luma_simulator(api="gmi")
        @pytest.mark.parametrize("luma_api", ["luma_agents"], indirect=True)
        def test_contradiction(luma_simulator):
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=4, errors=1)
