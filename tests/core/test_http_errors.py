"""Status → exception mapping, retries and malformed bodies, through httpx.MockTransport (time is patched).

Behaviour against the full simulator over a socket lives in test_http.py; these tables pin the edge cases a
real server rarely produces on demand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_luma.core.http import (
    USER_AGENT,
    AsyncLumaClient,
    ClientSettings,
    LumaClient,
    normalize_base_url,
)
from airflow_provider_luma.core.retry import RetryPolicy
from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.exceptions import (
    LumaAuthError,
    LumaBadRequestError,
    LumaConnectionError,
    LumaError,
    LumaInsufficientCreditsError,
    LumaNotFoundError,
    LumaRateLimitError,
    LumaResponseError,
    LumaServerError,
    LumaSubmissionOutcomeUnknown,
    LumaTimeoutError,
)

KEY = "sk-test-SECRETKEY-123456"
BASE = "http://luma.test/api/v1/ie/requestqueue/apikey"
REQUEST = GenerateRequest.validate_params({"prompt": "a fox"})
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that plays a script of responses/exceptions and records requests."""

    def __init__(self, *script: httpx.Response | Exception) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item


def make_client(recorder: Recorder, sleeps: list[float], **settings: Any) -> LumaClient:
    policy = settings.pop("retry", RetryPolicy(max_attempts=4))
    return LumaClient(
        ClientSettings(base_url=BASE, api_key=KEY, retry=policy, **settings),
        transport=httpx.MockTransport(recorder),
        sleep=sleeps.append,
    )


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def err(
    status: int, body: Any = None, headers: dict[str, str] | None = None, text: str | None = None
) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    return httpx.Response(status, json=body if body is not None else {"error": f"e{status}"}, headers=headers)


def test_submit_sends_model_payload_and_headers() -> None:
    rec, sleeps = Recorder(ok({"request_id": "r1", "status": "queued"})), []
    client = make_client(rec, sleeps, organization_id="org-9")
    generation = client.submit(GenerateRequest.validate_params({"prompt": "a fox", "resolution": "1080p"}))
    sent = rec.requests[0]
    assert generation.request_id == "r1" and generation.status == "queued"
    assert sent.method == "POST" and str(sent.url) == f"{BASE}/requests"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-organization-id"] == "org-9"
    assert sent.headers["user-agent"] == USER_AGENT and USER_AGENT.startswith("airflow-provider-luma/")
    assert httpx.Response(200, content=sent.content).json() == {
        "model": "luma-ray-3-2-generate",
        "payload": {"prompt": "a fox", "resolution": "1080p"},
    }


STATUS_TABLE = [
    (400, LumaBadRequestError, {"error": "Prompt must be between 1 and 6000 characters"}),
    (401, LumaAuthError, {"error": "Invalid API key"}),
    (402, LumaInsufficientCreditsError, {"detail": "Insufficient credits. Please add credits to continue."}),
    (403, LumaAuthError, {"detail": "API client is suspended"}),
    (404, LumaNotFoundError, {"error": "Request not found"}),
    (413, LumaBadRequestError, {"detail": "too large"}),
    (422, LumaBadRequestError, {"detail": "source: failed to fetch URL (HTTP 404)"}),
    (500, LumaServerError, {"error": "Backend error (400). Please try again."}),
    (503, LumaServerError, {"error": "Upstream service unavailable"}),
]


@pytest.mark.parametrize(("status", "cls", "body"), STATUS_TABLE)
def test_poll_status_mapping(status: int, cls: type[LumaError], body: dict[str, str]) -> None:
    rec, sleeps = Recorder(err(status, body)), []
    with pytest.raises(cls) as info:
        make_client(rec, sleeps).get_generation("r1")
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert next(iter(body.values())) in str(info.value)
    # 5xx are retried (then give up), 4xx are not retried at all.
    assert len(rec.requests) == (4 if status >= 500 else 1)


def test_poll_retries_transient_errors_then_succeeds() -> None:
    rec, sleeps = (
        Recorder(
            httpx.ConnectError("refused"),
            err(502, text="<html><body>Bad gateway</body></html>", headers={"content-type": "text/html"}),
            httpx.ReadTimeout("slow"),
            ok({"request_id": "r1", "status": "processing"}),
        ),
        [],
    )
    generation = make_client(rec, sleeps).get_generation("r1")
    assert generation.status == "processing"
    assert len(rec.requests) == 4 and len(sleeps) == 3


def test_poll_429_honours_retry_after() -> None:
    rec, sleeps = (
        Recorder(
            err(429, {"error": "Rate limit exceeded"}, {"Retry-After": "7"}),
            ok({"request_id": "r1", "status": "queued"}),
        ),
        [],
    )
    make_client(rec, sleeps).get_generation("r1")
    assert sleeps == [7.0]


def test_submit_429_is_retried_and_concurrency_kind_is_recognised(caplog: pytest.LogCaptureFixture) -> None:
    rec, sleeps = (
        Recorder(
            err(429, {"error": "Too many concurrent jobs"}, {"Retry-After": "60"}),
            err(429, {"error": "Rate limit exceeded"}, {"Retry-After": "3"}),
            ok({"request_id": "r1", "status": "queued"}),
        ),
        [],
    )
    with caplog.at_level("WARNING"):
        assert make_client(rec, sleeps).submit(REQUEST).request_id == "r1"
    assert sleeps == [60.0, 3.0]
    assert "concurrency limit" in caplog.text and "rpm limit" in caplog.text


