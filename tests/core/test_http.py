"""The real sync/async clients against the simulator over a socket."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_luma.core.http import AsyncLumaClient, ClientSettings, LumaClient
from airflow_provider_luma.core.jobs import JobStatus
from airflow_provider_luma.core.retry import RetryPolicy
from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.exceptions import LumaAuthError, LumaNotFoundError, LumaSubmissionOutcomeUnknown
from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY, Fault, LumaSimulatorServer

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


def client_for(server: LumaSimulatorServer, key: str = DEFAULT_TEST_API_KEY) -> LumaClient:
    return LumaClient(ClientSettings(base_url=server.base_url, api_key=key, retry=FAST))


def test_text_to_video_round_trip(luma_simulator: LumaSimulatorServer) -> None:
    sim = luma_simulator.simulator
    with client_for(luma_simulator) as client:
        created = client.submit(GenerateRequest.validate_params({"prompt": "a fox in snow", "resolution": "540p"}))
        assert created.status is JobStatus.QUEUED
        sim.complete_now(created.request_id)
        done = client.get_generation(created.request_id)
    assert done.status is JobStatus.SUCCESS
    assert done.generation_id and done.video_url and done.exr_url is None
    assert httpx.get(done.video_url).content[4:8] == b"ftyp"  # a real MP4 behind the presigned URL
    assert sim.generation(created.request_id).payload == {"prompt": "a fox in snow", "resolution": "540p"}


@pytest.mark.luma_simulator(response_style="flat")
def test_flat_responses_parse_the_same(luma_simulator: LumaSimulatorServer) -> None:
    with client_for(luma_simulator) as client:
        rid = client.submit(
            GenerateRequest.validate_params({"prompt": "p", "hdr": True, "exr_export": True})
        ).request_id
        luma_simulator.simulator.complete_now(rid)
        done = client.get_generation(rid)
    assert done.generation_id and done.video_url and done.exr_url and done.exr_url.split("?")[0].endswith(".exr")


def test_chain_reference_to_unknown_generation_fails_with_reason(luma_simulator: LumaSimulatorServer) -> None:
    with client_for(luma_simulator) as client:
        rid = client.submit(
            GenerateRequest.validate_params({"prompt": "p", "start_frame_generation_id": "nope"})
        ).request_id
        luma_simulator.simulator.complete_now(rid)
        done = client.get_generation(rid)
    assert done.status is JobStatus.FAILED
    assert done.error and "nope" in done.error


def test_wrong_key_is_auth_error_and_unknown_request_is_not_found(luma_simulator: LumaSimulatorServer) -> None:
    with client_for(luma_simulator, key="wrong-key-123") as client, pytest.raises(LumaAuthError):
        client.get_generation("r")
    with client_for(luma_simulator) as client, pytest.raises(LumaNotFoundError):
        client.get_generation("does-not-exist")


def test_poll_survives_faults_and_submit_never_doubles(luma_simulator: LumaSimulatorServer) -> None:
    sim = luma_simulator.simulator
    sim.inject(Fault.http_error(503, on="poll"), Fault.drop_connection(on="poll"), Fault.html_error(502, on="poll"))
    with client_for(luma_simulator) as client:
        rid = client.submit(GenerateRequest.validate_params({"prompt": "p"})).request_id
        assert client.get_generation(rid).request_id == rid
        sim.inject(Fault.drop_after_accept())
        with pytest.raises(LumaSubmissionOutcomeUnknown):
            client.submit(GenerateRequest.validate_params({"prompt": "second"}))
    assert len(sim.create_requests()) == 2  # the lost answer was not followed by a resend


def test_submit_retries_rate_limits(luma_simulator: LumaSimulatorServer) -> None:
    sim = luma_simulator.simulator
    sim.inject(Fault.rate_limit_rpm(retry_after=5), Fault.rate_limit_concurrency(retry_after=60))
    slept: list[float] = []
    settings = ClientSettings(base_url=luma_simulator.base_url, api_key=DEFAULT_TEST_API_KEY, retry=FAST)
    with LumaClient(settings, sleep=slept.append) as client:
        assert client.submit(GenerateRequest.validate_params({"prompt": "p"})).request_id
    assert slept == [5.0, 60.0]  # the server's Retry-After, not our backoff
    assert len(sim.create_requests()) == 1
    assert [e.status for e in sim.request_log if e.method == "POST"] == [429, 429, 200]


async def test_async_client_round_trip(luma_simulator: LumaSimulatorServer) -> None:
    settings = ClientSettings(base_url=luma_simulator.base_url, api_key=DEFAULT_TEST_API_KEY, retry=FAST)
    async with AsyncLumaClient(settings) as client:
        rid = (await client.asubmit(GenerateRequest.validate_params({"prompt": "p"}))).request_id
        luma_simulator.simulator.complete_now(rid)
        assert (await client.aget_generation(rid)).status is JobStatus.SUCCESS
        assert "luma-ray-3-2-generate" in await client.alist_models()
