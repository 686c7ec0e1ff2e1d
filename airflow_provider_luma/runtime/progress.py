"""The progress line a waiting render logs at a steady cadence: state, elapsed time, expected time left.

Polls come every few seconds, but a line per poll would bury a triggerer running a thousand renders; so a render
logs at most one line per ``interval`` (:data:`PROGRESS_INTERVAL`, 60 s by default: at 1,000 concurrent renders
that is 1,000 lines a minute in all, one per render), only when it polled, plus the state changes. A render past
its expected time says so, and far past it (:data:`FAR_PAST_FACTOR`) it warns.
"""

from __future__ import annotations

from typing import Any, Final

PROGRESS_INTERVAL: Final = 60.0
"""Seconds between two progress lines of one render (on the simulator's clock this scales with it)."""
MIN_PROGRESS_INTERVAL: Final = 1.0
FAR_PAST_FACTOR: Final = 2.0


def progress_interval(time_factor: float) -> float:
    """The cadence on a clock running ``time_factor`` times real speed (never below one line a second)."""
    return max(MIN_PROGRESS_INTERVAL, PROGRESS_INTERVAL * min(1.0, time_factor))


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 10 s``, ``1 h 05 min``: readable in a log line."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressLog:
    """Decides when a waiting render logs its progress, and what the line says.

    :param log: the trigger's (or the worker's) logger.
    :param request_id: the render's request id.
    :param expected_seconds: its expected render time (``None``: unknown, e.g. a trigger serialized by 0.1).
    :param label: what kind of render it is (``540p 5s SDR``), or ``None``.
    :param interval: seconds between two lines.
    """

    def __init__(
        self, log: Any, request_id: str, expected_seconds: float | None, label: str | None, interval: float
    ) -> None:
        self.log, self.request_id = log, request_id
        self.expected, self.label, self.interval = expected_seconds, label, interval
        self.last_at: float | None = None

    def poll(self, state: str, elapsed: float, now: float, deadline: float) -> None:
        """Called after every status check that did not end the wait; logs when the cadence says so."""
        if self.last_at is None:
            self.last_at = now  # the state change was just logged: the first progress line comes one interval on
            return
        if now - self.last_at < self.interval:
            return
        self.last_at = now
        kind = f"a {self.label} render" if self.label else "this render"
        if self.expected is None or self.expected <= 0:
            self.log.info("Luma request %s: %s, %s elapsed", self.request_id, state, duration(elapsed))
        elif elapsed < self.expected:
            self.log.info(
                "Luma request %s: %s, %s elapsed, about %s left (%s takes about %s)",
                self.request_id, state, duration(elapsed), duration(self.expected - elapsed), kind,
                duration(self.expected),
            )  # fmt: skip
        else:
            far = elapsed >= FAR_PAST_FACTOR * self.expected
            (self.log.warning if far else self.log.info)(
                "Luma request %s: %s, %s elapsed: %s past the %s %s usually takes; still waiting (deadline in %s)",
                self.request_id, state, duration(elapsed), "far" if far else "a little",
                duration(self.expected), kind, duration(deadline - now),
            )  # fmt: skip
