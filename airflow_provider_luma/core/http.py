"""Airflow-free HTTP client for Luma renders, as sync and async twins over httpx, generic over a wire format.

``LumaClient`` (worker) and ``AsyncLumaClient`` (triggerer) share everything but ``await``: requests are built
by the backend module (:mod:`airflow_provider_luma.core.backends.gmi` or ``.luma_agents``: ``build_submit`` /
``build_get`` / ``build_list_models``), every response goes through its ``decode_response`` and ``to_job``, and retry
decisions come from :mod:`airflow_provider_luma.core.retry` through :class:`_Attempts`. The async twin's httpx
transport is :class:`~airflow_provider_luma.core.transport.PollTransport`: the triggerer's status polls (plain
GETs) go over its lean h11 keep-alive connections, everything else through httpx's own pool; its answers are
``httpx.Response`` objects like any other and go through the same mapping. No answer is read past
:data:`MAX_ANSWER_BYTES` (decoded), so a compressed or endless body cannot fill a worker's or the triggerer's
memory. The API key lives only in the ``Authorization`` header; it is never logged and is scrubbed from any
server text that ends up in an exception.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from airflow_provider_luma import __version__
from airflow_provider_luma.core.backends import DEFAULT_BACKEND, Backend, backend_named, gmi
from airflow_provider_luma.core.backends.common import Call, scrub
from airflow_provider_luma.core.errors import (
    LumaConnectionError,
    LumaError,
    LumaRateLimitError,
    LumaResponseError,
    LumaSubmissionOutcomeUnknown,
    LumaTimeoutError,
)
from airflow_provider_luma.core.jobs import Job
from airflow_provider_luma.core.retry import Outcome, RetryPolicy, next_delay
from airflow_provider_luma.core.specs.base import RenderSpec
from airflow_provider_luma.core.transport import MAX_BODY, CappedDecoder, PollTransport, reached_through_proxy

log = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_BASE_URL = gmi.DEFAULT_BASE_URL
"""The default backend's base URL (each backend defines its own: :attr:`Backend.DEFAULT_BASE_URL`)."""
USER_AGENT = f"airflow-provider-luma/{__version__} httpx/{httpx.__version__}"
MAX_ANSWER_BYTES = MAX_BODY
"""An API answer is a few hundred bytes: one larger than this once decoded is an unreadable answer."""


