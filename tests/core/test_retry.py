"""The retry policy, pinned by tables: what is retried, for how long, and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from airflow_provider_luma.core.retry import (
    Outcome,
    RetryPolicy,
    backoff_delay,
    is_retryable,
    next_delay,
    parse_retry_after,
)

# (kind, outcome, retried?) -- a submission is retried only when it provably was not accepted.
TABLE: list[tuple[str, Outcome, bool]] = [
    ("poll", "not_sent", True),
    ("poll", "lost", True),
    ("poll", 408, True),
    ("poll", 429, True),
    ("poll", 500, True),
    ("poll", 502, True),
    ("poll", 503, True),
    ("poll", 400, False),
    ("poll", 401, False),
    ("poll", 402, False),
    ("poll", 403, False),
    ("poll", 404, False),
    ("poll", 422, False),
    ("submit", "not_sent", True),
    ("submit", 429, True),
    ("submit", "lost", False),
    ("submit", 408, False),
    ("submit", 500, False),
    ("submit", 502, False),
    ("submit", 503, False),
    ("submit", 400, False),
    ("submit", 401, False),
    ("submit", 402, False),
    ("submit", 422, False),
]


@pytest.mark.parametrize(("kind", "outcome", "retried"), TABLE)
def test_retry_table(kind: str, outcome: Outcome, retried: bool) -> None:
    assert is_retryable(kind, outcome) is retried  # type: ignore[arg-type]
    delay = next_delay(RetryPolicy(), kind, outcome, attempt=1)  # type: ignore[arg-type]
    assert (delay is not None) is retried


def test_attempt_budget_counts_the_first_try() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert next_delay(policy, "poll", 500, attempt=2) is not None
    assert next_delay(policy, "poll", 500, attempt=3) is None


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(5.0, 5.0), (60.0, 60.0), (120.0, 120.0), (0.0, None), (None, None)],
)
def test_retry_after_is_honoured_and_capped(retry_after: float | None, expected: float | None) -> None:
    delay = next_delay(RetryPolicy(), "submit", 429, attempt=1, retry_after=retry_after, rng=random.Random(1))
    assert delay is not None
    if expected is None:
        assert 0.75 <= delay <= 1.25  # falls back to jittered backoff for attempt 1
    else:
        assert delay == expected


def test_retry_after_beyond_the_cap_is_left_to_the_caller() -> None:
    assert next_delay(RetryPolicy(retry_after_cap=15), "submit", 429, attempt=1, retry_after=60) is None
    assert next_delay(RetryPolicy(retry_after_cap=15), "poll", 429, attempt=1, retry_after=15) == 15


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.25)
    rng = random.Random(7)
    delays = [backoff_delay(policy, n, rng) for n in range(1, 7)]
    for n, delay in enumerate(delays, start=1):
        nominal = min(10.0, 2 ** (n - 1))
        assert nominal * 0.75 <= delay <= nominal * 1.25
    assert max(delays) <= 12.5


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 60 ", 60.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", 0.0),
        (format_datetime(datetime.fromtimestamp(NOW + 30, tz=timezone.utc), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW - 30, tz=timezone.utc), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
