"""``LumaGenerationTrigger``: waits for a render in the triggerer, holding no worker slot.

Serialized kwargs are JSON primitives only (connection id, request id, poll interval, absolute deadlines): Airflow
3.3 stores trigger kwargs in plain text, so the API key is fetched inside :meth:`run` from the connection. A
triggerer restart re-creates the trigger from those kwargs and runs :meth:`run` from the top; because the deadline
is an absolute epoch, the render's time budget does not restart with it.
"""

from __future__ import annotations

import asyncio
import importlib
import random
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_provider_luma._results import TriggerEventPayload, error_event, job_event
from airflow_provider_luma.core.retry import RetryPolicy

if TYPE_CHECKING:
    from airflow_provider_luma.core.http import AsyncLumaClient

CLASSPATH = "airflow_provider_luma.triggers.LumaGenerationTrigger"

# One quick retry inside a status call; the poll loop itself is the outer retry (until the deadline).
POLL_RETRY = RetryPolicy(max_attempts=2, base_delay=0.5, max_delay=5.0, retry_after_cap=60.0)


_CLIENT_LOADED = False


def _import_the_client() -> None:
    global _CLIENT_LOADED
    from airflow_provider_luma.core.http import default_ssl_context

    importlib.import_module("airflow_provider_luma.hooks")
    importlib.import_module("airflow.providers.common.compat.connection")  # the connection lookup's first use
    default_ssl_context()
    _CLIENT_LOADED = True


async def _load_the_client() -> None:
    """Import the hook, the HTTP client and the request specs, and load the CA bundle, in a worker thread.

    The first trigger of a triggerer process would otherwise do it on the event loop every trigger shares and
    stall them all meanwhile (a cold process also compiles those modules). Until it is done, every starting
    trigger waits here; concurrent imports of one module wait for each other inside the import system.
    """
    if not _CLIENT_LOADED:
        await asyncio.to_thread(_import_the_client)


