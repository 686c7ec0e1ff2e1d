"""The still frame of the review body (``GET /luma/still/...``): a real JPEG of the first frame of the stored copy
the delivery record names now (so one URL follows every take), decoded with PyAV under caps; anything else is a
4xx. Driven through the real gallery app; the database read (the task instance's rendered fields) is the seam."""

from __future__ import annotations

import io
import shutil
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient

import airflow_provider_luma.testing as testing
from airflow_provider_luma.plugins import still_url
from airflow_provider_luma.runtime.review import Take
from airflow_provider_luma.runtime.review_loop import review_body
from tests.plugins.test_gallery import record, video_client  # noqa: F401 - video_client: the app, seamed

SAMPLE = Path(testing.__file__).parent / "sample.mp4"
URL = "/still/d/r/t/-1"


@pytest.fixture
def still_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Any]]:
    """The gallery's real app with the task instance's rendered fields as the seam (``video_client``: reading an
    XCom fails the test), for a take awaiting review. Task-state rows (REST-writable) must never be read either,
    and nothing is ever minted: a still is made from a stored copy only."""
    from airflow_provider_luma.plugins import _review

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the still route read a task-state row")

    monkeypatch.setattr(_review, "review_takes", forbidden)
    client, ti = request.getfixturevalue("video_client")
    ti["state"] = "awaiting_input"
    yield client, ti
    assert ti["minted"] == [], "a still never asks Luma for a presigned URL"


def decode(jpeg: bytes) -> Any:
    """The still decoded back (a ``yuvj420p`` frame): it is a real JPEG."""
    with av.open(io.BytesIO(jpeg), format="mjpeg") as container:
        return next(container.decode(video=0))


def solid_mp4(path: Path, luma: int, size: tuple[int, int] = (160, 90)) -> Path:
    """A one-second MP4 of a uniform grey picture (MPEG-4 Part 2: FFmpeg's own encoder, in every PyAV wheel)."""
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 10)
        for i in range(10):
            frame = av.VideoFrame(size[0], size[1], "yuv420p")
            for plane, value in zip(frame.planes, (luma, 128, 128), strict=True):
                plane.update(bytes([value]) * plane.buffer_size)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def luma_spread(jpeg: bytes) -> tuple[int, int]:
    """(min, max) of the still's luma plane."""
    frame = decode(jpeg)
    plane = frame.planes[0]
    data, stride = bytes(plane), plane.line_size  # rows are padded to the stride
    pixels = b"".join(data[row * stride : row * stride + frame.width] for row in range(frame.height))
    return min(pixels), max(pixels)


def test_the_still_is_a_jpeg_of_the_recorded_stored_copy(
    still_client: tuple[TestClient, dict[str, Any]], tmp_path: Path
) -> None:
    client, ti = still_client
    clip = shutil.copyfile(SAMPLE, tmp_path / "take-1.mp4")
    ti["fields"] = record(video_path=f"file://{clip}")
    response = client.get(URL)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg" and response.headers["cache-control"] == "no-store"
    assert response.content[:3] == b"\xff\xd8\xff"
    frame = decode(response.content)
    assert (frame.width, frame.height) == (320, 180), "the sample's own size (never enlarged)"
    low, high = luma_spread(response.content)
    assert high - low > 100, "the test pattern's bars, not a blank picture"


