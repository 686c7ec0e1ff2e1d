"""The one exception tree of ``airflow_provider_luma``.

::

    LumaError                               base of everything below; never carries the API key
    ├── LumaValidationError (ValueError)    a parameter breaks a documented rule; raised before any HTTP
    ├── LumaConfigurationError              the Airflow Connection is unusable (missing, no API key, bad URL)
    ├── LumaAPIError                        the service answered with an HTTP error status
    │   ├── LumaBadRequestError             400 / 413 / 422: invalid payload or parameter combination
    │   ├── LumaAuthError                   401 / 403: missing, invalid, revoked key or suspended client
    │   ├── LumaInsufficientCreditsError    402: add credits; the job was not queued
    │   ├── LumaNotFoundError               404: unknown request id, model, or no access to the model
    │   ├── LumaRateLimitError              429: RPM or concurrency limit; ``retry_after`` seconds, ``kind``
    │   └── LumaServerError                 5xx and anything else unexpected
    ├── LumaConnectionError                 no HTTP response (refused, reset, DNS)
    │   └── LumaTimeoutError                the response did not arrive in time
    ├── LumaSubmissionOutcomeUnknown        a POST was sent but we cannot tell whether it was accepted
    ├── LumaResponseError                   the body is not the JSON we can read (HTML page, truncated, a
    │                                       success with no generation id or video URL, a non-https URL)
    ├── LumaDownloadError                   a finished video could not be copied to storage (retryable)
    │   └── LumaMediaURLExpired             the presigned media URL was refused (403/410): mint a fresh one
    ├── LumaBudgetExceeded                  the estimate is above ``max_cost_usd`` (or unknown while a cap is
    │                                       set); raised before any HTTP
    └── LumaGenerationError                 the render itself ended badly
        ├── LumaGenerationFailed            status ``failed`` (``reason``, ``failure_code``)
        └── LumaGenerationCancelled         status ``cancelled``

Every class has :attr:`LumaError.retryable`: whether running the same thing again can help. The operators turn
non-retryable errors into ``AirflowFailException`` so Airflow does not burn retries on them, and the trigger and
the worker's poll loop both stop polling on exactly those (:func:`poll_should_stop`).

This module is part of the Airflow-free core: it imports nothing from Airflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from pydantic import ValidationError

# Luma failure codes (Luma Agents error-handling guide) that a rerun of the same request cannot fix.
PERMANENT_FAILURE_CODES = frozenset(
    {
        "content_moderated",
        "budget_exhausted",
        "image_too_large",
        "unsupported_format",
        "corrupt_input",
        "invalid_request",
    }
)
# Message fragments that mean the same when the code is not passed through (GMI does not document it).
_PERMANENT_REASON_HINTS = ("moderat", "content policy", "safety", "insufficient credit", "budget")


class LumaError(Exception):
    """Base class of every error this provider raises."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LumaValidationError(LumaError, ValueError):
    """One or more parameters break a documented rule. Raised before any HTTP request.

    :param problems: one line per broken rule, each starting with the field it concerns.
    :param subject: what was invalid, e.g. ``"luma-ray-3-2-edit request"``; the message then starts with
        "Invalid <subject>: ". Without it the message is the problems alone (they name their fields).
    """

    def __init__(self, problems: list[str], *, subject: str | None = None) -> None:
        self.problems = problems
        self.subject = subject
        text = "; ".join(problems)
        super().__init__(f"Invalid {subject}: {text}" if subject else text)

    @classmethod
    def from_pydantic(cls, exc: ValidationError, model_id: str) -> LumaValidationError:
        """Turn a pydantic error into one line per broken rule, each naming its field."""
        problems: list[str] = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err.get("loc", ()))
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                msg = f"is not a parameter of {model_id}"
            elif err.get("type") == "literal_error":
                msg = f"got {err.get('input')!r}; " + msg.lower()
            elif err.get("type") == "missing":
                msg = f"is required by {model_id}"
            problems.append(f"{field}: {msg}" if field else msg)
        return cls(problems, subject=f"{model_id} request")


class LumaConfigurationError(LumaError):
    """The Airflow Connection cannot be used as it is (for example it has no API key)."""


class LumaAPIError(LumaError):
    """The service answered with an HTTP error status.

    :param status_code: the HTTP status.
    :param message: the server's message (``error``/``detail``), or a short description of the body.
    :param request_id: the queue request id concerned, when known.
    """

    def __init__(self, message: str, *, status_code: int, request_id: str | None = None) -> None:
        self.status_code = status_code
        self.request_id = request_id
        super().__init__(f"HTTP {status_code}: {message}")
        self.message = message


class LumaBadRequestError(LumaAPIError):
    """400/413/422: the service rejected the payload."""


class LumaAuthError(LumaAPIError):
    """401/403: the API key is missing, invalid, revoked, or the client is suspended."""


class LumaInsufficientCreditsError(LumaAPIError):
    """402: not enough credits; the job was not queued."""


class LumaNotFoundError(LumaAPIError):
    """404: unknown request id or model, or the key has no access to the model."""