@dataclass(frozen=True)
class ClientSettings:
    """Everything a client needs; built from an Airflow Connection by ``LumaHook``."""

    base_url: str = DEFAULT_BASE_URL
    api_key: str = field(default="", repr=False)
    organization_id: str | None = None
    timeout: float = 60.0
    connect_timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    backend: str = DEFAULT_BACKEND

    @property
    def wire(self) -> Backend:
        """The wire-format module of :attr:`backend`."""
        return backend_named(self.backend)

    def headers(self) -> dict[str, str]:
        """Request headers: bearer auth, optional organization, provider User-Agent."""
        headers = {"Authorization": f"Bearer {self.api_key}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        header = self.wire.ORGANIZATION_HEADER
        if self.organization_id and header:
            headers[header] = self.organization_id
        return headers

    def httpx_timeout(self) -> httpx.Timeout:
        """Per-request timeouts; the pool wait is generous because triggers share one pool."""
        return httpx.Timeout(self.timeout, connect=self.connect_timeout, pool=max(self.timeout, 60.0))


def normalize_base_url(
    host: str | None, *, port: int | None = None, schema: str | None = None, backend: str = DEFAULT_BACKEND
) -> str:
    """Turn an Airflow Connection's host (full URL or bare host name) into the API's base URL.

    * empty → the backend's default (GMI's queue, or ``https://agents.lumalabs.ai/v1``);
    * ``http://127.0.0.1:8000/api/v1/ie/requestqueue/apikey`` → used as is (trailing ``/`` dropped);
    * ``http://127.0.0.1:8000`` → the documented path is appended (``/api/v1/ie/requestqueue/apikey`` or ``/v1``);
    * ``console.gmicloud.ai`` (bare) → ``https://`` + host (+ ``:port``) + (``schema`` as path, or the default path).
    """
    wire = backend_named(backend)
    text = (host or "").strip()
    if not text:
        return wire.DEFAULT_BASE_URL
    if "://" not in text:
        netloc, _, path = text.partition("/")
        if port and ":" not in netloc:
            netloc = f"{netloc}:{port}"
        path = path or (schema or "").strip("/")
        text = f"https://{netloc}/{path}" if path else f"https://{netloc}"
    url = httpx.URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"Luma base URL {text!r} must be an http(s) URL or a bare host name")
    if url.path in ("", "/"):
        url = url.copy_with(path=wire.API_PATH)
    return str(url).rstrip("/")


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default certificate verification (certifi, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), built once per
    process and shared by every client: loading the CA bundle is most of what creating a client costs, and a
    worker creates one per task. A process that forks task processes can call this first so they inherit it."""
    return httpx.create_ssl_context()


class _TooLarge(httpx.RemoteProtocolError):
    """An answer larger than :data:`MAX_ANSWER_BYTES` once decoded, or in a coding we do not decode."""


class _Cap:
    """Decodes one streamed answer with a size cap; the sync and async readers share it.

    A transport that read and decoded the body itself (``PollTransport``, a test's ``MockTransport``) leaves it
    in ``streamed.content``: that is only measured. Otherwise the raw body is fed in as it arrives and decoded
    here, never by httpx (whose decoders have no limit).
    """

    def __init__(self, call: Call, streamed: httpx.Response) -> None:
        self.call, self.streamed = call, streamed
        self.decoded_by_transport = streamed.is_stream_consumed
        headers = () if self.decoded_by_transport else streamed.headers.raw
        self.decoder = self._guard(lambda: CappedDecoder(headers, MAX_ANSWER_BYTES))
        if self.decoded_by_transport:
            self.add(streamed.content)

    def _guard(self, step: Callable[[], _T]) -> _T:
        try:
            return step()
        except httpx.RemoteProtocolError as exc:
            raise _TooLarge(f"{self.call.method} {self.call.path}: {exc}") from None

    def add(self, raw: bytes) -> None:
        """One more piece of the body as sent."""
        self._guard(lambda: self.decoder.feed(raw))

    def response(self) -> httpx.Response:
        """A complete response with the decoded body (headers that described the encoding removed)."""
        streamed = self.streamed
        headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _ENCODING_HEADERS]
        done = httpx.Response(streamed.status_code, headers=headers, content=self.decoder.body())
        done.request = streamed.request
        return done


_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _transport_outcome(exc: httpx.TransportError | httpx.DecodingError) -> Outcome:
    # Connect errors and pool/connect timeouts happen before a byte of the request is sent.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return "not_sent"
    return "lost"


class _Attempts:
    """Retry bookkeeping for one call, shared by the sync and async clients."""

    def __init__(self, settings: ClientSettings, call: Call) -> None:
        self.settings, self.call, self.count = settings, call, 0

    def after_response(self, response: httpx.Response) -> float | None:
        """None when the response is final (2xx or a non-retryable error); else the delay before retrying."""
        self.count += 1
        if response.status_code < 400:
            return None
        error = self.settings.wire.error_for_response(response, self.call, self.settings.api_key)
        retry_after = error.retry_after if isinstance(error, LumaRateLimitError) else None
        delay = next_delay(self.settings.retry, self.call.kind, response.status_code, self.count, retry_after)
        if delay is None:
            if self.call.kind == "submit" and response.status_code >= 500:
                raise LumaSubmissionOutcomeUnknown(
                    f"{self.call.method} {self.call.path} answered {error}. The service may still have accepted the "
                    "render; it is not resent automatically so it cannot be bought twice."
                ) from error
            return None  # decode_response raises the mapped error
        what = f"{error.kind} limit" if isinstance(error, LumaRateLimitError) else f"HTTP {response.status_code}"
        log.warning(
            "Luma %s %s got %s (%s); retrying in %.1f s (attempt %d/%d)",
            self.call.method, self.call.path, what, error.message, delay, self.count + 1,
            self.settings.retry.max_attempts,
        )  # fmt: skip
        return delay

    def after_transport_error(self, exc: httpx.TransportError | httpx.DecodingError) -> float:
        """The delay before retrying, or raise the mapped connection/ambiguity error."""
        self.count += 1
        outcome = _transport_outcome(exc)
        delay = next_delay(self.settings.retry, self.call.kind, outcome, self.count)
        detail = f"{type(exc).__name__}: {scrub(str(exc), self.settings.api_key)}"
        if delay is None:
            if self.call.kind == "submit" and outcome == "lost":
                raise LumaSubmissionOutcomeUnknown(
                    f"{self.call.method} {self.call.path} was sent but no answer arrived ({detail}). The service may "
                    "have accepted the render; it is not resent automatically so it cannot be bought twice."
                ) from None
            if isinstance(exc, httpx.ProtocolError | httpx.DecodingError | _TooLarge):
                # The service answered, but not with anything we can read: an unusable answer, not an outage.
                raise LumaResponseError(
                    f"{self.call.method} {self.call.path} got an unreadable answer {self.count} time(s): {detail}"
                ) from None
            cls = LumaTimeoutError if isinstance(exc, httpx.TimeoutException) else LumaConnectionError
            raise cls(f"{self.call.method} {self.call.path} failed after {self.count} attempt(s): {detail}") from None
        log.warning(
            "Luma %s %s failed (%s); retrying in %.1f s (attempt %d/%d)",
            self.call.method, self.call.path, detail, delay, self.count + 1, self.settings.retry.max_attempts,
        )  # fmt: skip
        return delay


def _body(call: Call, *, aio: bool) -> dict[str, Any]:
    """The body arguments of ``httpx`` ``request()``: JSON, or a streamed JSON body with its exact length."""
    if call.stream is None:
        return {"json": call.json, "headers": call.headers}
    chunks = call.stream.chunks()
    headers = {**call.headers, "Content-Type": "application/json", "Content-Length": str(call.stream.length)}
    return {"content": _aiter(chunks) if aio else chunks, "headers": headers}


async def _aiter(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # File reads are short (1 MiB) and this path is for the rare async submit; no thread hop needed.
    for chunk in chunks:
        yield chunk


# -- the twins -------------------------------------------------------------------------------------------


class LumaClient:
    """Synchronous client (Airflow workers).

    :param settings: base URL, API key, timeouts, retry policy.
    :param transport: an httpx transport, e.g. ``httpx.MockTransport`` in tests.
    :param sleep: what to call between retries (patch it, not the client, in tests).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._wire = settings.wire
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=settings.base_url, headers=settings.headers(), timeout=settings.httpx_timeout(),
            transport=transport, verify=True if transport is not None else default_ssl_context(),
        )  # fmt: skip

    def _send(self, call: Call) -> tuple[Any, httpx.Headers]:
        attempts = _Attempts(self.settings, call)
        while True:
            try:
                response = self._read(call)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                delay = attempts.after_transport_error(exc)
            else:
                retry_in = attempts.after_response(response)
                if retry_in is None:
                    return self._wire.decode_response(response, call, self.settings.api_key), response.headers
                delay = retry_in
            self._sleep(delay)

    def _read(self, call: Call) -> httpx.Response:
        request = self._http.build_request(call.method, call.path, **_body(call, aio=False))
        streamed = self._http.send(request, stream=True)
        try:
            cap = _Cap(call, streamed)
            if not cap.decoded_by_transport:
                for raw in streamed.iter_raw():
                    cap.add(raw)
        finally:
            streamed.close()
        return cap.response()

    def submit(self, spec: RenderSpec) -> Job:
        """Create a render. Retries only when the request provably was not accepted."""
        call = self._wire.build_submit(spec)
        body, headers = self._send(call)
        return self._wire.to_job(body, call, headers)

    def get_generation(self, request_id: str, model: str | None = None) -> Job:
        """Read the current state of a render (retries transient failures)."""
        call = self._wire.build_get(request_id, model)
        body, headers = self._send(call)
        return self._wire.to_job(body, call, headers)

    def list_models(self) -> list[str]:
        """Model ids visible to this key."""
        return self._wire.model_ids(self._send(self._wire.build_list_models())[0])

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> LumaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncLumaClient:
    """Asynchronous twin of :class:`LumaClient` (triggerer). One instance is safe to share across tasks."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
        max_connections: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self._wire = settings.wire
        self._sleep = sleep
        # Requests beyond the pool size wait here, not in httpcore's pool queue: httpcore rescans its whole queue
        # on every request, which is quadratic when thousands of triggers poll at once (benchmarks/
        # triggerer_capacity.py).
        self._slots = asyncio.Semaphore(max_connections)
        if ssl_context is None and transport is None:
            ssl_context = default_ssl_context()
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        # Status polls (plain GETs) go over PollTransport's lean connections (see core/transport.py for why and
        # what it keeps); a custom transport (tests) or a proxied origin keeps everything on httpx's own pool.
        self._polls: PollTransport | None = None
        if transport is None and not reached_through_proxy(settings.base_url):
            pooled = httpx.AsyncHTTPTransport(verify=ssl_context or True, limits=limits)
            transport = self._polls = PollTransport(
                settings.base_url, settings.headers(), timeout=settings.timeout,
                connect_timeout=settings.connect_timeout, max_connections=max_connections,
                ssl_context=ssl_context, fallback=pooled,
            )  # fmt: skip
        self._http = httpx.AsyncClient(
            base_url=settings.base_url, headers=settings.headers(), timeout=settings.httpx_timeout(),
            transport=transport, verify=ssl_context or True, limits=limits,
        )  # fmt: skip

    async def _asend(self, call: Call) -> tuple[Any, httpx.Headers]:
        attempts = _Attempts(self.settings, call)
        # A status poll skips the client's per-request work (URL merging, cookies, hooks) and goes straight to the
        # transport's lean path: it is the triggerer's hot loop. Anything else is an ordinary httpx request.
        lean = self._polls if call.method == "GET" and not call.headers and call.stream is None else None
        while True:
            try:
                async with self._slots:
                    if lean is not None:
                        response = await lean.get(call.path)
                    else:
                        response = await self._aread(call)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                delay = attempts.after_transport_error(exc)
            else:
                retry_in = attempts.after_response(response)
                if retry_in is None:
                    return self._wire.decode_response(response, call, self.settings.api_key), response.headers
                delay = retry_in
            await self._sleep(delay)

    async def _aread(self, call: Call) -> httpx.Response:
        """Async :meth:`LumaClient._read`."""
        request = self._http.build_request(call.method, call.path, **_body(call, aio=True))
        streamed = await self._http.send(request, stream=True)
        try:
            cap = _Cap(call, streamed)
            if not cap.decoded_by_transport:
                async for raw in streamed.aiter_raw():
                    cap.add(raw)
        finally:
            await streamed.aclose()
        return cap.response()

    async def asubmit(self, spec: RenderSpec) -> Job:
        """Async :meth:`LumaClient.submit`."""
        call = self._wire.build_submit(spec)
        body, headers = await self._asend(call)
        return self._wire.to_job(body, call, headers)

    async def aget_generation(self, request_id: str, model: str | None = None) -> Job:
        """Async :meth:`LumaClient.get_generation`."""
        call = self._wire.build_get(request_id, model)
        body, headers = await self._asend(call)
        return self._wire.to_job(body, call, headers)

    async def alist_models(self) -> list[str]:
        """Async :meth:`LumaClient.list_models`."""
        return self._wire.model_ids((await self._asend(self._wire.build_list_models()))[0])

    @property
    def is_closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._http.is_closed

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncLumaClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncLumaClient",
    "Call",
    "ClientSettings",
    "LumaClient",
    "LumaError",
    "normalize_base_url",
]
