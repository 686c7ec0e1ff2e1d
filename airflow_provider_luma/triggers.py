"""``LumaGenerationTrigger``: waits for a render in the triggerer, holding no worker slot.

Serialized kwargs are JSON primitives only (connection id, request id, poll interval, absolute deadlines): Airflow
3.3 stores trigger kwargs in plain text, so the API key is fetched inside :meth:`run` from the connection. A
triggerer restart re-creates the trigger from those kwargs and runs :meth:`run` from the top; because the deadline
is an absolute epoch, the render's time budget does not restart with it.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_provider_luma.core.retry import RetryPolicy

if TYPE_CHECKING:
    from airflow_provider_luma.core.http import AsyncLumaClient
    from airflow_provider_luma.runtime.polling import Clock, Schedule
    from airflow_provider_luma.runtime.results import TriggerEventPayload

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
    ``exr_url`` are ``None`` (the worker fetches them; see :func:`airflow_provider_luma.runtime.results.job_event`).

    :param request_id: the id the render is polled by (GMI: the queue request id; Luma Agents API: the generation
        id).
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
    :param progress_interval: seconds between two progress lines (default 60; see :mod:`.runtime.progress`).
    :param finish_result: the task's result as far as it is known before the render ends (the worker decides when
        a render may end here; see :mod:`airflow_provider_luma.runtime.end_in_trigger`). When given, a success ends the
        task in the triggerer: it writes this result, with the service's ids and URLs, as the task's XComs and
        yields a ``TaskSuccessEvent``; no worker resumes. Any other outcome (or XComs that cannot be written)
        resumes the worker as usual. ``None`` (the default, and every
        trigger serialized before it existed): every outcome resumes the worker.
    :param finish_keys: with ``finish_result``, push each key as its own XCom too (the task's
        ``multiple_outputs``), as the worker's task runner would.

    The poll loop is the one the worker's ``deferrable=False`` wait runs (:mod:`airflow_provider_luma.runtime.polling`):
    same schedule, state-change and progress lines, status reading and events.
    """

    clock: Clock | None = None
    """The wall clock and sleeps of :meth:`run` (``None``: the system's); a test sets one it moves itself."""

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
        from airflow_provider_luma.runtime.end_in_trigger import finished_xcoms, push_xcoms

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
        from airflow_provider_luma.runtime.polling import backend_changed_event

        return backend_changed_event(self.request_id, self.backend, self.luma_conn_id, now)

    def _error_event(self, exc: BaseException) -> TriggerEventPayload:
        from airflow_provider_luma.runtime.polling import stopped_event

        return stopped_event(self.request_id, exc, self._schedule().elapsed(self._clock().time()))

    def _schedule(self) -> Schedule:
        from airflow_provider_luma.runtime.polling import Schedule

        return Schedule(
            deadline=self.deadline, poll_interval=self.poll_interval, submitted_at=self.submitted_at,
            first_poll_at=self.first_poll_at, expected_seconds=self.expected_seconds,
        )  # fmt: skip

    async def _poll(self, client: AsyncLumaClient) -> TriggerEventPayload:
        """The shared poll loop (:mod:`airflow_provider_luma.runtime.polling`), driven on the triggerer's loop."""
        from airflow_provider_luma.runtime.polling import PollMachine, apoll_until_done

        # URLs in the event only when this trigger ends the task with them (see _end_task).
        machine = PollMachine(
            self.request_id, self._schedule(), label=self.render_label, progress_interval=self.progress_interval,
            with_urls=self.finish_result is not None,
        )  # fmt: skip
        return await apoll_until_done(
            machine, lambda: client.aget_generation(self.request_id, self.model), self.log, self._clock()
        )

    def _next_gap(self) -> float:
        """Seconds to the next status call if one were made now (see :meth:`Schedule.gap`)."""
        return self._schedule().gap(self._clock().time())

    def _clock(self) -> Clock:
        from airflow_provider_luma.runtime.polling import SYSTEM_CLOCK

        return self.clock or SYSTEM_CLOCK

    async def on_kill(self) -> None:
        """Runs when a user marks the deferred task failed/success or clears it (Airflow 3.3).

        Neither GMI's queue nor Luma's Agents API documents a cancel endpoint, so there is nothing to stop remotely:
        the render keeps running and is billed. We only say so. Idempotent and instant (no I/O), well inside
        ``[triggerer] on_kill_timeout``.
        """
        self.log.warning(
            "Luma request %s: task was stopped by a user. The render is NOT cancelled (the API has no cancel "
            "endpoint); it keeps running and is billed. A later run of this task re-attaches to it.",
            self.request_id,
        )
