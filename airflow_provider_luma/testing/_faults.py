"""Fault specifications and the request log entries of the Luma simulator.

Pure data: no sockets, no simulator state. :class:`Fault` describes one misbehaviour to inject and
:func:`canned_response` says what goes on the wire for the faults that replace the normal answer.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal, get_args

FaultKind = Literal[
    "rate_limit_rpm",
    "rate_limit_concurrency",
    "http_error",
    "html_error",
    "drop_connection",
    "drop_after_accept",
    "slow",
    "malformed",
    "fail_generation",
    "cut_body",
]
"""Every kind of fault the simulator can inject."""

FaultTarget = Literal["submit", "poll", "models", "download", "any"]
"""Which requests a fault applies to: ``POST /requests``, ``GET /requests/{id}``, ``GET /models``, media files.

On the native front, ``submit`` is ``POST /v1/generations`` and ``poll`` is ``GET /v1/generations/{id}``."""

FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
FAULT_TARGETS: Final[tuple[str, ...]] = get_args(FaultTarget)

# Luma's older rate-limit page documents 30 RPM as the default; used for X-RateLimit-Limit when a test injects
# an RPM 429 into a simulator that has no rpm_limit of its own.
DEFAULT_RPM_LIMIT_HEADER: Final = 30

_DEFAULT_HTTP_MESSAGES: Final = {
    402: "Insufficient credits. Please add credits to continue.",  # Luma's text; the job is not queued
    500: "Internal server error",
    502: "Upstream service unavailable",
    503: "Service temporarily unavailable",
    504: "Gateway timeout",
}
_HTML_PAGE: Final = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_PHRASES: Final = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
}


@dataclass(frozen=True)
class Fault:
    """One misbehaviour to inject; build it with the classmethods (``Fault.http_error(503)``, ...).

    Faults wait in a FIFO queue (:meth:`LumaSimulator.inject`); each incoming request consumes the first
    queued fault whose :attr:`on` matches it, and a fault is used up after :attr:`times` requests.
    ``fail_generation`` is different: it is consumed by the next *accepted* submit, whatever faults are queued
    ahead of it, because it changes how a render ends rather than how a request is answered.

    :param kind: what goes wrong (see :data:`FaultKind`).
    :param on: which requests it applies to (see :data:`FaultTarget`).
    :param times: how many matching requests it affects.
    :param status: HTTP status for ``http_error`` / ``html_error``.
    :param message: the ``error`` text of ``http_error``.
    :param retry_after: ``Retry-After`` seconds of the 429 kinds.
    :param delay_seconds: how long ``slow`` waits before answering.
    :param body: the raw body ``malformed`` sends with a 200.
    :param reason: failure text of ``fail_generation``.
    :param failure_code: Luma failure code of ``fail_generation``.
    :param cut_after_bytes: how much of the body ``cut_body`` sends before hanging up.
    """

    kind: FaultKind
    on: FaultTarget = "any"
    times: int = 1
    status: int | None = None
    message: str | None = None
    retry_after: int | None = None
    delay_seconds: float | None = None
    body: str | None = None
    reason: str | None = None
    failure_code: str | None = None
    cut_after_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if self.on not in FAULT_TARGETS:
            raise ValueError(f"unknown fault target {self.on!r}; expected one of {', '.join(FAULT_TARGETS)}")
        if self.times < 1:
            raise ValueError(f"times must be >= 1, got {self.times}")
        if self.kind == "fail_generation" and self.on != "submit":
            raise ValueError("fail_generation applies to submits only: use on='submit'")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {self.status}")
        if self.cut_after_bytes is not None and self.cut_after_bytes < 0:
            raise ValueError(f"cut_after_bytes must be >= 0, got {self.cut_after_bytes}")
        if self.delay_seconds is not None and self.delay_seconds < 0:
            raise ValueError(f"delay_seconds must be >= 0, got {self.delay_seconds}")

    # -- constructors ----------------------------------------------------------------------------------

    @classmethod
    def rate_limit_rpm(cls, retry_after: int = 20, *, on: FaultTarget = "submit", times: int = 1) -> Fault:
        """429 ``Rate limit exceeded`` with ``Retry-After`` and ``X-RateLimit-*`` headers."""
        return cls("rate_limit_rpm", on=on, times=times, retry_after=retry_after)

    @classmethod
    def rate_limit_concurrency(cls, retry_after: int = 60, *, on: FaultTarget = "submit", times: int = 1) -> Fault:
        """429 ``Too many concurrent jobs`` with ``Retry-After`` only."""
        return cls("rate_limit_concurrency", on=on, times=times, retry_after=retry_after)

    @classmethod
    def http_error(
        cls, status: int = 500, message: str | None = None, *, on: FaultTarget = "any", times: int = 1
    ) -> Fault:
        """A JSON ``{"error": message}`` answer with the given status (402, 500, 502, 503, ...).

        The native front sends it as ``{"detail": message}``; ``Fault.http_error(402)`` is Luma's "Insufficient
        credits" answer.
        """
        return cls("http_error", on=on, times=times, status=status, message=message)

    @classmethod
    def html_error(cls, status: int = 502, *, on: FaultTarget = "any", times: int = 1) -> Fault:
        """An HTML error page (``Content-Type: text/html``), as a load balancer in front of the API sends."""
        return cls("html_error", on=on, times=times, status=status)

    @classmethod
    def drop_connection(cls, *, on: FaultTarget = "any", times: int = 1) -> Fault:
        """Close the socket without any response, before the request is processed."""
        return cls("drop_connection", on=on, times=times)

    @classmethod
    def drop_after_accept(cls, *, on: FaultTarget = "submit", times: int = 1) -> Fault:
        """Process the request normally (a submit is created, billed and rendered), then close without answering.

        This is the ambiguous "POST sent, answer lost" case a client must not blindly retry.
        """
        return cls("drop_after_accept", on=on, times=times)

    @classmethod
    def slow(cls, delay_seconds: float, *, on: FaultTarget = "any", times: int = 1) -> Fault:
        """Wait ``delay_seconds`` (real time), then answer normally: for client timeout tests."""
        return cls("slow", on=on, times=times, delay_seconds=delay_seconds)

    @classmethod
    def malformed(cls, body: str = '{"request_id": "abc", "sta', *, on: FaultTarget = "any", times: int = 1) -> Fault:
        """A 200 ``application/json`` answer whose body is not valid JSON (truncated by default)."""
        return cls("malformed", on=on, times=times, body=body)

    @classmethod
    def fail_generation(
        cls, reason: str = "Generation failed", failure_code: str = "generation_failed", *, times: int = 1
    ) -> Fault:
        """The next accepted generation renders for its normal time, then ends ``failed`` with this reason."""
        return cls("fail_generation", on="submit", times=times, reason=reason, failure_code=failure_code)

    @classmethod
    def cut_body(cls, after_bytes: int = 65536, *, on: FaultTarget = "download", times: int = 1) -> Fault:
        """Answer normally (full ``Content-Length``) but hang up after ``after_bytes`` bytes of the body.

        This is a download interrupted mid-file: the client must not keep the partial file.
        """
        return cls("cut_body", on=on, times=times, cut_after_bytes=after_bytes)

    # -- (de)serialisation for the admin HTTP surface --------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fault as a JSON-able dict, without unset fields."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Fault:
        """Build a fault from a JSON spec such as ``{"kind": "http_error", "status": 503, "on": "poll"}``.

        Kind-specific defaults are the same as the classmethod constructors'.

        :raises ValueError: for an unknown kind, target or field.
        """
        if not isinstance(spec, dict):
            raise ValueError(f"a fault spec must be a JSON object, got {type(spec).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        kind = spec.get("kind")
        defaults = _SPEC_DEFAULTS.get(str(kind), {})
        try:
            return cls(**{**defaults, **spec})
        except TypeError as exc:
            raise ValueError(f"invalid fault spec {spec!r}: {exc}") from None


# Kind-specific defaults of Fault.from_dict, the same as those of the classmethod constructors.
_SPEC_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "rate_limit_rpm": {"on": "submit", "retry_after": 20},
    "rate_limit_concurrency": {"on": "submit", "retry_after": 60},
    "http_error": {"status": 500},
    "html_error": {"status": 502},
    "drop_after_accept": {"on": "submit"},
    "slow": {"delay_seconds": 1.0},
    "malformed": {"body": '{"request_id": "abc", "sta'},
    "fail_generation": {"on": "submit", "reason": "Generation failed", "failure_code": "generation_failed"},
    "cut_body": {"on": "download", "cut_after_bytes": 65536},
}


@dataclass(frozen=True)
class CannedResponse:
    """A complete answer that replaces normal processing."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]


