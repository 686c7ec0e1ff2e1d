"""One poll loop for a render's status, shared by the worker (``deferrable=False``), the trigger and the sensor.

* :class:`Schedule`: when to ask (the first poll near the likely finish, the gap after each poll, the deadline), by
  the rule of :mod:`airflow_provider_luma.core.schedule`, counted from the render's submission, so a render a retry
  re-attaches to keeps its original schedule and clock (:func:`submitted_at` reads that time from the durable
  record).
* :class:`PollMachine`: what one status answer (or failed status call) means: the state change to log, in one
  vocabulary (the normalised :class:`~airflow_provider_luma.core.jobs.JobStatus`, the service's own word in
  brackets when it differs), the warning on an unknown status, the progress line (:mod:`._progress`), a stop after
  too many unusable answers (:class:`~airflow_provider_luma.core.retry.UnusableAnswers`), and the event the wait
  ends with. It does no I/O and never sleeps: it answers with a :class:`Step` (log these lines, stop with this
  event, or sleep this long), so one state machine serves the thin :func:`poll_until_done` (worker) and
  :func:`apoll_until_done` (triggerer) drivers, which differ only in how they call and sleep.
* The events a wait ends with are built here and nowhere else (:func:`stopped_event`, :func:`timeout_event`, ...),
  and :func:`read_event` is the one reading of an event, for the operators' ``execute_complete`` and the sensor.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_luma.core.errors import (
    LumaConfigurationError,
    LumaError,
    LumaGenerationCancelled,
    LumaGenerationFailed,
    LumaResponseError,
    poll_should_stop,
    unusable_answers_message,
)
from airflow_provider_luma.core.jobs import Job, JobStatus
from airflow_provider_luma.core.retry import UnusableAnswers
from airflow_provider_luma.core.schedule import first_poll_delay, poll_gap
from airflow_provider_luma.runtime.progress import PROGRESS_INTERVAL, ProgressLog
from airflow_provider_luma.runtime.record import RenderRecord
from airflow_provider_luma.runtime.results import TriggerEventPayload, error_event, job_event
from airflow_provider_luma.runtime.task import fail_or_retry

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "Line",
    "PollMachine",
    "Schedule",
    "Step",
    "SystemClock",
    "apoll_until_done",
    "backend_changed_event",
    "emit",
    "poll_until_done",
    "read_event",
    "state_label",
    "stopped_event",
    "submitted_at",
    "timeout_event",
]

Line = tuple[str, str, tuple[object, ...]]
"""One log line: the logger method (``info`` or ``warning``), the %-format and its arguments."""


class Clock(Protocol):
    """The wall clock and the sleeps of a wait; tests hand the drivers one that moves only when slept on."""

    def time(self) -> float:
        """Unix seconds (a wall clock: deadlines are absolute epochs that survive a triggerer restart)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the worker for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Yield the event loop for ``seconds``."""
        ...


class SystemClock:
    """The real :class:`Clock`: ``time.time``, ``time.sleep``, ``asyncio.sleep``."""

    def time(self) -> float:
        """Now, in Unix seconds."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Sleep ``seconds`` on the event loop."""
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Final[Clock] = SystemClock()


def submitted_at(record: RenderRecord | Mapping[str, Any] | None, request_id: str) -> float | None:
    """When ``request_id`` was submitted, from the task's durable record (``None`` when it does not say).

    The one place that reads it, so the record's shape can change behind it: ``attempted_at`` of the
    ``submitted`` phase is written right after the create request was accepted (by every released version), and a
    re-attach keeps it (:meth:`~airflow_provider_luma.runtime.flow.RenderRun._attach`). Takes the typed record or
    its stored form.
    """
    request: object
    phase: object
    value: object
    if isinstance(record, RenderRecord):
        request, phase, value = record.request_id, str(record.phase), record.attempted_at
    elif record:
        request, phase, value = record.get("request_id"), record.get("phase"), record.get("attempted_at")
    else:
        return None
    if request != request_id or phase != "submitted":
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