class LumaGenerationTrigger(BaseTrigger):
    """Poll one request-queue request until it is terminal or its deadline passes; yield exactly one event.

    Event ``status`` is one of ``success``, ``failed``, ``cancelled``, ``timeout``, ``error``; the payload also
    carries ``request_id``, ``generation_id``, ``message``, ``failure_code`` and ``retryable``; ``video_url`` and
    ``exr_url`` are ``None`` (the worker fetches them; see :func:`airflow_provider_luma._results.job_event`).

    :param request_id: the GMI queue request id.
    :param deadline: absolute epoch seconds after which a ``timeout`` event is sent (the render may still finish).
    :param luma_conn_id: Airflow connection id; the API key is read from it inside the triggerer.
    :param poll_interval: seconds between status calls.
    :param first_poll_at: absolute epoch of the first status call (lets the first poll wait for a likely render
        time); defaults to now.
    :param submitted_at: absolute epoch of submission, for elapsed-time log lines and the poll schedule.
    :param expected_seconds: the render's expected duration (:mod:`airflow_provider_luma.core.schedule`); with
        ``submitted_at``, polls come every ``poll_interval / 2`` until 1.5 × this after submission, then every
        ``poll_interval``. ``None`` (older serialized triggers): every ``poll_interval``.
    :param backend: the wire format the render was bought on (``"gmi"``; triggers serialized by 0.1 have none).
    :param model: the model id it runs (``None`` in triggers serialized by 0.1: generate).
    :param render_label: what the render is (``540p 5s 16:9``), for the progress lines; ``None`` in older triggers.
    :param progress_interval: seconds between two progress lines (default 60; see :mod:`._progress`).
    :param finish_result: the task's result as far as it is known before the render ends (the worker decides when
        a render may end here; see :mod:`airflow_provider_luma._end_in_trigger`). When given, a success ends the
        task in the triggerer: it writes this result, with the service's ids and URLs, as the task's XComs and
        yields a ``TaskSuccessEvent``; no worker resumes. Any other outcome (or XComs that cannot be written)
        resumes the worker as usual. ``None`` (the default, and every
        trigger serialized before it existed): every outcome resumes the worker.
    :param finish_keys: with ``finish_result``, push each key as its own XCom too (the task's
        ``multiple_outputs``), as the worker's task runner would.
    """

    def __init__(
        self,
        *,
        request_id: str,
        deadline: float,
        luma_conn_id: str = "luma_default",
        poll_interval: float = 10.0,
        first_poll_at: float | None = None,
        submitted_at: float | None = None,
        expected_seconds: float | None = None,
        backend: str = "gmi",
        model: str | None = None,
        render_label: str | None = None,
        progress_interval: float | None = None,
        finish_result: dict[str, Any] | None = None,
        finish_keys: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.request_id = request_id
        self.deadline = float(deadline)
        self.luma_conn_id = luma_conn_id
        self.poll_interval = max(0.1, float(poll_interval))
        self.first_poll_at = first_poll_at
        self.submitted_at = submitted_at
        self.expected_seconds = float(expected_seconds) if expected_seconds is not None else None
        self.backend = backend
        self.model = model
        self.render_label = render_label
        self.progress_interval = progress_interval
        self.finish_result = finish_result
        self.finish_keys = finish_keys

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-only kwargs (never the API key)."""
        return (
            CLASSPATH,
            {
                "request_id": self.request_id,
                "deadline": self.deadline,
                "luma_conn_id": self.luma_conn_id,
                "poll_interval": self.poll_interval,
                "first_poll_at": self.first_poll_at,
                "submitted_at": self.submitted_at,
                "expected_seconds": self.expected_seconds,
                "backend": self.backend,
                "model": self.model,
                "render_label": self.render_label,
                "progress_interval": self.progress_interval,
                "finish_result": self.finish_result,
                "finish_keys": self.finish_keys,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until terminal, deadline or a permanent error; never raises."""
        try:
            await _load_the_client()
            from airflow_provider_luma.hooks import LumaHook

            async with LumaHook(self.luma_conn_id, retry_policy=POLL_RETRY).ashared_client() as client:
                if client.settings.backend != self.backend:
                    payload: TriggerEventPayload = self._backend_changed(client.settings.backend)
                else:
                    payload = await self._poll(client)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the triggerer must get an event, not a traceback
            payload = self._error_event(exc)
        if self.finish_result is not None and payload["status"] == "success":
            ended = await self._end_task(payload)
            if ended is not None:
                yield ended
                return
            payload = {**payload, "video_url": None, "exr_url": None}  # the worker fetches (and masks) fresh ones
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def _end_task(self, payload: TriggerEventPayload) -> TaskSuccessEvent | None:
        """Write the XComs a resumed worker would push, then end the task here; ``None`` (the worker resumes as
        usual) when they cannot be written.

        They go through the triggerer's Execution-API channel and are stored as a worker's are: Airflow 3.3.2
        stores a ``TaskSuccessEvent``'s own ``xcoms`` JSON-encoded once more, so downstream tasks would read
        strings. The presigned URLs are in those XComs only, never in the event (which the triggerer logs).
        """
        from airflow_provider_luma._end_in_trigger import finished_xcoms, push_xcoms

        xcoms = finished_xcoms(self.finish_result or {}, payload, keys=self.finish_keys)
        try:
            await asyncio.to_thread(push_xcoms, self.task_instance, xcoms)
        except Exception as exc:  # noqa: BLE001 - the worker can still finish it: never lose the render
            self.log.warning(
                "Luma request %s done, but its XComs could not be written in the triggerer (%s); a worker finishes "
                "the task", self.request_id, type(exc).__name__,
            )  # fmt: skip
            return None
        self.log.info(
            "Luma request %s done: generation %s; the task ends here (no worker resumes it)",
            self.request_id, payload["generation_id"],
        )  # fmt: skip
        return TaskSuccessEvent()

    def _backend_changed(self, now: str) -> TriggerEventPayload:
        # A GMI request id means nothing to the native API (and the reverse): never poll it there.
        event = self._error_event(RuntimeError("the connection's API changed"))
        event["retryable"] = False
        event["message"] = (
            f"Luma request {self.request_id} was bought on {self.backend}, but connection {self.luma_conn_id!r} now "
            f"speaks {now}; it was not polled there. Point the connection back at {self.backend} and clear the task "
            "to finish the render (no new one is bought)."
        )
        return event

    def _elapsed(self) -> float:
        return time.time() - (self.submitted_at or time.time())

    def _error_event(self, exc: BaseException) -> TriggerEventPayload:
        from airflow_provider_luma.core.errors import LumaConfigurationError, LumaError

        retryable = bool(getattr(exc, "retryable", False)) if isinstance(exc, LumaError) else True
        event = error_event(self.request_id, exc, elapsed=self._elapsed(), retryable=retryable)
        if isinstance(exc, LumaConfigurationError):
            event["message"] = f"{event['message']}" + (
                f". Luma request {self.request_id} was already bought and is not lost: fix the connection and clear "
                "the task to finish it (no new render is bought)."
            )
        return event

    async def _poll(self, client: AsyncLumaClient) -> TriggerEventPayload:
        from airflow_provider_luma._progress import PROGRESS_INTERVAL, ProgressLog
        from airflow_provider_luma.core.errors import (
            LumaError,
            LumaResponseError,
            poll_should_stop,
            unusable_answers_message,
        )
        from airflow_provider_luma.core.jobs import JobStatus
        from airflow_provider_luma.core.retry import UnusableAnswers

        progress = ProgressLog(
            self.log, self.request_id, self.expected_seconds, self.render_label,
            PROGRESS_INTERVAL if self.progress_interval is None else self.progress_interval,
        )  # fmt: skip
        await asyncio.sleep(self._first_wait())
        last: JobStatus | None = None
        unusable = UnusableAnswers()
        while True:
            if time.time() >= self.deadline:
                return self._timeout_event(last)
            try:
                generation = await client.aget_generation(self.request_id, self.model)
            except LumaError as exc:
                if poll_should_stop(exc):
                    return self._error_event(exc)
                if isinstance(exc, LumaResponseError) and unusable.unusable():
                    event = self._error_event(exc)
                    event["message"] = unusable_answers_message(self.request_id, unusable.count, exc)
                    return event
                self.log.warning(
                    "Luma request %s: status check failed (%s); still polling until the deadline",
                    self.request_id, exc,
                )  # fmt: skip
            else:
                unusable.usable()
                if generation.status != last:
                    self.log.info(
                        "Luma request %s: %s -> %s after %.0f s",
                        self.request_id, last or "submitted", generation.raw_status or generation.status,
                        self._elapsed(),
                    )  # fmt: skip
                    if generation.status is JobStatus.UNKNOWN:
                        self.log.warning(
                            "Luma request %s: unknown status %r; treating it as still running",
                            self.request_id, generation.raw_status,
                        )  # fmt: skip
                    last = generation.status
                if generation.is_terminal:
                    # URLs only when this trigger ends the task with them (see _success_event).
                    return job_event(generation, elapsed=self._elapsed(), with_urls=self.finish_result is not None)
                progress.poll(
                    str(generation.raw_status or generation.status), self._elapsed(), time.time(), self.deadline
                )
            await asyncio.sleep(max(0.0, min(self._next_gap(), self.deadline - time.time())))

    def _first_wait(self) -> float:
        """Seconds before the first status call of this run.

        Until ``first_poll_at`` normally. A trigger whose first poll is overdue by more than a poll gap was already
        polling in a triggerer that stopped (restart, or a failover: the survivor starts all of a dead peer's
        triggers at once); it waits a random part of one gap so those polls spread out instead of arriving in
        the same second. Its render is at most one ordinary gap later to be noticed.
        """
        now = time.time()
        if self.first_poll_at and self.first_poll_at > now:
            return max(0.0, min(self.first_poll_at, self.deadline) - now)
        gap = self._next_gap()
        if now - (self.first_poll_at or self.submitted_at or now) <= gap:
            return 0.0
        return max(0.0, min(random.uniform(0.0, gap), self.deadline - now))

    def _next_gap(self) -> float:
        from airflow_provider_luma.core.schedule import poll_gap

        if self.submitted_at is None:
            return self.poll_interval
        return poll_gap(time.time() - self.submitted_at, self.expected_seconds, self.poll_interval)

    def _timeout_event(self, last: object) -> TriggerEventPayload:
        event = self._error_event(TimeoutError())
        event["status"], event["retryable"] = "timeout", True
        event["message"] = (
            f"Luma request {self.request_id} was still {last or 'not confirmed'} at its deadline. "
            "The render may still finish (and is billed); a retry of this task re-attaches to it."
        )
        return event

    async def on_kill(self) -> None:
        """Runs when a user marks the deferred task failed/success or clears it (Airflow 3.3).

        GMI documents no cancel endpoint, so there is nothing to stop remotely: the render keeps running and is
        billed. We only say so. Idempotent and instant (no I/O), well inside ``[triggerer] on_kill_timeout``.
        """
        self.log.warning(
            "Luma request %s: task was stopped by a user. The render is NOT cancelled (the API has no cancel "
            "endpoint); it keeps running and is billed. A later run of this task re-attaches to it.",
            self.request_id,
        )