def test_the_still_follows_the_latest_take(still_client: tuple[TestClient, dict[str, Any]], tmp_path: Path) -> None:
    # The body names one URL for every take; the worker re-records each take's stored copy in the delivery record.
    client, ti = still_client
    first = shutil.copyfile(SAMPLE, tmp_path / "clip-gen-1.mp4")
    ti["fields"] = record(generation_id="gen-1", video_path=f"file://{first}")
    take_1 = client.get(URL).content
    second = solid_mp4(tmp_path / "clip-gen-2.mp4", luma=200)
    ti["fields"] = record(request_id="req-2", generation_id="gen-2", video_path=f"file://{second}")
    take_2 = client.get(URL)
    assert take_2.status_code == 200 and take_2.content != take_1
    low, high = luma_spread(take_2.content)
    assert (decode(take_2.content).width, high - low < 16, abs((low + high) // 2 - 200) < 16) == (160, True, True)


def test_large_frames_are_scaled_down(still_client: tuple[TestClient, dict[str, Any]], tmp_path: Path) -> None:
    client, ti = still_client
    ti["fields"] = record(video_path=str(solid_mp4(tmp_path / "wide.mp4", luma=50, size=(1280, 720))))
    frame = decode(client.get(URL).content)
    assert (frame.width, frame.height) == (640, 360)


def hls_playlist(path: Path) -> Path:
    """A playlist naming a file: FFmpeg's HLS demuxer would open it if the format were probed."""
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile://{SAMPLE}\n#EXT-X-ENDLIST\n")
    return path


@pytest.mark.parametrize(
    ("make_fields", "status", "says"),
    [
        (lambda tmp: {"luma_conn_id": "luma_default"}, 404, "records no stored copy"),  # an older release's task
        (lambda tmp: record(), 404, "records no stored copy"),  # no output_path: never downloaded from the URL
        (lambda tmp: record(video_path="https://cdn.example/clip.mp4"), 422, "https://"),
        (lambda tmp: record(video_path="clips/a.mp4"), 422, "not an absolute storage path"),
        (lambda tmp: record(video_path="file:///nonexistent/luma/a.mp4"), 404, "gone"),
        (lambda tmp: record(video_path=str(tmp)), 404, "gone"),  # a directory
        (lambda tmp: record(video_path="/etc/hostname"), 422, "cannot be decoded"),
        (lambda tmp: record(video_path=str(hls_playlist(tmp / "list.m3u8"))), 422, "cannot be decoded"),
        (lambda tmp: record(video_path=str(truncated(tmp / "cut.mp4"))), 422, "cannot be decoded"),
    ],
    ids=["no-record", "no-stored-copy", "web-address", "relative", "gone", "directory", "not-a-video", "playlist",
         "truncated"],
)  # fmt: skip
def test_only_the_records_stored_copy_is_decoded_and_failures_are_4xx(
    still_client: tuple[TestClient, dict[str, Any]], tmp_path: Path, make_fields: Any, status: int, says: str
) -> None:
    client, ti = still_client
    ti["fields"] = make_fields(tmp_path)
    response = client.get(URL)
    assert response.status_code == status and says in response.json()["detail"], response.text


def truncated(path: Path) -> Path:
    path.write_bytes(SAMPLE.read_bytes()[:3000])
    return path


def test_forged_xcom_and_task_state_paths_are_never_opened(
    still_client: tuple[TestClient, dict[str, Any]], tmp_path: Path
) -> None:
    # A User-role account can write XComs and task-state rows naming any file; the route reads neither (the fixture
    # fails the test if it did) and the record of a task that stored nothing yields no still.
    client, ti = still_client
    ti["fields"] = {**record(), "video_path": f"file://{SAMPLE}"}  # a rendered field that is not the record
    assert client.get(URL).status_code == 404
    ti["found"] = False
    assert client.get(URL).status_code == 404


@pytest.mark.parametrize(
    ("cap", "value", "says"), [("MAX_READ_BYTES", 4096, "cannot be decoded"), ("MAX_PIXELS", 100, "size limit")]
)
def test_the_decoder_works_within_caps(
    still_client: tuple[TestClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, cap: str, value: int, says: str
) -> None:
    from airflow_provider_luma.plugins import _still

    client, ti = still_client
    ti["fields"] = record(video_path=str(SAMPLE))
    monkeypatch.setattr(_still, cap, value)
    response = client.get(URL)
    assert response.status_code == 422 and says in response.json()["detail"], response.text


def test_a_busy_api_server_answers_503_at_once_instead_of_holding_a_thread(
    still_client: tuple[TestClient, dict[str, Any]],
) -> None:
    from airflow_provider_luma.plugins import _still

    client, ti = still_client
    ti["fields"] = record(video_path=str(SAMPLE))
    held = [_still._SLOTS.acquire(blocking=False) for _ in range(_still.MAX_CONCURRENT)]  # others decoding now
    try:
        started = time.monotonic()
        response = client.get(URL)
        assert response.status_code == 503 and time.monotonic() - started < 2, response.text
    finally:
        for _ in held:
            _still._SLOTS.release()
    assert client.get(URL).status_code == 200


def test_without_pyav_there_is_no_still(
    still_client: tuple[TestClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, ti = still_client
    ti["fields"] = record(video_path=str(SAMPLE))
    monkeypatch.setitem(sys.modules, "av", None)  # what `import av` sees where the extra is not installed
    response = client.get(URL)
    assert response.status_code == 404 and "airflow-provider-luma[stills]" in response.json()["detail"]


def test_the_still_needs_a_login_and_read_access_to_the_dags_xcoms() -> None:
    from airflow_provider_luma.plugins import _app

    app = _app.create_app()
    guards = {
        route.path: [d.call for d in route.dependant.dependencies]  # type: ignore[attr-defined]
        for route in app.routes
        if getattr(route, "path", "").startswith(("/still/", "/video/"))
    }
    # The same guard as the video (requires_access_dag("GET", XCOM): login, then the DAG's permission; pinned on a
    # real api-server by tests/e2e/test_gallery_browser.py and test_review_browser.py).
    assert _app.ReadXcoms.dependency in guards["/still/{dag_id}/{run_id}/{task_id}/{map_index}"]
    assert _app.ReadXcoms.dependency in guards["/video/{dag_id}/{run_id}/{task_id}/{map_index}"]
    with TestClient(app) as client:
        anonymous = client.get(URL)
    assert anonymous.status_code == 401 and anonymous.json()["detail"] == "Not authenticated"


def test_the_review_body_shows_the_latest_takes_still(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080/ops/")
    ti = SimpleNamespace(dag_id="dag one", run_id="manual__2026-12-06T12:00:00+00:00", task_id="clip", map_index=-1)
    stored = review_body({"ti": ti}, Take(1, result={"generation_id": "g1", "video_path": "file:///c/clip-g1.mp4"}))
    image = still_url("http://airflow.example:8080/ops", ti.dag_id, ti.run_id, "clip", -1)
    assert (
        image
        == "http://airflow.example:8080/ops/luma/still/dag%20one/manual__2026-12-06T12%3A00%3A00%2B00%3A00/clip/-1"
    )
    assert stored.startswith(f"![the latest take]({image})\n\n") and "[Luma renders gallery](" in stored
    # Takes that are not stored (no output_path) have no still: the body keeps only the links.
    unstored = review_body({"ti": ti}, Take(1, result={"generation_id": "g1", "video_path": None}))
    assert "![" not in unstored and "[Luma renders gallery](" in unstored
