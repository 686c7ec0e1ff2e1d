"""GMI's wire format: status vocabulary, tolerant result lookup, and strict rejection of unusable bodies."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_luma.core.backends.gmi import normalize_status, parse_job
from airflow_provider_luma.core.jobs import JobStatus

# -- responses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("queued", JobStatus.QUEUED),
        ("created", JobStatus.QUEUED),
        ("dispatched", JobStatus.QUEUED),
        ("PROCESSING", JobStatus.PROCESSING),
        ("success", JobStatus.SUCCESS),
        ("completed", JobStatus.SUCCESS),
        ("failed", JobStatus.FAILED),
        ("cancelled", JobStatus.CANCELLED),
        ("canceled", JobStatus.CANCELLED),
        ("paused", JobStatus.UNKNOWN),
        (None, JobStatus.UNKNOWN),
    ],
)
def test_status_normalisation(raw: object, status: JobStatus) -> None:
    assert normalize_status(raw) is status
    assert status.is_terminal == (status in {JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELLED})


LAYOUTS = [
    (
        "flat",
        {"request_id": "r1", "status": "success", "generation_id": "g1", "video_url": "https://s/v.mp4"},
        ("g1", "https://s/v.mp4", None),
    ),
    (
        "outcome-fields",
        {"request_id": "r1", "status": "success", "outcome": {"generation_id": "g1", "video_url": "https://s/v.mp4"}},
        ("g1", "https://s/v.mp4", None),
    ),
    (
        "outcome-media-urls-with-exr",
        {
            "request_id": "r1",
            "status": "success",
            "outcome": {
                "generation_id": "g1",
                "media_urls": [{"id": "m1", "url": "https://s/v.mp4"}, {"url": "https://s/v.exr?X-Amz=1"}],
            },
        },
        ("g1", "https://s/v.mp4", "https://s/v.exr?X-Amz=1"),
    ),
    (
        "outcome-url-fallback",
        {"request_id": "r1", "status": "success", "outcome": {"id": "g1", "url": "https://s/v.mp4"}},
        ("g1", "https://s/v.mp4", None),
    ),
    ("queued-no-outcome", {"request_id": "r1", "status": "queued", "outcome": None}, (None, None, None)),
]


@pytest.mark.parametrize(("body", "expected"), [(b, e) for _, b, e in LAYOUTS], ids=[i for i, _, _ in LAYOUTS])
def test_parse_job_finds_results_wherever_they_are(body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    generation = parse_job(body)
    assert (generation.generation_id, generation.video_url, generation.exr_url) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"request_id": "r", "status": "failed", "error": "boom"}, "boom"),
        ({"request_id": "r", "status": "failed", "detail": "bad prompt"}, "bad prompt"),
        ({"request_id": "r", "status": "failed", "outcome": {"error": "upstream"}}, "upstream"),
        (
            {"request_id": "r", "status": "failed", "failure_reason": "moderated", "failure_code": "content_moderated"},
            "moderated",
        ),
        ({"request_id": "r", "status": "failed"}, None),
    ],
)
def test_parse_job_failure_text(body: dict[str, Any], message: str | None) -> None:
    assert parse_job(body).error == message


def test_parse_job_uses_the_asked_id_and_model() -> None:
    job = parse_job({"status": "processing", "qworker_id": "w7"}, request_id="asked", model="luma-ray-3-2-edit")
    assert (job.request_id, job.model, job.backend, job.status) == ("asked", "luma-ray-3-2-edit", "gmi", "processing")


OK_SUCCESS = {"request_id": "r1", "status": "success", "generation_id": "g1", "video_url": "https://s/v.mp4"}
UNUSABLE: list[tuple[str, object, str]] = [
    ("a list", [], "expected a JSON object"),
    ("text", "text", "expected a JSON object"),
    ("null", None, "expected a JSON object"),
    ("no request id", {"status": "queued"}, "no request_id"),
    ("no status", {"request_id": "r1"}, "no status"),
    ("native Luma shape", {"id": "g1", "state": "completed", "output": [{"type": "video", "url": "https://s/v"}]},
     "no request_id"),
    ("success without generation id", {**OK_SUCCESS, "generation_id": None}, "without a generation_id"),
    ("success without video URL", {**OK_SUCCESS, "video_url": None}, "without a video URL"),
    ("file URL", {**OK_SUCCESS, "video_url": "file:///etc/hostname"}, "scheme is 'file'"),
    ("ftp URL", {**OK_SUCCESS, "video_url": "ftp://media.example.com/v.mp4"}, "scheme is 'ftp'"),
    ("data URL", {**OK_SUCCESS, "video_url": "data:video/mp4;base64,AAAA"}, "scheme is 'data'"),
    ("plain http to a public host", {**OK_SUCCESS, "video_url": "http://media.example.com/v.mp4"}, "only https"),
    ("file EXR URL", {**OK_SUCCESS, "exr_url": "file:///etc/passwd"}, "EXR URL is not opened"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "problem"), [(b, p) for _, b, p in UNUSABLE], ids=[i for i, _, _ in UNUSABLE])
def test_parse_job_rejects_unusable_bodies(body: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_job(body)


@pytest.mark.parametrize(
    "url",
    ["https://media.example.com/v.mp4", "http://127.0.0.1:8765/files/g.mp4", "http://localhost/v", "http://[::1]/v"],
)
def test_https_and_loopback_http_media_urls_are_accepted(url: str) -> None:
    assert parse_job({**OK_SUCCESS, "video_url": url}).video_url == url


def test_an_incomplete_create_answer_keeps_the_render_and_lets_polling_decide() -> None:
    # A create that names its request id is ours even when the rest is unusable: never report it as lost.
    job = parse_job({**OK_SUCCESS, "video_url": "file:///etc/hostname"}, strict=False)
    assert (job.request_id, job.status, job.video_url) == ("r1", JobStatus.UNKNOWN, None)
