"""The retry policy, on one screen. Pure: no I/O, no sleeping; callers sleep for the delay it returns.

Two kinds of call, two rules:

* **poll** (``GET /requests/{id}``, ``GET /models``): idempotent, so retry connection errors, timeouts, 408,
  429 and 5xx with jittered exponential backoff, honouring ``Retry-After`` (a wait longer than the cap is not
  slept through: the rate-limit error is raised for the caller to wait elsewhere).
* **unusable answers** (:class:`UnusableAnswers`): a status answer that cannot be used (unreadable HTTP, a body
  that is not a status of *this* render, a video URL that may not be opened) is retried like a network error,
  but :data:`MAX_UNUSABLE_ANSWERS` of them in a row end the wait at once instead of at the render's deadline.
* **submit** (``POST /requests``): costs money. Retry only when the request provably was not accepted: the
  connection was never made (connect error / connect timeout / pool timeout) or the server said 429.
  Anything else after the body was sent (read timeout, dropped connection, 5xx) is *ambiguous*: the client raises
  :class:`~airflow_provider_luma.core.errors.LumaSubmissionOutcomeUnknown` instead of buying a second render.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

CallKind = Literal["submit", "poll"]

# Outcome of one attempt, as the client classifies it before asking the policy.
#   "not_sent"   connect error, connect/pool timeout: the server never saw the request
#   "lost"       read/write timeout, connection dropped mid-exchange: the server may have acted
#   int          an HTTP status code
Outcome = Literal["not_sent", "lost"] | int


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. ``max_attempts`` counts the first try."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    retry_after_cap: float = 120.0  # longest Retry-After slept through in-process; longer ones raise
    jitter: float = 0.25  # +/- fraction of the computed backoff


MAX_UNUSABLE_ANSWERS = 5


@dataclass
class UnusableAnswers:
    """Counts status answers in a row that could not be used; network errors neither count nor reset it."""

    limit: int = MAX_UNUSABLE_ANSWERS
    count: int = 0

    def usable(self) -> None:
        """A usable answer arrived: start counting again."""
        self.count = 0

    def unusable(self) -> bool:
        """One more unusable answer; True when the wait must end now."""
        self.count += 1
        return self.count >= self.limit


def is_retryable(kind: CallKind, outcome: Outcome) -> bool:
    """Whether an attempt with this outcome may be repeated (ignoring the attempt budget)."""
    if outcome == "not_sent" or outcome == 429:
        return True
    if kind == "submit":
        return False  # "lost", 408, 5xx after the body was sent: outcome unknown, never resend
    return outcome == "lost" or outcome == 408 or (isinstance(outcome, int) and outcome >= 500)


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Jittered exponential backoff before retry number ``attempt`` (1-based)."""
    raw = min(policy.max_delay, policy.base_delay * (2 ** (attempt - 1)))
    spread = raw * policy.jitter
    jittered: float = raw + (rng or random).uniform(-spread, spread)
    return max(0.0, jittered)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or garbage."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def next_delay(
    policy: RetryPolicy,
    kind: CallKind,
    outcome: Outcome,
    attempt: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up and raise.

    :param attempt: how many attempts have been made so far (1 after the first failure).
    :param retry_after: the server's ``Retry-After`` in seconds, already parsed.
    """
    if attempt >= policy.max_attempts or not is_retryable(kind, outcome):
        return None
    if retry_after is not None and retry_after > 0:
        # A longer wait than the cap is not slept through here: the caller gets the rate-limit error and can wait
        # somewhere cheaper (the operator defers to the triggerer instead of holding a worker slot).
        return retry_after if retry_after <= policy.retry_after_cap else None
    return backoff_delay(policy, attempt, rng)