@dataclass(frozen=True)
class Schedule:
    """When a wait asks for the render's status; all times are absolute epochs.

    :param deadline: after it the wait ends with a ``timeout`` event (the render may still finish).
    :param poll_interval: the operator's ``poll_interval`` (``p`` in :mod:`~airflow_provider_luma.core.schedule`).
    :param submitted_at: when the render was submitted (``None``: unknown, e.g. a trigger serialized by 0.1).
    :param first_poll_at: when to ask first (``None``: at once).
    :param expected_seconds: the render's expected duration (``None``: unknown; every gap is ``poll_interval``).
    """

    deadline: float
    poll_interval: float
    submitted_at: float | None = None
    first_poll_at: float | None = None
    expected_seconds: float | None = None

    @classmethod
    def starting(
        cls, now: float, budget: float, poll_interval: float, expected_seconds: float, since: float | None = None
    ) -> Schedule:
        """The schedule of a wait that starts ``now`` for ``budget`` seconds at most.

        :param since: when the render was submitted; a render re-attached by a retry passes its original
            submission, so its first poll and its elapsed time are not restarted (``None``: now).
        """
        since = now if since is None else min(since, now)
        return cls(
            deadline=now + budget,
            poll_interval=poll_interval,
            submitted_at=since,
            first_poll_at=since + first_poll_delay(expected_seconds, poll_interval),
            expected_seconds=expected_seconds,
        )

    def elapsed(self, now: float) -> float:
        """Seconds since submission (0 when unknown)."""
        return now - self.submitted_at if self.submitted_at is not None else 0.0

    def gap(self, now: float) -> float:
        """Seconds between a status call made ``now`` and the next (rules 2 and 3 of ``core/schedule``)."""
        if self.submitted_at is None:
            return self.poll_interval
        return poll_gap(now - self.submitted_at, self.expected_seconds, self.poll_interval)

    def next_sleep(self, now: float) -> float:
        """Seconds to sleep after a status call made ``now``: one gap, never past the deadline."""
        return max(0.0, min(self.gap(now), self.deadline - now))

    def first_wait(self, now: float, rng: random.Random | None = None) -> float:
        """Seconds before the first status call of this wait.

        Until ``first_poll_at`` normally. A wait whose first poll is overdue by more than a gap is a resumed one (a
        triggerer restart or failover, which starts all of a dead peer's triggers at once, or a retry re-attaching
        late in a render): it waits a random part of one gap, so such polls spread out instead of arriving in the
        same second; its render is at most one ordinary gap later to be noticed.
        """
        if self.first_poll_at and self.first_poll_at > now:
            return max(0.0, min(self.first_poll_at, self.deadline) - now)
        gap = self.gap(now)
        if now - (self.first_poll_at or self.submitted_at or now) <= gap:
            return 0.0
        return max(0.0, min((rng or random).uniform(0.0, gap), self.deadline - now))


@dataclass(frozen=True)
class Step:
    """What a wait does next: log :attr:`lines`, then stop with :attr:`event`, or sleep :attr:`sleep` seconds."""

    lines: tuple[Line, ...] = ()
    event: TriggerEventPayload | None = None
    sleep: float = 0.0


def state_label(job: Job) -> str:
    """A status in the one vocabulary of the logs: ``queued``, or ``queued (dispatched)`` when the service's own
    word differs from the normalised one."""
    raw = (job.raw_status or "").strip()
    return job.status.value if not raw or raw.lower() == job.status.value else f"{job.status.value} ({raw})"


@dataclass
class _Lines:
    """Collects log lines (it stands in for a logger, so :class:`ProgressLog` needs no change)."""

    lines: list[Line] = field(default_factory=list)

    def info(self, message: str, *args: object) -> None:
        self.lines.append(("info", message, args))

    def warning(self, message: str, *args: object) -> None:
        self.lines.append(("warning", message, args))

    def take(self) -> tuple[Line, ...]:
        taken, self.lines = tuple(self.lines), []
        return taken


