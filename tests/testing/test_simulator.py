"""The Luma simulator, driven over a real socket with httpx.

Time is a :class:`ManualClock` wherever renders progress, so nothing sleeps except the ``slow`` fault tests.
"""

from __future__ import annotations

import json
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_luma.core.backends.gmi import parse_job
from airflow_provider_luma.testing import (
    DEFAULT_TEST_API_KEY,
    Fault,
    LoggedRequest,
    LumaSimulator,
    LumaSimulatorServer,
    ManualClock,
    sample_mp4,
)

pytest_plugins = ["pytester"]

MODEL = "luma-ray-3-2-generate"
AUTH = {"Authorization": f"Bearer {DEFAULT_TEST_API_KEY}"}
T0 = 1_750_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def server_kwargs() -> dict[str, Any]:
    """Override in a test with ``@pytest.mark.parametrize("server_kwargs", [...])`` or by indirect use."""
    return {}


@pytest.fixture
def server(clock: ManualClock, server_kwargs: dict[str, Any]) -> Iterator[LumaSimulatorServer]:
    with LumaSimulatorServer(clock=clock, **server_kwargs) as srv:
        yield srv


@pytest.fixture
def sim(server: LumaSimulatorServer) -> LumaSimulator:
    return server.simulator


@pytest.fixture
def client(server: LumaSimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=5.0) as c:
        yield c


def submit(client: httpx.Client, **payload: Any) -> httpx.Response:
    return client.post("/requests", json={"model": MODEL, "payload": {"prompt": "a misty greenhouse", **payload}})


def submit_id(client: httpx.Client, **payload: Any) -> str:
    response = submit(client, **payload)
    assert response.status_code == 200, response.text
    return str(response.json()["request_id"])


def poll(client: httpx.Client, request_id: str) -> dict[str, Any]:
    response = client.get(f"/requests/{request_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- server basics, auth, validation ---------------------------------------------------------------------


def test_urls_and_connection_json(server: LumaSimulatorServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/api/v1/ie/requestqueue/apikey"
    assert server.root_url == f"http://127.0.0.1:{server.port}"
    assert json.loads(server.airflow_conn_json()) == {
        "conn_type": "luma",
        "host": server.base_url,
        "password": DEFAULT_TEST_API_KEY,
    }
    assert json.loads(server.airflow_conn_json(conn_type="http"))["conn_type"] == "http"


def test_stop_closes_the_port() -> None:
    server = LumaSimulatorServer().start()
    url = server.base_url + "/models"
    assert httpx.get(url, headers=AUTH).status_code == 200
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, headers=AUTH, timeout=2.0)


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": DEFAULT_TEST_API_KEY}]
)
def test_requests_without_the_key_get_401(server: LumaSimulatorServer, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/models"), ("POST", "/requests"), ("GET", "/requests/x")):
        response = httpx.request(method, server.base_url + path, headers=headers, json={"model": MODEL})
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid API key"}
    assert server.simulator.generations() == []


def test_custom_api_key_is_the_only_one_accepted() -> None:
    with LumaSimulatorServer(api_key="other-key") as server:
        url = server.base_url + "/models"
        assert httpx.get(url, headers=AUTH).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer other-key"}).status_code == 200
        assert json.loads(server.airflow_conn_json())["password"] == "other-key"


def test_models(client: httpx.Client) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    assert response.json() == {"model_ids": ["luma-ray-3-2-generate", "luma-ray-3-2-edit", "luma-ray-3-2-reframe"]}


@pytest.mark.parametrize(
    ("payload", "fragments"),
    [
        ({"hdr": True, "resolution": "540p"}, ["hdr", "540p"]),
        ({"aspect_ratio": "2:1"}, ["aspect_ratio", "image-only"]),
        ({"duration": "10s", "loop": True}, ["loop", "10s"]),
        ({"seed": 3}, ["seed", "not a parameter"]),
    ],
)
def test_invalid_payload_gets_400_naming_the_field(
    client: httpx.Client, sim: LumaSimulator, payload: dict[str, Any], fragments: list[str]
) -> None:
    response = submit(client, **payload)
    assert response.status_code == 400
    error = response.json()["error"]
    for fragment in fragments:
        assert fragment in error
    assert sim.generations() == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"model": "luma-ray-2", "payload": {"prompt": "x"}}, "Unknown model: luma-ray-2"),
        ({"payload": {"prompt": "x"}}, "Unknown model: (missing)"),
        ({"model": "luma-ray-3-2-upscale", "payload": {"prompt": "x"}}, "Unknown model: luma-ray-3-2-upscale"),
        ({"model": ["luma-ray-3-2-edit"], "payload": {"prompt": "x"}}, "Unknown model: ['luma-ray-3-2-edit']"),
        ({"model": MODEL, "payload": "a prompt"}, "payload must be a JSON object"),
        ([1, 2], "Request body must be a JSON object"),
    ],
)
def test_bad_body_gets_400(client: httpx.Client, body: Any, error: str) -> None:
    response = client.post("/requests", json=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)