def test_submit_429_exhausted_raises_rate_limit_with_kind() -> None:
    rec, sleeps = Recorder(err(429, {"error": "Too many concurrent jobs"}, {"Retry-After": "60"})), []
    with pytest.raises(LumaRateLimitError) as info:
        make_client(rec, sleeps).submit(REQUEST)
    assert info.value.kind == "concurrency" and info.value.retry_after == 60.0 and info.value.retryable


def test_submit_connect_error_is_retried_because_nothing_was_sent() -> None:
    rec, sleeps = Recorder(httpx.ConnectError("refused"), ok({"request_id": "r1", "status": "queued"})), []
    assert make_client(rec, sleeps).submit(REQUEST).request_id == "r1"
    assert len(rec.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        err(500, {"error": "Backend error"}),
        err(502, text="<html>bad gateway</html>", headers={"content-type": "text/html"}),
        err(503),
        httpx.Response(200, text='{"request_id": "abc", "sta'),
        httpx.Response(200, text="<html>ok?</html>"),
        ok({"status": "queued"}),  # accepted, but no id to follow
    ],
    ids=["read-timeout", "dropped", "500", "502-html", "503", "truncated-json", "html-200", "no-request-id"],
)
def test_ambiguous_submission_is_never_resent(answer: httpx.Response | Exception) -> None:
    rec, sleeps = Recorder(answer, ok({"request_id": "second", "status": "queued"})), []
    with pytest.raises(LumaSubmissionOutcomeUnknown) as info:
        make_client(rec, sleeps).submit(REQUEST)
    assert len(rec.requests) == 1, "a second POST could buy a second render"
    assert "may" in str(info.value)


MALFORMED_POLLS = [
    ("truncated-json", httpx.Response(200, text='{"request_id": "r1", "status": "proc')),
    ("html-200", httpx.Response(200, text="<!doctype html><title>Maintenance</title>")),
    ("empty-body", httpx.Response(200, content=b"")),
    ("json-array", ok([1, 2, 3])),
    ("json-string", ok("success")),
]


@pytest.mark.parametrize("response", [r for _, r in MALFORMED_POLLS], ids=[i for i, _ in MALFORMED_POLLS])
def test_malformed_poll_bodies_raise_retryable_response_error(response: httpx.Response) -> None:
    rec, sleeps = Recorder(response), []
    with pytest.raises(LumaResponseError) as info:
        make_client(rec, sleeps).get_generation("r1")
    assert info.value.retryable


def test_missing_fields_and_unknown_status_parse_without_error() -> None:
    rec, sleeps = Recorder(ok({"status": "warming_up"})), []
    generation = make_client(rec, sleeps).get_generation("r1")
    assert generation.request_id == "r1" and generation.status == "unknown" and generation.raw_status == "warming_up"


def test_connection_errors_after_budget() -> None:
    rec, sleeps = Recorder(httpx.ConnectError("refused")), []
    with pytest.raises(LumaConnectionError):
        make_client(rec, sleeps).get_generation("r1")
    rec, sleeps = Recorder(httpx.ReadTimeout("slow")), []
    with pytest.raises(LumaTimeoutError):
        make_client(rec, sleeps).get_generation("r1")


def test_api_key_never_appears_in_errors_even_if_the_server_echoes_it() -> None:
    rec, sleeps = Recorder(err(401, {"error": f"Invalid API key {KEY}"})), []
    with pytest.raises(LumaAuthError) as info:
        make_client(rec, sleeps).get_generation("r1")
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in repr(ClientSettings(api_key=KEY))


async def test_async_twin_shares_mapping_and_retry() -> None:
    rec = Recorder(
        err(503),
        err(429, {"error": "Rate limit exceeded"}, {"Retry-After": "2"}),
        ok({"request_id": "r1", "status": "success", "generation_id": "g", "video_url": "https://media.example/g.mp4"}),
    )
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with AsyncLumaClient(
        ClientSettings(base_url=BASE, api_key=KEY), transport=httpx.MockTransport(rec), sleep=fake_sleep
    ) as client:
        generation = await client.aget_generation("r1")
        assert generation.generation_id == "g"
        assert len(sleeps) == 2 and sleeps[1] == 2.0
        rec2 = Recorder(httpx.ReadTimeout("x"))
        client2 = AsyncLumaClient(
            ClientSettings(base_url=BASE, api_key=KEY), transport=httpx.MockTransport(rec2), sleep=fake_sleep
        )
        with pytest.raises(LumaSubmissionOutcomeUnknown):
            await client2.asubmit(REQUEST)
        assert len(rec2.requests) == 1
        await client2.aclose()


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        (None, None, None, "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey"),
        ("", None, None, "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey"),
        (
            "http://127.0.0.1:8000/api/v1/ie/requestqueue/apikey",
            None,
            None,
            "http://127.0.0.1:8000/api/v1/ie/requestqueue/apikey",
        ),
        (
            "http://127.0.0.1:8000/api/v1/ie/requestqueue/apikey/",
            None,
            None,
            "http://127.0.0.1:8000/api/v1/ie/requestqueue/apikey",
        ),
        ("http://127.0.0.1:8000", None, None, "http://127.0.0.1:8000/api/v1/ie/requestqueue/apikey"),
        ("console.gmicloud.ai", None, None, "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey"),
        ("proxy.internal", 8443, None, "https://proxy.internal:8443/api/v1/ie/requestqueue/apikey"),
        ("proxy.internal", None, "gmi/queue", "https://proxy.internal/gmi/queue"),
        ("proxy.internal/custom/path", None, None, "https://proxy.internal/custom/path"),
    ],
)
def test_normalize_base_url(host: str | None, port: int | None, schema: str | None, expected: str) -> None:
    assert normalize_base_url(host, port=port, schema=schema) == expected


def test_normalize_base_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="http"):
        normalize_base_url("ftp://example.com/x")
