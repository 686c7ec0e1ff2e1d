"""The two limits on creating jobs, as Luma documents them: requests per minute and concurrent active jobs.

Pure: the caller passes the settings, its sliding window of accepted submits and a count of active jobs, and
holds the simulator's lock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from airflow_provider_luma.testing._faults import rate_limit_headers
from airflow_provider_luma.testing._types import RPM_WINDOW_SECONDS, SimulatorConfig, SimulatorError


def check_limits(
    config: SimulatorConfig, window: deque[float], active: Callable[[], int], now: float
) -> dict[str, str]:
    """Raise 429 when a limit is hit; otherwise return the rate-limit headers of an accepted submit.

    :param window: times of the submits accepted so far; entries older than the RPM window are dropped from it.
    :param active: counts the jobs that are not terminal yet (only called when a concurrency limit is set).
    :raises SimulatorError: 429 "Rate limit exceeded" (``Retry-After`` and ``X-RateLimit-*``) or 429 "Too many
        concurrent jobs" (``Retry-After`` only).
    """
    while window and window[0] <= now - RPM_WINDOW_SECONDS:
        window.popleft()
    headers: dict[str, str] = {}
    if config.rpm_limit is not None:
        if len(window) >= config.rpm_limit:
            reset_at = window[0] + RPM_WINDOW_SECONDS
            retry_after = max(1, math.ceil(reset_at - now))
            limit_headers = rate_limit_headers(config.rpm_limit, 0, reset_at)
            raise SimulatorError(429, "Rate limit exceeded", headers={"Retry-After": str(retry_after), **limit_headers})
        oldest = window[0] if window else now
        remaining = config.rpm_limit - len(window) - 1
        headers = rate_limit_headers(config.rpm_limit, remaining, oldest + RPM_WINDOW_SECONDS)
    if config.max_concurrent_jobs is not None and active() >= config.max_concurrent_jobs:
        retry_after_header = {"Retry-After": str(config.concurrency_retry_after)}
        raise SimulatorError(429, "Too many concurrent jobs", headers=retry_after_header)
    return headers