def test_non_json_body_gets_400(client: httpx.Client) -> None:
    response = client.post("/requests", content=b"prompt=hello", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert response.json() == {"error": "Request body is not valid JSON"}


def test_unknown_request_and_path_get_404(client: httpx.Client) -> None:
    assert client.get("/requests/no-such-id").status_code == 404
    assert client.get("/requests/no-such-id").json() == {"error": "Request not found"}
    assert client.get("/nothing-here").json() == {"error": "Not found"}
    assert client.delete("/requests").status_code == 405


# -- progression, styles, chaining -------------------------------------------------------------------------


def test_request_progresses_queued_processing_success(
    client: httpx.Client, clock: ManualClock, server: LumaSimulatorServer
) -> None:
    created = submit(client, resolution="720p", duration="5s")  # 60 s render, first 9 s queued
    body = created.json()
    assert set(body) == {"request_id", "model", "status", "created_at", "updated_at", "queued_at"}
    assert (body["model"], body["status"], body["created_at"], body["queued_at"]) == (MODEL, "queued", T0, T0)
    request_id = body["request_id"]

    clock.advance(8.9)
    assert poll(client, request_id)["status"] == "queued"
    clock.advance(0.2)
    processing = poll(client, request_id)
    assert processing["status"] == "processing"
    assert processing["updated_at"] == int(T0 + 9)
    assert processing["outcome"] == {}
    assert processing["payload"] == {"prompt": "a misty greenhouse", "resolution": "720p", "duration": "5s"}

    clock.set(T0 + 60)
    done = poll(client, request_id)
    assert done["status"] == "success"
    assert done["updated_at"] == int(T0 + 60)
    outcome = done["outcome"]
    assert set(outcome) == {"generation_id", "video_url", "media_urls"}
    assert outcome["media_urls"] == [{"url": outcome["video_url"]}]
    assert outcome["video_url"].startswith(f"{server.root_url}/files/{outcome['generation_id']}.mp4?expires=")
    assert server.simulator.generation(request_id).generation_id == outcome["generation_id"]


@pytest.mark.parametrize(
    ("payload", "seconds"),
    [
        ({"resolution": "540p"}, 40),
        ({"resolution": "720p"}, 60),
        ({"resolution": "1080p"}, 120),
        ({"resolution": "720p", "duration": "10s"}, 120),
        ({"resolution": "1080p", "hdr": True}, 300),
        ({"resolution": "720p", "hdr": True, "exr_export": True}, 180),
    ],
)
def test_render_time_grows_with_resolution_duration_and_hdr(
    client: httpx.Client, clock: ManualClock, payload: dict[str, Any], seconds: float
) -> None:
    request_id = submit_id(client, **payload)
    clock.advance(seconds - 0.5)
    assert poll(client, request_id)["status"] == "processing"
    clock.advance(0.5)
    assert poll(client, request_id)["status"] == "success"


def test_time_factor_and_fixed_render_seconds(clock: ManualClock) -> None:
    sim = LumaSimulator(clock=clock, time_factor=0.5)
    body, _ = sim.submit({"model": MODEL, "payload": {"prompt": "x", "resolution": "1080p"}})
    assert sim.generation(body["request_id"]).finishes_at == T0 + 60
    sim.configure(render_seconds=7.0)  # overrides both the table and time_factor
    body, _ = sim.submit({"model": MODEL, "payload": {"prompt": "x", "resolution": "1080p", "hdr": True}})
    assert sim.generation(body["request_id"]).finishes_at == T0 + 7
    with pytest.raises(ValueError, match="time_factor"):
        sim.configure(time_factor=-1)
    with pytest.raises(ValueError, match="unknown setting"):
        sim.configure(speed=2)


def test_create_answer_says_queued_even_when_the_render_is_instant(clock: ManualClock) -> None:
    sim = LumaSimulator(clock=clock, render_seconds=0)
    body, headers = sim.submit({"model": MODEL, "payload": {"prompt": "x"}})
    assert (body["status"], headers) == ("queued", {})
    assert sim.get_request(body["request_id"], root_url="http://sim.test")["status"] == "success"


@pytest.mark.parametrize("server_kwargs", [{"response_style": "flat"}])
def test_flat_style_puts_results_at_the_top_level(client: httpx.Client, clock: ManualClock) -> None:
    request_id = submit_id(client, hdr=True, exr_export=True)
    assert "outcome" not in poll(client, request_id)
    clock.advance(1000)
    body = poll(client, request_id)
    assert "outcome" not in body
    assert body["video_url"].split("?")[0].endswith(body["generation_id"] + ".mp4")
    assert body["exr_url"].split("?")[0].endswith(body["generation_id"] + ".exr")
    parsed = parse_job(body)
    assert (parsed.generation_id, parsed.video_url, parsed.exr_url) == (
        body["generation_id"],
        body["video_url"],
        body["exr_url"],
    )


def test_outcome_style_lists_the_exr_export(client: httpx.Client, clock: ManualClock) -> None:
    request_id = submit_id(client, hdr=True, exr_export=True)
    clock.advance(1000)
    outcome = poll(client, request_id)["outcome"]
    assert outcome["media_urls"][1]["type"] == "exr"
    exr = httpx.get(outcome["media_urls"][1]["url"])
    assert exr.status_code == 200
    assert exr.headers["content-type"] == "image/x-exr"
    assert exr.content.startswith(b"v/1\x01")
    parsed = parse_job(poll(client, request_id))
    assert parsed.exr_url is not None and parsed.exr_url.split("?")[0].endswith(".exr")


def test_chain_reference_to_unknown_generation_fails_asynchronously(
    client: httpx.Client, clock: ManualClock, sim: LumaSimulator
) -> None:
    created = submit(client, start_frame_generation_id="not-a-generation")
    assert created.status_code == 200
    request_id = created.json()["request_id"]
    assert poll(client, request_id)["status"] == "queued"
    clock.advance(60)
    body = poll(client, request_id)
    reason = "start_frame_generation_id 'not-a-generation' does not name a completed generation"
    assert body["status"] == "failed"
    assert body["error"] == reason
    assert body["outcome"] == {"error": reason, "failure_code": "invalid_request"}
    record = sim.generation(request_id)
    assert (record.status, record.failure_code, record.chained_from) == (
        "failed",
        "invalid_request",
        ("not-a-generation",),
    )
    assert record.chained_from_request_ids == ()


def test_chain_reference_to_a_succeeded_generation_renders(
    client: httpx.Client, clock: ManualClock, sim: LumaSimulator
) -> None:
    first = submit_id(client)
    clock.advance(60)
    generation_id = poll(client, first)["outcome"]["generation_id"]

    extend = submit_id(client, start_frame_generation_id=generation_id)
    interpolate = submit_id(client, start_frame_generation_id=generation_id, end_frame_url="https://x.test/end.png")
    clock.advance(60)
    assert poll(client, extend)["status"] == "success"
    assert poll(client, interpolate)["status"] == "success"
    record = sim.generation(extend)
    assert record.start_frame_generation_id == generation_id
    assert record.end_frame_generation_id is None
    assert record.chained_from == (generation_id,)
    assert record.chained_from_request_ids == (first,)
    assert sim.generation(first).chained_from == ()


# -- media URLs and downloads --------------------------------------------------------------------------------


@pytest.mark.parametrize("server_kwargs", [{"url_ttl_seconds": 100}])
def test_expired_url_gets_403_and_a_fresh_poll_mints_a_working_one(client: httpx.Client, clock: ManualClock) -> None:
    request_id = submit_id(client)
    clock.advance(60)
    old_url = poll(client, request_id)["outcome"]["video_url"]
    assert httpx.get(old_url).status_code == 200
    clock.advance(101)
    expired = httpx.get(old_url)
    assert expired.status_code == 403
    assert b"Request has expired" in expired.content
    new_url = poll(client, request_id)["outcome"]["video_url"]
    assert new_url != old_url
    assert httpx.get(new_url).status_code == 200


def test_tampered_or_unsigned_url_gets_403(client: httpx.Client, clock: ManualClock) -> None:
    request_id = submit_id(client)
    clock.advance(60)
    url = poll(client, request_id)["outcome"]["video_url"]
    assert httpx.get(url[:-4] + "0000").status_code == 403
    assert httpx.get(url.split("?")[0]).status_code == 403
    # The signature covers the file name: an MP4 signature does not open the (absent) EXR.
    assert httpx.get(url.replace(".mp4?", ".exr?")).status_code == 403


def test_mp4_download_is_the_bundled_sample(client: httpx.Client, clock: ManualClock) -> None:
    request_id = submit_id(client)
    clock.advance(60)
    url = poll(client, request_id)["outcome"]["video_url"]
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content) == len(sample_mp4())
    assert response.content[4:8] == b"ftyp"
    assert response.content == sample_mp4()
    assert 0 < len(sample_mp4()) <= 100_000

    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(sample_mp4()))
    assert head.content == b""