def canned_response(
    fault: Fault, *, now: float, rpm_limit: int | None, error_key: str = "error"
) -> CannedResponse | None:
    """The answer a fault sends instead of the normal one, or ``None`` when it does not replace the answer.

    :param error_key: the key of a JSON error body's message: ``"error"`` on GMI, ``"detail"`` on the native API.
    """
    if fault.kind == "rate_limit_rpm":
        retry_after = max(1, int(fault.retry_after or 1))
        headers = rate_limit_headers(rpm_limit or DEFAULT_RPM_LIMIT_HEADER, 0, now + retry_after)
        return _json(429, {error_key: "Rate limit exceeded"}, {"Retry-After": str(retry_after), **headers})
    if fault.kind == "rate_limit_concurrency":
        wait = str(max(1, int(fault.retry_after or 60)))
        return _json(429, {error_key: "Too many concurrent jobs"}, {"Retry-After": wait})
    if fault.kind == "http_error":
        status = fault.status or 500
        return _json(status, {error_key: fault.message or _DEFAULT_HTTP_MESSAGES.get(status, f"HTTP {status}")}, {})
    if fault.kind == "html_error":
        status = fault.status or 502
        page = _HTML_PAGE.format(status=status, phrase=_HTML_PHRASES.get(status, "Error"))
        return CannedResponse(status, page.encode(), "text/html", {})
    if fault.kind == "malformed":
        return CannedResponse(200, (fault.body or "").encode(), "application/json", {})
    return None


def rate_limit_headers(limit: int, remaining: int, reset_at: float) -> dict[str, str]:
    """``X-RateLimit-*`` headers; ``reset_at`` is an epoch, rounded up so clients never retry too early."""
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(math.ceil(reset_at)),
    }


def _json(status: int, body: dict[str, str], headers: dict[str, str]) -> CannedResponse:
    return CannedResponse(status, json.dumps(body).encode(), "application/json", headers)


@dataclass(frozen=True)
class LoggedRequest:
    """One request the simulator received, whatever happened to it. The Authorization header is never kept.

    :param method: HTTP method.
    :param path: URL path, without the query string.
    :param status: HTTP status sent, or ``None`` when the connection was dropped without an answer.
    :param payload: the parsed JSON body, or ``None`` (no body, or not JSON).
    :param request_id: the queue request id that was created or asked about, when there is one (on the native
        front: the request id of the internal job behind the generation, so ``LumaSimulator.generation`` finds it).
    :param fault: the kind of the injected fault that shaped this request, or ``None``.
    :param at: simulator clock time when the request arrived.
    """

    method: str
    path: str
    status: int | None
    payload: Any
    request_id: str | None
    fault: str | None
    at: float

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-able dict."""
        return asdict(self)