class PollMachine:
    """The state of one wait, fed with each status answer; says what to log, and when to stop or how long to sleep.

    :param request_id: the render's request id.
    :param schedule: when to ask.
    :param label: what the render is (``540p 5s 16:9``), for the progress lines (``None``: unknown).
    :param progress_interval: seconds between two progress lines (``None``: :data:`PROGRESS_INTERVAL`).
    :param with_urls: whether the success event keeps the presigned URLs (the worker's own loop, which masks them
        in its short-lived process; see :func:`~airflow_provider_luma.runtime.results.job_event`).
    :param rng: the spread of a resumed wait's first poll (see :meth:`Schedule.first_wait`).
    """

    def __init__(
        self,
        request_id: str,
        schedule: Schedule,
        *,
        label: str | None = None,
        progress_interval: float | None = None,
        with_urls: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.request_id, self.schedule, self.with_urls, self.rng = request_id, schedule, with_urls, rng
        self.status: JobStatus | None = None
        self.last: str | None = None  # the last state logged, as logged
        self.unusable = UnusableAnswers()
        self._out = _Lines()
        interval = PROGRESS_INTERVAL if progress_interval is None else progress_interval
        self.progress = ProgressLog(self._out, request_id, schedule.expected_seconds, label, interval)

    def begin(self, now: float) -> Step:
        """The wait starts: sleep until its first status call."""
        return Step(sleep=self.schedule.first_wait(now, self.rng))

    def wake(self, now: float) -> Step | None:
        """Before a status call: the ``timeout`` step once the deadline passed, else ``None`` (ask now)."""
        if now < self.schedule.deadline:
            return None
        return Step(event=timeout_event(self.request_id, self.last, self.schedule.elapsed(now)))

    def answer(self, job: Job, now: float) -> Step:
        """A status answer arrived at ``now``."""
        self.unusable.usable()
        elapsed, label = self.schedule.elapsed(now), state_label(job)
        if job.status is not self.status:
            self._out.info(
                "Luma request %s: %s -> %s after %.0f s", self.request_id, self.last or "submitted", label, elapsed
            )
            if job.status is JobStatus.UNKNOWN:
                self._out.warning(
                    "Luma request %s: unknown status %r; treating it as still running", self.request_id, job.raw_status
                )
            self.status, self.last = job.status, label
        if job.is_terminal:
            return Step(self._out.take(), event=job_event(job, elapsed=elapsed, with_urls=self.with_urls))
        self.progress.poll(label, elapsed, now, self.schedule.deadline)
        return Step(self._out.take(), sleep=self.schedule.next_sleep(now))

    def failure(self, exc: LumaError, now: float) -> Step:
        """A status call failed at ``now``: stop when polling again cannot help, else keep polling."""
        elapsed = self.schedule.elapsed(now)
        if poll_should_stop(exc):
            return Step(event=stopped_event(self.request_id, exc, elapsed))
        if isinstance(exc, LumaResponseError) and self.unusable.unusable():
            event = stopped_event(self.request_id, exc, elapsed)
            event["message"] = unusable_answers_message(self.request_id, self.unusable.count, exc)
            return Step(event=event)
        line: Line = (
            "warning",
            "Luma request %s: status check failed (%s); still polling until the deadline",
            (self.request_id, exc),
        )
        return Step((line,), sleep=self.schedule.next_sleep(now))


def emit(log: Any, lines: tuple[Line, ...]) -> None:
    """Write ``lines`` to a task's, trigger's or sensor's logger."""
    for level, message, args in lines:
        getattr(log, level)(message, *args)


def poll_until_done(
    machine: PollMachine, fetch: Callable[[], Job], log: Any, clock: Clock = SYSTEM_CLOCK
) -> TriggerEventPayload:
    """Wait in this thread (the worker's ``deferrable=False`` loop); returns the event the wait ends with."""
    step = machine.begin(clock.time())
    while step.event is None:
        emit(log, step.lines)
        clock.sleep(step.sleep)
        step = machine.wake(clock.time()) or _ask(machine, fetch, clock)
    emit(log, step.lines)
    return step.event


def _ask(machine: PollMachine, fetch: Callable[[], Job], clock: Clock) -> Step:
    try:
        job = fetch()
    except LumaError as exc:
        return machine.failure(exc, clock.time())
    return machine.answer(job, clock.time())


async def apoll_until_done(
    machine: PollMachine, fetch: Callable[[], Awaitable[Job]], log: Any, clock: Clock = SYSTEM_CLOCK
) -> TriggerEventPayload:
    """:func:`poll_until_done` on an event loop (the trigger): the same steps, awaited."""
    step = machine.begin(clock.time())
    while step.event is None:
        emit(log, step.lines)
        await clock.asleep(step.sleep)
        step = machine.wake(clock.time()) or await _aask(machine, fetch, clock)
    emit(log, step.lines)
    return step.event


async def _aask(machine: PollMachine, fetch: Callable[[], Awaitable[Job]], clock: Clock) -> Step:
    try:
        job = await fetch()
    except LumaError as exc:
        return machine.failure(exc, clock.time())
    return machine.answer(job, clock.time())


# -- the events a wait ends with -------------------------------------------------------------------------------


def stopped_event(request_id: str, exc: BaseException, elapsed: float) -> TriggerEventPayload:
    """The ``error`` event of a wait that cannot go on; retryable unless the error says a rerun cannot help."""
    retryable = bool(getattr(exc, "retryable", False)) if isinstance(exc, LumaError) else True
    event = error_event(request_id, exc, elapsed=elapsed, retryable=retryable)
    if isinstance(exc, LumaConfigurationError):
        event["message"] = f"{event['message']}" + (
            f". Luma request {request_id} was already bought and is not lost: fix the connection and clear "
            "the task to finish it (no new render is bought)."
        )
    return event


def timeout_event(request_id: str, last: str | None, elapsed: float) -> TriggerEventPayload:
    """The ``timeout`` event: the deadline passed while the render was still ``last`` (retryable)."""
    event = error_event(request_id, TimeoutError(), elapsed=elapsed, retryable=True)
    event["status"] = "timeout"
    event["message"] = (
        f"Luma request {request_id} was still {last or 'not confirmed'} at its deadline. "
        "The render may still finish (and is billed); a retry of this task re-attaches to it."
    )
    return event


def backend_changed_event(request_id: str, bought_on: str, conn_id: str, now: str) -> TriggerEventPayload:
    """The event of a wait whose connection now speaks another API than the render was bought on (not retryable:
    a GMI request id means nothing to the native API, and the reverse, so it is never polled there)."""
    event = error_event(request_id, RuntimeError("the connection's API changed"), elapsed=0.0, retryable=False)
    event["message"] = (
        f"Luma request {request_id} was bought on {bought_on}, but connection {conn_id!r} now speaks {now}; it was "
        f"not polled there. Point the connection back at {bought_on} and clear the task to finish the render (no "
        "new one is bought)."
    )
    return event


def read_event(event: object) -> dict[str, Any]:
    """The one reading of a wait's event (operators' ``execute_complete``, the sensor, the worker's own loop).

    :returns: the event of a render that succeeded.
    :raises AirflowException: a retryable end (a transient failure, a cancelled render, a ``timeout``, a retryable
        ``error``), or one that is no event at all; :class:`AirflowFailException` when a rerun cannot help.
    """
    if not isinstance(event, dict) or "status" not in event:
        raise AirflowException(f"Luma trigger returned no usable event: {event!r}")
    status, request_id = event["status"], event.get("request_id") or "?"
    if status == "success":
        return event
    message = str(event.get("message") or "no reason given")
    if status == "failed":
        error: LumaError = LumaGenerationFailed(request_id, message, failure_code=event.get("failure_code"))
    elif status == "cancelled":
        error = LumaGenerationCancelled(request_id, message)
    else:  # timeout / error
        raise (AirflowException if event.get("retryable") else AirflowFailException)(message)
    # Not logged here: Airflow logs the exception with its message, so a failure reads once in the task log.
    raise fail_or_retry(error)