@pytest.mark.parametrize("server_kwargs", [{"video_size_bytes": 3 * (1 << 20) + 12345}])
def test_video_size_bytes_pads_with_a_free_box(client: httpx.Client, clock: ManualClock) -> None:
    request_id = submit_id(client)
    clock.advance(60)
    url = poll(client, request_id)["outcome"]["video_url"]
    size = 3 * (1 << 20) + 12345
    with httpx.stream("GET", url) as response:
        assert response.headers["content-length"] == str(size)
        data = response.read()
    sample = sample_mp4()
    assert len(data) == size
    assert data[: len(sample)] == sample
    box_size, box_type = struct.unpack(">I4s", data[len(sample) : len(sample) + 8])
    assert (box_size, box_type) == (size - len(sample), b"free")  # players skip it, so the file still plays


# -- faults -------------------------------------------------------------------------------------------------


def test_rpm_fault_answers_429_with_rate_limit_headers(client: httpx.Client, sim: LumaSimulator) -> None:
    sim.inject(Fault.rate_limit_rpm(retry_after=7))
    response = submit(client)
    assert response.status_code == 429
    assert response.json() == {"error": "Rate limit exceeded"}
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-ratelimit-limit"] == "30"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-ratelimit-reset"] == str(int(T0 + 7))
    assert sim.generations() == []
    assert submit(client).status_code == 200  # used up after one request


