"""Downloads to storage, driven through the simulator over a real socket: sizes, expiry, interruptions, layout."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_luma.core.media import download, media_client
from airflow_provider_luma.core.pricing import check_budget, estimate, parse_max_cost
from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.cost import summarize_costs
from airflow_provider_luma.exceptions import (
    LumaBudgetExceeded,
    LumaDownloadError,
    LumaMediaURLExpired,
    LumaValidationError,
)
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.runtime import delivery as _deliver
from airflow_provider_luma.runtime.storage import (
    StorageSink,
    asset_uri,
    browsable_url,
    parse_output_path,
    probe_writable,
)
from airflow_provider_luma.testing import Fault, LumaSimulatorServer, ManualClock
from airflow_provider_luma.testing._media import sample_mp4
from tests._helpers import deliver_after_the_url_expired, finished_render, media_requests, sim_connection

SIZE = 3 * 1024 * 1024 + 123  # several server chunks, not a round number
log = logging.getLogger("test_download")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part"))


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("airflow_provider_luma.core.media.time.sleep", slept.append)
    return slept


@pytest.mark.luma_simulator(video_size_bytes=SIZE)
def test_streams_the_exact_bytes_to_a_local_file(luma_simulator: LumaSimulatorServer, tmp_path: Path) -> None:
    render = finished_render(luma_simulator)
    final = ObjectStoragePath(f"file://{tmp_path}/clips/v.mp4")
    stats = download(media_client(), lambda fresh: render["video_url"], StorageSink(final), label="video")
    data = (tmp_path / "clips" / "v.mp4").read_bytes()
    assert stats.size == len(data) == SIZE and stats.attempts == 1 and stats.url_refreshes == 0
    assert data.startswith(sample_mp4()) and data[len(sample_mp4()) + 8 :] == bytes(SIZE - len(sample_mp4()) - 8)
    assert leftovers(tmp_path) == []


def test_writes_to_an_in_memory_object_store(luma_simulator: LumaSimulatorServer) -> None:
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    render = finished_render(luma_simulator)
    final = ObjectStoragePath("memory://bucket/renders/v.mp4")
    download(media_client(), lambda fresh: render["video_url"], StorageSink(final), label="video")
    assert final.read_bytes() == sample_mp4()
    assert [p.name for p in final.parent.iterdir()] == ["v.mp4"], "the temporary name is gone"


def test_expired_url_is_replaced_by_polling_the_request(luma_simulator: LumaSimulatorServer, tmp_path: Path) -> None:
    """The URL minted at success has expired by the time the download starts (2 h later): a fresh one is used."""
    render, result = deliver_after_the_url_expired(luma_simulator, f"{tmp_path}/{{generation_id}}.mp4")
    stored = tmp_path / f"{render['generation_id']}.mp4"
    assert stored.read_bytes() == sample_mp4()
    assert result["video_path"] == f"file://{stored}" and result["video_bytes"] == len(sample_mp4())
    assert result["video_url"] != render["video_url"], "the fresh URL replaces the expired one in the result"
    assert media_requests(luma_simulator) == [403, 200]


def test_a_url_that_stays_refused_even_when_refreshed_fails_after_a_bounded_number_of_tries(
    luma_simulator: LumaSimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("airflow_provider_luma.runtime.delivery.time.sleep", slept.append)
    luma_simulator.simulator.set_clock(ManualClock())  # time stands still: every URL minted is the same
    render = finished_render(luma_simulator)
    luma_simulator.simulator.inject(Fault.http_error(403, "Request has expired", on="download", times=10))
    spec = parse_output_path(f"{tmp_path}/")
    assert spec is not None
    hook = LumaHook()
    hook.get_connection = lambda conn_id: sim_connection(luma_simulator)  # type: ignore[method-assign]
    values = {"generation_id": render["generation_id"], "task_id": "render"}
    with pytest.raises(LumaMediaURLExpired, match="HTTP 403"):
        _deliver.store_outputs(hook, render, spec, values, log)
    assert slept == [2.0, 2.0, 2.0], "an unchanged URL is retried after a pause, three times at most"
    assert media_requests(luma_simulator) == [403] * 4 and list(tmp_path.iterdir()) == []


def test_interrupted_download_starts_over_and_never_shows_a_partial_file(
    luma_simulator: LumaSimulatorServer, tmp_path: Path, no_sleep: list[float]
) -> None:
    render = finished_render(luma_simulator)
    luma_simulator.simulator.inject(Fault.cut_body(after_bytes=1000))
    final = tmp_path / "v.mp4"
    sink = StorageSink(ObjectStoragePath(f"file://{final}"))
    stats = download(media_client(), lambda fresh: render["video_url"], sink, label="video")
    assert stats.attempts == 2 and len(no_sleep) == 1
    assert final.read_bytes() == sample_mp4() and leftovers(tmp_path) == []


def test_a_download_that_keeps_failing_leaves_nothing_behind(
    luma_simulator: LumaSimulatorServer, tmp_path: Path, no_sleep: list[float]
) -> None:
    render = finished_render(luma_simulator)
    luma_simulator.simulator.inject(Fault.cut_body(after_bytes=1000, times=10))
    final = tmp_path / "v.mp4"
    sink = StorageSink(ObjectStoragePath(f"file://{final}"))
    with pytest.raises(LumaDownloadError, match="got 1000 bytes but the server announced") as caught:
        download(media_client(), lambda fresh: render["video_url"], sink, label="video")
    assert caught.value.retryable, "an Airflow retry may still get it"
    assert "sig=" not in str(caught.value) and render["video_url"] not in str(caught.value)
    assert not final.exists() and list(tmp_path.iterdir()) == []
    assert media_requests(luma_simulator) == [200] * 4


def test_a_url_that_stays_refused_fails_after_a_few_fresh_ones(
    luma_simulator: LumaSimulatorServer, tmp_path: Path
) -> None:
    render = finished_render(luma_simulator)
    luma_simulator.simulator.inject(Fault.http_error(403, "Request has expired", on="download", times=10))
    asked: list[bool] = []

    def source(fresh: bool) -> str:
        asked.append(fresh)
        return str(render["video_url"])

    with pytest.raises(LumaMediaURLExpired, match="HTTP 403"):
        download(media_client(), source, StorageSink(ObjectStoragePath(f"file://{tmp_path}/v.mp4")), label="video")
    assert asked == [False, True, True, True] and list(tmp_path.iterdir()) == []


def test_other_client_errors_are_not_retried(luma_simulator: LumaSimulatorServer, tmp_path: Path) -> None:
    render = finished_render(luma_simulator)
    luma_simulator.simulator.inject(Fault.http_error(400, "Bad request", on="download", times=5))
    with pytest.raises(LumaDownloadError, match="HTTP 400"):
        sink = StorageSink(ObjectStoragePath(f"file://{tmp_path}/v"))
        download(media_client(), lambda fresh: render["video_url"], sink, label="video")
    assert media_requests(luma_simulator) == [400]


def test_no_api_key_is_sent_to_the_storage_host() -> None:
    assert "authorization" not in {name.lower() for name, _ in media_client().addheaders}


# -- output_path -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output_path", "video", "exr"),
    [
        ("/data/out/", "file:///data/out/t-g-1.mp4", "file:///data/out/t-g-1.exr"),
        ("/data/out", "file:///data/out/t-g-1.mp4", "file:///data/out/t-g-1.exr"),
        ("/data/{run_id}", "file:///data/manual__x/t-g-1.mp4", "file:///data/manual__x/t-g-1.exr"),  # no suffix: folder
        ("/data/v1.2", "file:///data/v1.2/t-g-1.mp4", "file:///data/v1.2/t-g-1.exr"),
        ("~/clips/", f"file://{Path.home()}/clips/t-g-1.mp4", None),  # a folder: {task_id}-{generation_id}
        ("file:///data/{task_id}/{generation_id}.mp4", "file:///data/t/g-1.mp4", "file:///data/t/g-1.exr"),
        ("/data/{run_id}/clip.{ext}", "file:///data/manual__x/clip.mp4", "file:///data/manual__x/clip.exr"),
        ("s3://aws_default@bucket/videos/", "s3://aws_default@bucket/videos/t-g-1.mp4", None),
    ],
)
def test_output_path_is_a_folder_or_a_pattern(output_path: str, video: str, exr: str | None) -> None:
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("s3", conn_id="aws_default", fs=MemoryFileSystem())  # stands in for s3fs: no provider, no network
    spec = parse_output_path(output_path)
    assert spec is not None
    values = {"generation_id": "g-1", "task_id": "t", "run_id": "manual__x"}
    assert str(spec.resolve("mp4", values)) == video
    if exr:
        assert str(spec.resolve("exr", values)) == exr


def test_placeholder_values_cannot_escape_the_folder() -> None:
    spec = parse_output_path("/data/{run_id}/{generation_id}.mp4")
    assert spec is not None
    assert str(spec.resolve("mp4", {"run_id": "r", "generation_id": "../../etc/x"})) == "file:///data/r/.._.._etc_x.mp4"
    assert str(spec.resolve("mp4", {"run_id": "..", "generation_id": "g"})) == "file:///data/_/g.mp4"


def test_only_placeholders_that_differ_per_render_make_a_mapped_pattern_safe() -> None:
    for unique in ("/d/", "/d/{map_index}.mp4", "/d/{request_id}/clip.mp4"):
        spec = parse_output_path(unique)
        assert spec is not None and spec.unique_per_render, unique
    spec = parse_output_path("/d/{run_id}/{task_id}.mp4")
    assert spec is not None and not spec.unique_per_render


@pytest.mark.parametrize(
    ("output_path", "fragment"),
    [
        ("/data/{gen_id}.mp4", "unknown placeholder(s) {gen_id}"),
        ("/data/{generation_id.mp4", "it is not a valid pattern"),
        ("nosuchfs://bucket/videos/", "cannot write to nosuchfs://"),
        ("output/", "a local path must be absolute"),
        ("C:\\videos\\", "use forward slashes"),
        ("/data/take#1/", "'?' and '#' are not allowed"),
        ("s3://b/dir?x=1", "'?' and '#' are not allowed"),
        ("/data/{{ run_id }}/", "braces left over"),
        ("/data/{map_index:03d}.mp4", "format specs and conversions"),
        ("/data/{generation_id!r}.mp4", "format specs and conversions"),
    ],
)
def test_bad_output_paths_name_the_field_and_rule(output_path: str, fragment: str) -> None:
    with pytest.raises(LumaValidationError) as caught:
        parse_output_path(output_path)
    assert f"output_path: got {output_path!r}; " in str(caught.value) and fragment in str(caught.value)


def test_write_probe_fails_before_spend_when_storage_is_unusable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    spec = parse_output_path(f"{tmp_path}/a-file/clips/")
    assert spec is not None
    with pytest.raises(LumaValidationError, match="output_path: cannot write to .*a-file/clips.*nothing was submitted"):
        probe_writable(spec)
    ok = parse_output_path(f"{tmp_path}/clips/{{run_id}}/")
    assert ok is not None
    probe_writable(ok)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "clips"]
    assert list((tmp_path / "clips").iterdir()) == [], "the probe file is removed"


def test_stale_temporary_files_of_a_killed_attempt_are_swept(
    luma_simulator: LumaSimulatorServer, tmp_path: Path
) -> None:
    render = finished_render(luma_simulator)
    (tmp_path / ".v.mp4.deadbeef.part").write_bytes(b"half a file from a SIGKILLed worker")
    sink = StorageSink(ObjectStoragePath(f"file://{tmp_path}/v.mp4"))
    download(media_client(), lambda fresh: render["video_url"], sink, label="video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_unset_output_path_means_no_download() -> None:
    assert parse_output_path(None) is None and parse_output_path("") is None and parse_output_path("None") is None


def test_asset_uris_drop_the_connection_id_and_links_open_browsable_copies() -> None:
    assert asset_uri(ObjectStoragePath("s3://aws_default@bucket/v/g.mp4")) == "s3://bucket/v/g.mp4"
    assert asset_uri(ObjectStoragePath("file:///data/g.mp4")) == "file:///data/g.mp4"
    assert browsable_url("s3://bucket/v/g.mp4") == "https://s3.console.aws.amazon.com/s3/object/bucket?prefix=v/g.mp4"
    assert browsable_url("gs://b/g.mp4") == "https://console.cloud.google.com/storage/browser/_details/b/g.mp4"
    assert browsable_url("file:///data/g.mp4") is None
    presigned = "http://127.0.0.1:1/files/g.mp4?expires=1&sig=abc"
    assert _deliver.video_link({"video_path": "file:///data/g.mp4", "video_url": presigned}) == presigned
    assert _deliver.video_link({"video_path": "s3://c@bucket/g.mp4", "video_url": presigned}).startswith("https://s3.")
    assert _deliver.video_link({"video_path": None, "video_url": None}) is None


# -- budget and cost report ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "cap", "fails"),
    [
        ({"resolution": "720p"}, "0.30", False),  # exactly at the cap is allowed
        ({"resolution": "720p"}, "0.29", True),
        ({"resolution": "1080p", "duration": "10s"}, 2.0, True),  # 2 blocks x $1.20
        ({"resolution": "1080p", "hdr": True, "exr_export": True}, 8.40, False),
        ({"resolution": "540p"}, None, False),
        ({"resolution": "540p"}, "$0.15", False),
    ],
)
def test_budget_guard_table(params: dict[str, Any], cap: Any, fails: bool) -> None:
    request = GenerateRequest.validate_params({"prompt": "p", **params})
    limit = parse_max_cost(cap)
    if not fails:
        check_budget(request, estimate(request), limit)
        return
    with pytest.raises(LumaBudgetExceeded) as caught:
        check_budget(request, estimate(request), limit)
    text = str(caught.value)
    assert f"max_cost_usd=${Decimal(str(cap)):.2f}" in text and f"resolution={request.resolution}" in text
    assert f"duration={request.duration}" in text and "Nothing was submitted" in text


@pytest.mark.parametrize("cap", ["cheap", -1, True, "nan"])
def test_invalid_caps_name_the_field(cap: Any) -> None:
    with pytest.raises(LumaValidationError, match="max_cost_usd: got"):
        parse_max_cost(cap)


def test_cost_summary_adds_every_map_index_and_counts_unpriced_renders_apart() -> None:
    report = summarize_costs({"opening": [0.3], "fanout": [0.15, None, 0.15], "extend": [0.3], "edit": [None]})
    assert report == {
        "total_estimated_cost_usd": 0.9,
        "renders": 4,
        "by_task": {"extend": 0.3, "fanout": 0.3, "opening": 0.3},
        "unpriced_renders": 2,
        "unpriced_tasks": ["edit", "fanout"],
    }
    assert summarize_costs({}) == {
        "total_estimated_cost_usd": 0.0,
        "renders": 0,
        "by_task": {},
        "unpriced_renders": 0,
        "unpriced_tasks": [],
    }


def test_a_body_without_content_length_is_read_to_the_end(tmp_path: Path) -> None:
    """Hosts that stream without a Content-Length (read until close) take the generic reader."""
    import socket
    import threading

    body = sample_mp4()
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp4\r\n\r\n" + body)

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/v.mp4"
    stats = download(media_client(), lambda fresh: url, StorageSink(ObjectStoragePath(f"file://{tmp_path}/v.mp4")),
                     label="video")  # fmt: skip
    server.close()
    assert stats.size == len(body) and (tmp_path / "v.mp4").read_bytes() == body