class LumaRateLimitError(LumaAPIError):
    """429: too many requests per minute, or too many concurrent jobs.

    :param retry_after: seconds the server asked us to wait, when it said.
    :param kind: ``"concurrency"`` for "Too many concurrent jobs", ``"rpm"`` for a request-rate limit.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        request_id: str | None = None,
        retry_after: float | None = None,
        kind: Literal["rpm", "concurrency"] = "rpm",
    ) -> None:
        super().__init__(message, status_code=status_code, request_id=request_id)
        self.retry_after = retry_after
        self.kind = kind


class LumaServerError(LumaAPIError):
    """5xx (or any other unexpected status). GMI sometimes wraps an upstream 4xx in a 500."""

    retryable = True


class LumaConnectionError(LumaError):
    """No HTTP response arrived: connection refused or reset, DNS failure."""

    retryable = True


class LumaTimeoutError(LumaConnectionError):
    """The service did not answer in time."""


class LumaSubmissionOutcomeUnknown(LumaError):
    """A create request was sent, but the answer was lost (timeout, dropped connection, 5xx).

    The render may or may not have been accepted and billed. It is not retried automatically, because a second
    POST could buy a second render.
    """

    retryable = False


class LumaResponseError(LumaError):
    """The service answered 2xx but the body is not JSON we can read."""

    retryable = True

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class LumaDownloadError(LumaError):
    """Copying a finished render to storage failed: dropped stream, short body, storage write error.

    The render itself is done and paid for; running the download again (a task retry) cannot cost a render.

    :param status_code: the storage host's HTTP status, when it answered.
    :param transient: whether starting the transfer over right away may help (a dropped stream: yes; a full disk
        or a 400: no, but an Airflow retry later still can).
    """

    retryable = True

    def __init__(self, message: str, *, status_code: int | None = None, transient: bool = True) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.transient = transient


class LumaMediaURLExpired(LumaDownloadError):
    """The presigned media URL was refused (S3 answers 403 once it expired): poll the request for a fresh one."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message, status_code=status_code, transient=False)


class LumaBudgetExceeded(LumaError):
    """The estimated cost of a render is above the task's ``max_cost_usd``. Raised before any HTTP request."""


class LumaGenerationError(LumaError):
    """A render ended in ``failed`` or ``cancelled``.

    :param request_id: the queue request id.
    :param reason: the server's failure text.
    :param failure_code: Luma's failure code when passed through (e.g. ``content_moderated``).
    """

    def __init__(
        self,
        request_id: str,
        reason: str | None,
        *,
        failure_code: str | None = None,
        generation_id: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.reason = reason or "no reason given"
        self.failure_code = failure_code
        self.generation_id = generation_id
        code = f" [{failure_code}]" if failure_code else ""
        super().__init__(f"Luma request {request_id} {self.verb}{code}: {self.reason}")

    verb: ClassVar[str] = "ended"


class LumaGenerationFailed(LumaGenerationError):
    """The render failed. Retryable unless the code or reason says a rerun cannot help."""

    verb = "failed"

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        """False for content moderation, credits and invalid input; True for transient failures."""
        return not is_permanent_failure(self.failure_code, self.reason)


class LumaGenerationCancelled(LumaGenerationError):
    """The render was cancelled on the service side."""

    verb = "was cancelled"
    retryable = True


def is_permanent_failure(failure_code: str | None, reason: str | None) -> bool:
    """Whether a failed render would fail again if resubmitted unchanged."""
    if failure_code and failure_code.lower() in PERMANENT_FAILURE_CODES:
        return True
    text = (reason or "").lower()
    return any(hint in text for hint in _PERMANENT_REASON_HINTS)


def poll_should_stop(exc: LumaError) -> bool:
    """The one poll-error classifier (trigger and worker loop): stop at once unless polling again can help.

    Auth (401/403), credits (402), not found (404), bad request and configuration errors are permanent; network
    errors, 5xx, 429 and unreadable bodies are worth another poll until the deadline.
    """
    return not exc.retryable


def unusable_answers_message(request_id: str, count: int, last: LumaError) -> str:
    """Why a wait ended after ``count`` unusable status answers in a row (see ``core/retry.UnusableAnswers``)."""
    return (
        f"Luma request {request_id}: {count} status answers in a row could not be used (last: {last}). The render "
        "may have been bought and is not lost: a retry of this task, or clearing it, re-attaches to it without "
        "buying a new one."
    )


def failure_prefix(exc: LumaError) -> str:
    """How a failure that happened before or instead of an answer from Luma is introduced in task messages.

    Only an HTTP error status means the service saw the request: "Luma rejected the request". A refused connection,
    a timeout or a missing key happened on our side, and saying otherwise sends users to the wrong place.
    """
    if isinstance(exc, LumaAPIError):
        return "Luma rejected the request"
    if isinstance(exc, LumaConnectionError):
        return "Could not reach Luma (nothing was accepted)"
    if isinstance(exc, LumaConfigurationError):
        return "The Luma connection cannot be used (nothing was sent)"
    return "The Luma request failed"


__all__ = [
    "LumaAPIError",
    "LumaAuthError",
    "LumaBadRequestError",
    "LumaBudgetExceeded",
    "LumaConfigurationError",
    "LumaConnectionError",
    "LumaDownloadError",
    "LumaError",
    "LumaGenerationCancelled",
    "LumaGenerationError",
    "LumaGenerationFailed",
    "LumaInsufficientCreditsError",
    "LumaMediaURLExpired",
    "LumaNotFoundError",
    "LumaRateLimitError",
    "LumaResponseError",
    "LumaServerError",
    "LumaSubmissionOutcomeUnknown",
    "LumaTimeoutError",
    "LumaValidationError",
    "PERMANENT_FAILURE_CODES",
    "failure_prefix",
    "is_permanent_failure",
    "poll_should_stop",
    "unusable_answers_message",
]