def test_concurrency_fault_answers_429_without_rate_limit_headers(client: httpx.Client, sim: LumaSimulator) -> None:
    sim.inject(Fault.rate_limit_concurrency())
    response = submit(client)
    assert response.status_code == 429
    assert response.json() == {"error": "Too many concurrent jobs"}
    assert response.headers["retry-after"] == "60"
    assert not [name for name in response.headers if name.lower().startswith("x-ratelimit")]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_error_fault(client: httpx.Client, sim: LumaSimulator, status: int) -> None:
    sim.inject(Fault.http_error(status, message="Backend error (400). Please try again.", on="poll"))
    request_id = submit_id(client)  # the fault targets polls only
    response = client.get(f"/requests/{request_id}")
    assert response.status_code == status
    assert response.json() == {"error": "Backend error (400). Please try again."}
    assert client.get(f"/requests/{request_id}").status_code == 200


def test_html_error_fault(client: httpx.Client, sim: LumaSimulator) -> None:
    sim.inject(Fault.html_error(502))
    response = client.get("/models")
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert "<html>" in response.text and "502 Bad Gateway" in response.text


def test_drop_connection_fault_is_a_transport_error_and_creates_nothing(
    client: httpx.Client, sim: LumaSimulator
) -> None:
    sim.inject(Fault.drop_connection(on="submit"))
    with pytest.raises(httpx.TransportError):
        submit(client)
    assert sim.generations() == []
    assert sim.create_requests() == []
    entry = sim.request_log[-1]
    assert (entry.method, entry.status, entry.fault, entry.request_id) == ("POST", None, "drop_connection", None)
    assert submit(client).status_code == 200


