"""The native Luma Agents wire format: every mode's request body, the Generation parser, and the connection's
choice of API; plus what GMI refuses because only the native API takes it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_luma.core.backends import gmi, luma_agents
from airflow_provider_luma.core.jobs import JobStatus
from airflow_provider_luma.core.specs import SPECS
from airflow_provider_luma.core.specs.sourced import EditControls

GEN = "d290f1ee-6c54-4b01-90e6-d701748f0851"
IMG = "https://cdn.example.com/a.png"

MAPPING: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("text-to-video", "luma-ray-3-2-generate", {"prompt": "p", "aspect_ratio": "16:9", "resolution": "720p"},
     {"model": "ray-3.2", "type": "video", "prompt": "p", "aspect_ratio": "16:9", "video": {"resolution": "720p"}}),
    ("image-to-video", "luma-ray-3-2-generate", {"prompt": "p", "start_frame_url": IMG, "hdr": True},
     {"model": "ray-3.2", "type": "video", "prompt": "p", "video": {"hdr": True, "start_frame": {"url": IMG}}}),
    ("extend-forward", "luma-ray-3-2-generate", {"prompt": "p", "start_frame_generation_id": GEN, "loop": True},
     {"model": "ray-3.2", "type": "video", "prompt": "p",
      "video": {"loop": True, "start_frame": {"generation_id": GEN}}}),
    ("extend-backward", "luma-ray-3-2-generate", {"prompt": "p", "end_frame_generation_id": GEN},
     {"model": "ray-3.2", "type": "video", "prompt": "p", "video": {"end_frame": {"generation_id": GEN}}}),
    ("interpolation", "luma-ray-3-2-generate", {"prompt": "p", "start_frame_generation_id": GEN, "end_frame_url": IMG},
     {"model": "ray-3.2", "type": "video", "prompt": "p",
      "video": {"start_frame": {"generation_id": GEN}, "end_frame": {"url": IMG}}}),
    ("keyframes-10s-hdr-draft-user", "luma-ray-3-2-generate",
     {"prompt": "p", "keyframes": [IMG, GEN], "keyframe_indexes": [0, 240], "duration": "10s", "user_id": "u-7"},
     {"model": "ray-3.2", "type": "video", "prompt": "p", "user_id": "u-7",
      "video": {"duration": "10s", "keyframes": [{"url": IMG}, {"generation_id": GEN}], "keyframe_indexes": [0, 240]}}),
    ("draft-360p", "luma-ray-3-2-generate", {"prompt": "p", "resolution": "360p"},
     {"model": "ray-3.2", "type": "video", "prompt": "p", "video": {"resolution": "360p"}}),
    ("reframe", "luma-ray-3-2-reframe", {"prompt": "p", "source_generation_id": GEN, "aspect_ratio": "21:9"},
     {"model": "ray-3.2", "type": "video_reframe", "prompt": "p", "aspect_ratio": "21:9",
      "source": {"generation_id": GEN}}),
    ("edit-strength-pose", "luma-ray-3-2-edit",
     {"prompt": "p", "source_generation_id": GEN, "resolution": "1080p", "edit_strength": "flex_1",
      "pose_strength": "coarse"},
     {"model": "ray-3.2", "type": "video_edit", "prompt": "p", "source": {"generation_id": GEN},
      "video": {"resolution": "1080p", "edit": {"strength": "flex_1",
                                                "controls": {"pose": {"enabled": True, "strength": "coarse"}}}}}),
    ("edit-controls", "luma-ray-3-2-edit",
     {"prompt": "p", "source_generation_id": GEN, "edit_auto_controls": True,
      "controls": {"depth": {"blur": 0.25}, "face": {}}},
     {"model": "ray-3.2", "type": "video_edit", "prompt": "p", "source": {"generation_id": GEN},
      "video": {"edit": {"auto_controls": True,
                         "controls": {"depth": {"enabled": True, "blur": 0.25}, "face": {"enabled": True}}}}}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "params", "body"), [(m, p, b) for _, m, p, b in MAPPING], ids=[i for i, _, _, _ in MAPPING]
)
def test_every_mode_maps_onto_the_native_request(model: str, params: dict[str, Any], body: dict[str, Any]) -> None:
    call = luma_agents.build_submit(SPECS[model].validate_params(params))
    assert (call.method, call.path, call.json) == ("POST", "/generations", body)
    assert len(call.headers["X-Request-Id"]) == 36  # our own id, so a support ticket can name the request


COMPLETED = {
    "id": GEN, "type": "video", "state": "completed", "model": "ray-3.2", "created_at": "2026-04-08T12:00:00Z",
    "output": [{"type": "video", "url": "https://s3.example/v.mp4?X-Amz=1"},
               {"type": "exr", "url": "https://s3.example/v.exr?X-Amz=1"}],
    "failure_reason": None, "failure_code": None,
}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (COMPLETED, (JobStatus.SUCCESS, GEN, "https://s3.example/v.mp4?X-Amz=1", "https://s3.example/v.exr?X-Amz=1")),
        ({**COMPLETED, "state": "queued", "output": []}, (JobStatus.QUEUED, GEN, None, None)),
        ({**COMPLETED, "state": "processing", "output": []}, (JobStatus.PROCESSING, GEN, None, None)),
        (
            {**COMPLETED, "state": "failed", "output": [], "failure_code": "content_moderated"},
            (JobStatus.FAILED, GEN, None, None),
        ),
    ],  # fmt: skip
)
def test_generation_objects_parse_into_jobs(body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    job = luma_agents.parse_job(body, model="luma-ray-3-2-generate")
    assert (job.status, job.generation_id, job.video_url, job.exr_url) == expected
    assert (job.request_id, job.backend, job.model) == (GEN, "luma_agents", "luma-ray-3-2-generate")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"request_id": "r", "status": "success"}, "no id"),  # a GMI body is not a Generation
        ({"id": GEN}, "no state"),
        ({**COMPLETED, "output": []}, "completed without a video output"),
        ({**COMPLETED, "output": [{"type": "video", "url": "file:///etc/hostname"}]}, "scheme is 'file'"),
    ],
)
def test_unusable_generation_objects_are_errors(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        luma_agents.parse_job(body)


def test_the_gmi_wire_refuses_what_only_the_native_api_takes() -> None:
    generate = SPECS["luma-ray-3-2-generate"].validate_params(
        {"prompt": "p", "keyframes": [IMG], "keyframe_indexes": [0], "user_id": "u", "resolution": "360p"}
    )
    problems = gmi.unsupported(generate)
    assert [p.split(":")[0] for p in problems] == ["keyframe_indexes", "keyframes", "user_id", "resolution"]
    assert all("needs the native Luma Agents API" in p for p in problems)
    edit = SPECS["luma-ray-3-2-edit"].validate_params(
        {"prompt": "p", "source_generation_id": GEN, "controls": EditControls()}
    )
    assert gmi.unsupported(edit)[0].startswith("controls: needs the native Luma Agents API")
    assert luma_agents.unsupported(generate) == luma_agents.unsupported(edit) == []


def test_an_inline_source_is_streamed_as_source_data() -> None:
    from pathlib import Path

    import airflow_provider_luma.testing as testing_pkg
    from airflow_provider_luma.core.specs.source import inspect_video

    sample = Path(testing_pkg.__file__).with_name("sample.mp4")
    video = inspect_video(lambda: sample.open("rb"), str(sample), size=sample.stat().st_size)
    call = luma_agents.build_submit(SPECS["luma-ray-3-2-reframe"].validate_params(
        {"prompt": "p", "aspect_ratio": "9:16", "source_video": video}
    ))  # fmt: skip
    assert call.stream is not None
    sent = json.loads(b"".join(call.stream.chunks()))
    assert sent["source"]["media_type"] == "video/mp4" and len(sent["source"]["data"]) > sample.stat().st_size