def test_drop_after_accept_still_creates_and_renders_the_request(
    client: httpx.Client, sim: LumaSimulator, clock: ManualClock
) -> None:
    sim.inject(Fault.drop_after_accept())
    with pytest.raises(httpx.TransportError):
        submit(client, resolution="540p")
    [created] = sim.create_requests()
    assert (created.status, created.fault, created.payload["payload"]["resolution"]) == (
        None,
        "drop_after_accept",
        "540p",
    )
    assert created.request_id is not None
    clock.advance(40)
    assert poll(client, created.request_id)["status"] == "success"


def test_slow_fault_delays_the_answer(client: httpx.Client, sim: LumaSimulator) -> None:
    sim.inject(Fault.slow(0.3, on="models"))
    started = time.monotonic()
    assert client.get("/models").status_code == 200
    assert time.monotonic() - started >= 0.3
    sim.inject(Fault.slow(1.0, on="models"))
    with pytest.raises(httpx.ReadTimeout):
        client.get("/models", timeout=0.2)
    assert sim.request_log[-1].fault == "slow"


def test_malformed_fault_sends_invalid_json_with_200(client: httpx.Client, sim: LumaSimulator) -> None:
    sim.inject(Fault.malformed(on="submit"))
    response = submit(client)
    assert response.status_code == 200
    assert response.text == '{"request_id": "abc", "sta'
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_fail_generation_fault_fails_the_next_accepted_render(
    client: httpx.Client, sim: LumaSimulator, clock: ManualClock
) -> None:
    sim.inject(Fault.fail_generation("Content moderated", "content_moderated"))
    assert submit(client, resolution="540p", hdr=True).status_code == 400  # rejected: does not consume it
    doomed = submit_id(client)
    fine = submit_id(client)
    clock.advance(59)
    assert poll(client, doomed)["status"] == "processing"  # fails only once it has rendered
    clock.advance(1)
    body = poll(client, doomed)
    assert body["status"] == "failed"
    assert body["error"] == "Content moderated"
    assert body["outcome"] == {"error": "Content moderated", "failure_code": "content_moderated"}
    assert poll(client, fine)["status"] == "success"


def test_faults_are_fifo_match_their_target_and_last_for_times(client: httpx.Client, sim: LumaSimulator) -> None:
    sim.inject(Fault.http_error(500, on="poll"), Fault.http_error(502, on="submit", times=2))
    assert submit(client).status_code == 502
    assert submit(client).status_code == 502
    request_id = submit_id(client)
    assert client.get(f"/requests/{request_id}").status_code == 500
    assert client.get(f"/requests/{request_id}").status_code == 200
    assert sim.pending_faults == []


def test_fault_specs_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.from_dict({"kind": "explode"})
    with pytest.raises(ValueError, match="submits only"):
        Fault.from_dict({"kind": "fail_generation", "on": "poll"})
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_dict({"kind": "slow", "delay": 3})
    assert Fault.from_dict({"kind": "http_error", "on": "poll"}) == Fault.http_error(500, on="poll")


# -- rate limits --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("server_kwargs", [{"max_concurrent_jobs": 2, "concurrency_retry_after": 45}])
def test_concurrency_limit(client: httpx.Client, sim: LumaSimulator) -> None:
    first = submit_id(client)
    submit_id(client)
    response = submit(client)
    assert response.status_code == 429
    assert response.json() == {"error": "Too many concurrent jobs"}
    assert response.headers["retry-after"] == "45"
    assert "x-ratelimit-limit" not in response.headers
    sim.complete_now(first)
    assert submit(client).status_code == 200


@pytest.mark.parametrize("server_kwargs", [{"rpm_limit": 2}])
def test_rpm_limit_uses_a_sliding_window(client: httpx.Client, clock: ManualClock) -> None:
    ok = submit(client)
    assert ok.headers["x-ratelimit-limit"] == "2" and ok.headers["x-ratelimit-remaining"] == "1"
    clock.advance(10)
    assert submit(client).headers["x-ratelimit-remaining"] == "0"
    clock.advance(10)
    limited = submit(client)
    assert limited.status_code == 429
    assert limited.json() == {"error": "Rate limit exceeded"}
    assert limited.headers["retry-after"] == "40"  # the oldest submit leaves the window at T0 + 60
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-reset"] == str(int(T0 + 60))
    assert client.get("/models").status_code == 200  # reads are not limited
    clock.set(T0 + 60)
    assert submit(client).status_code == 200
    assert submit(client).status_code == 429


def test_concurrency_limit_holds_under_parallel_submits() -> None:
    statuses: list[int] = []
    with (
        LumaSimulatorServer(max_concurrent_jobs=5) as server,
        httpx.Client(base_url=server.base_url, headers=AUTH, timeout=5.0) as shared,
    ):
        threads = [threading.Thread(target=lambda: statuses.append(submit(shared).status_code)) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(statuses) == [200] * 5 + [429] * 15


# -- request log, admin surface -------------------------------------------------------------------------------


def test_request_log_records_everything_but_the_key(client: httpx.Client, sim: LumaSimulator) -> None:
    httpx.get(client.base_url.join("models"))  # no key: 401
    sim.inject(Fault.http_error(503, on="models"))
    client.get("/models")
    request_id = submit_id(client)
    log = sim.request_log
    assert [(e.method, e.status, e.fault) for e in log] == [
        ("GET", 401, None),
        ("GET", 503, "http_error"),
        ("POST", 200, None),
    ]
    assert log[2] == LoggedRequest(
        method="POST",
        path="/api/v1/ie/requestqueue/apikey/requests",
        status=200,
        payload={"model": MODEL, "payload": {"prompt": "a misty greenhouse"}},
        request_id=request_id,
        fault=None,
        at=T0,
    )
    assert DEFAULT_TEST_API_KEY not in repr(log)
    assert client.post(f"/requests/{request_id}", json={}).status_code == 405  # names a request, creates none
    assert [e.request_id for e in sim.create_requests()] == [request_id]


def test_admin_endpoints(server: LumaSimulatorServer, client: httpx.Client, clock: ManualClock) -> None:
    admin = server.admin_url
    faults = [{"kind": "http_error", "status": 503, "on": "models"}, {"kind": "fail_generation", "reason": "boom"}]
    assert httpx.post(f"{admin}/faults", json=faults).json()["queued"] == 2
    assert httpx.post(f"{admin}/faults", json=[{"kind": "nope"}]).status_code == 400
    assert len(server.simulator.pending_faults) == 2  # the bad batch queued nothing
    assert client.get("/models").status_code == 503

    config = httpx.post(f"{admin}/config", json={"response_style": "flat", "time_factor": 0.5}).json()
    assert (config["response_style"], config["time_factor"]) == ("flat", 0.5)
    assert httpx.post(f"{admin}/config", json={"time_factor": "fast"}).status_code == 400
    assert httpx.get(f"{admin}/config").json()["response_style"] == "flat"

    request_id = submit_id(client)
    completed = httpx.post(f"{admin}/requests/{request_id}/complete").json()
    assert (completed["status"], completed["error"]) == ("failed", "boom")
    other = submit_id(client)
    assert httpx.post(f"{admin}/requests/{other}/complete").json()["status"] == "success"
    assert poll(client, other)["video_url"]  # flat style now
    assert httpx.post(f"{admin}/requests/missing/complete").status_code == 404

    logged = httpx.get(f"{admin}/requests").json()["requests"]
    assert [(e["method"], e["status"], e["fault"]) for e in logged][:2] == [
        ("GET", 503, "http_error"),
        ("POST", 200, None),
    ]
    assert all(not e["path"].startswith("/_sim") for e in logged)
    generations = httpx.get(f"{admin}/generations").json()["generations"]
    assert [g["request_id"] for g in generations] == [request_id, other]

    assert httpx.post(f"{admin}/reset").json() == {"status": "reset"}
    assert httpx.get(f"{admin}/requests").json() == {"requests": []}
    assert client.get(f"/requests/{other}").status_code == 404


def test_admin_fail_endpoint(server: LumaSimulatorServer, client: httpx.Client) -> None:
    request_id = submit_id(client)
    url = f"{server.admin_url}/requests/{request_id}/fail"
    failed = httpx.post(url, json={"reason": "GPU fell over", "failure_code": "generation_failed"}).json()
    assert failed["status"] == "failed"
    assert poll(client, request_id)["outcome"] == {"error": "GPU fell over", "failure_code": "generation_failed"}
    assert httpx.post(url, json={}).status_code == 400  # already ended


# -- the CLI ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_serves_until_sigterm() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "airflow_provider_luma.testing", "--port", str(port), "--api-key", "cli-key",
               "--time-factor", "0.05"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        export = process.stdout.readline()
        base_url = f"http://127.0.0.1:{port}/api/v1/ie/requestqueue/apikey"
        assert first.strip() == f"Luma simulator listening on {base_url}"
        name, _, value = shlex.split(export.removeprefix("export "))[0].partition("=")
        assert name == "AIRFLOW_CONN_LUMA_DEFAULT"
        # The schedule follows the simulator's clock, or --time-factor would barely shorten a wait.
        assert json.loads(value) == {
            "conn_type": "luma",
            "host": base_url,
            "password": "cli-key",
            "extra": {"schedule_time_factor": 0.05},
        }
        response = httpx.get(base_url + "/models", headers={"Authorization": "Bearer cli-key"}, timeout=5.0)
        assert response.json()["model_ids"][0] == MODEL
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()


# -- the pytest plugin --------------------------------------------------------------------------------------


def test_luma_simulator_fixture_is_running_and_fast(luma_simulator: LumaSimulatorServer) -> None:
    assert luma_simulator.running
    assert luma_simulator.simulator.config.time_factor == 0.01
    assert httpx.get(luma_simulator.base_url + "/models", headers=AUTH).status_code == 200


def test_plugin_fixtures_and_marker(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_LUMA_DEFAULT", raising=False)
    pytester.makepyfile(
        """
        import json, os
        import httpx, pytest

        ROOT = []

        @pytest.mark.luma_simulator(render_seconds=0, response_style="flat", api_key="k2")
        def test_marker_configures_the_server(luma_conn_env):
            conn = json.loads(os.environ["AIRFLOW_CONN_LUMA_DEFAULT"])
            assert conn == {"conn_type": "luma", "host": luma_conn_env.base_url, "password": "k2"}
            auth = {"Authorization": "Bearer k2"}
            body = {"model": "luma-ray-3-2-generate", "payload": {"prompt": "x"}}
            rid = httpx.post(conn["host"] + "/requests", json=body, headers=auth).json()["request_id"]
            record = httpx.get(conn["host"] + "/requests/" + rid, headers=auth).json()
            assert record["status"] == "success" and "outcome" not in record
            ROOT.append(luma_conn_env.root_url)

        def test_env_is_restored_and_server_stopped():
            assert "AIRFLOW_CONN_LUMA_DEFAULT" not in os.environ
            with pytest.raises(httpx.ConnectError):
                httpx.get(ROOT[0] + "/_sim/requests", timeout=2.0)

        def test_default_time_factor(luma_simulator):
            assert luma_simulator.simulator.config.time_factor == 0.01
        """
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=3)


def test_plugin_import_is_light() -> None:
    code = (
        "import sys, pytest; before = set(sys.modules); import airflow_provider_luma.testing.pytest_plugin; "
        "print(sorted(m for m in set(sys.modules) - before))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pydantic" not in loaded and "airflow_provider_luma.testing._state" not in loaded
    assert "http.server" not in loaded


def test_public_api_is_sorted_and_importable() -> None:
    import airflow_provider_luma.testing as testing

    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        assert getattr(testing, name) is not None
    assert testing.DEFAULT_TEST_API_KEY == "sim-test-key-7f3a9c2e"
    from airflow_provider_luma.core.specs.generate import MODEL_ID
    from airflow_provider_luma.testing._types import GENERATE_MODEL_ID

    assert GENERATE_MODEL_ID == MODEL_ID  # _types keeps its own copy to stay import-light
