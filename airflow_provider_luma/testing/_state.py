"""The simulator's state machine: requests, renders, rate limits, faults and the request log. No sockets.

Render progress is computed lazily from the clock each time a record is read, so there is no background thread
and an injected clock (:class:`ManualClock`) makes every test deterministic.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import Any

from airflow_provider_luma.testing._faults import Fault, FaultTarget, LoggedRequest
from airflow_provider_luma.testing._limits import check_limits
from airflow_provider_luma.testing._media import MediaBody, exr_body, mp4_body, sign, signature_ok
from airflow_provider_luma.testing._native_rules import NATIVE_NAMES, parse_native
from airflow_provider_luma.testing._rules import MODEL_IDS, RULES
from airflow_provider_luma.testing._sources import Plan, plan, render_seconds
from airflow_provider_luma.testing._types import (
    GENERATE_MODEL_ID,
    QUEUED_FRACTION,
    Api,
    GenerationRecord,
    Job,
    PendingFault,
    ResponseStyle,
    SimulatorConfig,
    SimulatorError,
    StorageError,
)
from airflow_provider_luma.testing._views import generation_view, request_view


class LumaSimulator:
    """In-memory model of GMI's request queue and of the native Luma Agents API for the Ray 3.2 family;
    thread-safe, socket-free.

    Serves ``luma-ray-3-2-generate``, ``-edit`` and ``-reframe`` (:meth:`submit`) and their native equivalents,
    ``ray-3.2`` of type ``video``, ``video_edit`` and ``video_reframe`` (:meth:`submit_native`), as one set of
    jobs, validating requests with its own rule tables (:mod:`._rules`, :mod:`._native_rules`), never with the
    provider's models. :class:`LumaSimulatorServer` puts it behind HTTP; tests can also drive and inspect it
    directly.
    Not modelled: cancellation, request listing, ``X-Organization-ID``, HDR access checks, MP4 parsing of inline
    ``source_data`` (it counts as a 5-s clip of unknown aspect ratio).

    :param clock: returns the current Unix time; inject a :class:`ManualClock` for deterministic tests.
    :param time_factor: multiplies the render-time table (0.01 makes a 60-s render take 0.6 s).
    :param render_seconds: a fixed render time for every request, overriding the table and ``time_factor``.
    :param response_style: ``"outcome"`` (results under ``outcome``) or ``"flat"`` (results at the top level).
    :param url_ttl_seconds: lifetime of each minted media URL.
    :param video_size_bytes: serve the MP4 padded (or cut) to exactly this many bytes.
    :param max_concurrent_jobs: submits beyond this many non-terminal jobs get 429 "Too many concurrent jobs".
    :param concurrency_retry_after: the ``Retry-After`` of that 429.
    :param rpm_limit: accepted submits allowed per 60-s sliding window; more get 429 "Rate limit exceeded".
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        time_factor: float = 1.0,
        render_seconds: float | None = None,
        response_style: ResponseStyle = "outcome",
        url_ttl_seconds: float = 3600.0,
        video_size_bytes: int | None = None,
        max_concurrent_jobs: int | None = None,
        concurrency_retry_after: int = 60,
        rpm_limit: int | None = None,
    ) -> None:
        # One re-entrant lock guards everything below: the HTTP server calls in from many threads.
        self._lock = threading.RLock()
        self._clock = clock
        self._config = SimulatorConfig(
            time_factor, render_seconds, response_style, url_ttl_seconds, video_size_bytes,
            max_concurrent_jobs, concurrency_retry_after, rpm_limit,
        )  # fmt: skip
        self._config.validate()
        self._secret = secrets.token_bytes(32)
        self._jobs: dict[str, Job] = {}
        self._by_generation: dict[str, str] = {}
        self._faults: list[PendingFault] = []  # FIFO
        self._log: list[LoggedRequest] = []
        self._rpm_window: deque[float] = deque()

    # -- clock and configuration ---------------------------------------------------------------------

    def now(self) -> float:
        """The simulator's current time (Unix seconds)."""
        return self._clock()

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Replace the clock (e.g. with a :class:`ManualClock`)."""
        with self._lock:
            self._clock = clock

    @property
    def config(self) -> SimulatorConfig:
        """A copy of the current settings."""
        with self._lock:
            return replace(self._config)

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change settings by name (see the constructor); returns the new settings.

        :raises ValueError: for an unknown setting or an out-of-range value; nothing is changed then.
        """
        unknown = sorted(set(changes) - {f.name for f in fields(SimulatorConfig)})
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        with self._lock:
            candidate = replace(self._config, **changes)
            candidate.validate()
            self._config = candidate
            return replace(candidate)

    def reset(self) -> None:
        """Forget every request, generation, queued fault, log entry and rate-limit window; keep settings."""
        with self._lock:
            self._jobs.clear()
            self._by_generation.clear()
            self._faults.clear()
            self._log.clear()
            self._rpm_window.clear()

    # -- faults and the request log ------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Append faults to the FIFO queue; each request consumes the first one that matches it."""
        with self._lock:
            self._faults.extend(PendingFault(fault, fault.times) for fault in faults)

    @property
    def pending_faults(self) -> list[Fault]:
        """Faults not yet used up, in queue order."""
        with self._lock:
            return [entry.fault for entry in self._faults]

    def take_fault(self, target: FaultTarget) -> Fault | None:
        """Consume one use of the first queued fault that applies to a ``target`` request, if any."""
        with self._lock:
            return self._take(lambda f: f.kind != "fail_generation" and f.on in (target, "any"))

    def log_request(self, entry: LoggedRequest) -> None:
        """Append to the request log (the HTTP layer calls this before it answers)."""
        with self._lock:
            self._log.append(entry)

    @property
    def request_log(self) -> list[LoggedRequest]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def create_requests(self) -> list[LoggedRequest]:
        """Log entries of ``POST /requests`` or native ``POST /v1/generations`` that created a request (including
        answers lost to a fault)."""
        return [
            e
            for e in self.request_log
            if e.method == "POST" and e.path.endswith(("/requests", "/generations")) and e.request_id is not None
        ]

    # -- the API -------------------------------------------------------------------------------------

    @staticmethod
    def models() -> dict[str, Any]:
        """The body of ``GET /models``."""
        return {"model_ids": list(MODEL_IDS)}

    def render_seconds_for(self, payload: Mapping[str, Any], *, model: str = GENERATE_MODEL_ID) -> float:
        """How long a request with this (valid) ``payload`` would take from submit to terminal, as of now.

        An edit or reframe takes its duration from its source generation, so the answer depends on the state.

        :raises KeyError: for a model the simulator does not serve.
        """
        with self._lock:
            values = RULES[model].settle(payload)
            outcome = plan(model, values, self._job_of, self._clock())
            return render_seconds(values, outcome.duration, self._config)

    def submit(self, body: Any, *, owner: str = "") -> tuple[dict[str, Any], dict[str, str]]:
        """Handle the parsed body of ``POST /requests``; returns the response body and extra headers.

        :param owner: a fingerprint of the caller's API key (see :meth:`get_generation`).

        :raises SimulatorError: 400 for a bad body, model or payload; 429 for a rate or concurrency limit.
        """
        if not isinstance(body, dict):
            raise SimulatorError(400, "Request body must be a JSON object with 'model' and 'payload'")
        model = body.get("model")
        rules = RULES.get(model) if isinstance(model, str) else None
        if rules is None:
            raise SimulatorError(400, f"Unknown model: {model or '(missing)'} (one of {', '.join(MODEL_IDS)})")
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise SimulatorError(400, "payload must be a JSON object")
        problems = rules.problems(payload)
        if problems:
            raise SimulatorError(400, "; ".join(problems))
        return self._accept(
            rules.model_id, payload, rules.settle(payload), api="gmi", owner=owner, rejection_status=400,
            view=lambda job, now: self._view(job, now, root_url="", full=False),
        )  # fmt: skip

    def submit_native(self, body: Any, *, owner: str = "") -> tuple[dict[str, Any], dict[str, str]]:
        """Handle the parsed body of the native ``POST /v1/generations``; returns the Generation and extra headers.

        The request becomes the same internal job as the equivalent GMI request (see :class:`GenerationRecord`).

        :param owner: a fingerprint of the caller's API key; only the same owner can read the generation back.
        :raises SimulatorError: 400 for invalid parameters, 422 for a rejected combination or bad media data
            (including a reframe to its source's own ratio), 429 for a rate or concurrency limit.
        """
        request = parse_native(body)
        return self._accept(
            request.model_id, request.payload, request.values, api="luma_agents", owner=owner, rejection_status=422,
            names=NATIVE_NAMES, view=lambda job, now: generation_view(job, now, full=False, mint=str),
        )  # fmt: skip

    def get_request(self, request_id: str, *, root_url: str) -> dict[str, Any]:
        """The body of ``GET /requests/{request_id}``; media URLs are minted afresh under ``root_url``.

        :raises SimulatorError: 404 for an unknown request id.
        """
        with self._lock:
            job = self._jobs.get(request_id)
            if job is None:
                raise SimulatorError(404, "Request not found")
            return self._view(job, self._clock(), root_url=root_url, full=True)

    def get_generation(self, generation_id: str, *, owner: str = "", root_url: str) -> dict[str, Any]:
        """The native ``GET /v1/generations/{generation_id}`` body, with ``output`` URLs minted under ``root_url``.

        Finds generations made on either front.

        :raises SimulatorError: 404 for an unknown id, or one another API key (``owner``) created.
        """
        with self._lock:
            job, now = self._job_of(generation_id), self._clock()
            if job is None or job.owner != owner:
                raise SimulatorError(404, "Generation not found")
            return generation_view(job, now, full=True, mint=lambda name: self._mint(name, now, root_url))

    def request_id_of(self, generation_id: str) -> str | None:
        """The request id of the job behind a generation id, or ``None`` for an id this simulator never issued."""
        with self._lock:
            return self._by_generation.get(generation_id)

    def open_media(self, filename: str, *, expires: str | None, sig: str | None) -> tuple[MediaBody, str]:
        """Check a presigned media URL and return the file and the request id it belongs to.

        :raises StorageError: 403 for a bad or expired signature, 404 for a file that does not exist.
        """
        try:
            expiry = int(expires or "")
        except ValueError:
            raise StorageError(403, "AccessDenied", "Query-string authentication requires expires and sig") from None
        if not sig or not signature_ok(self._secret, filename, expiry, sig):
            raise StorageError(403, "SignatureDoesNotMatch", "The request signature does not match")
        with self._lock:
            now = self._clock()
            if now > expiry:
                raise StorageError(403, "AccessDenied", "Request has expired")
            generation_id, _, ext = filename.rpartition(".")
            job = self._job_of(generation_id)
            if job is None or job.status_at(now) != "success" or ext not in ("mp4", "exr"):
                raise StorageError(404, "NoSuchKey", "The specified key does not exist.")
            if ext == "exr":
                if not job.exr_export:
                    raise StorageError(404, "NoSuchKey", "The specified key does not exist.")
                return exr_body(), job.request_id
            return mp4_body(self._config.video_size_bytes), job.request_id

    # -- inspection and control for tests --------------------------------------------------------------

    def generation(self, request_id: str) -> GenerationRecord:
        """A snapshot of one request and its render.

        :raises KeyError: for an unknown request id.
        """
        with self._lock:
            return self._jobs[request_id].record(self._clock())

    def generations(self) -> list[GenerationRecord]:
        """Snapshots of every request, in submit order."""
        with self._lock:
            now = self._clock()
            return [job.record(now) for job in self._jobs.values()]

    def complete_now(self, request_id: str) -> GenerationRecord:
        """Finish a render now: it becomes ``success`` (or ``failed`` if it was going to fail).

        :raises KeyError: for an unknown request id.
        """
        with self._lock:
            job, now = self._jobs[request_id], self._clock()
            job.started_at, job.finishes_at = min(job.started_at, now), min(job.finishes_at, now)
            return job.record(now)

    def fail_now(
        self, request_id: str, reason: str = "Generation failed", failure_code: str = "generation_failed"
    ) -> GenerationRecord:
        """End a render now with ``failed``.

        :raises KeyError: for an unknown request id.
        :raises ValueError: when the render already ended.
        """
        with self._lock:
            job, now = self._jobs[request_id], self._clock()
            if job.status_at(now) in ("success", "failed"):
                raise ValueError(f"request {request_id} already ended ({job.status_at(now)})")
            job.failure = (reason, failure_code)
            job.started_at, job.finishes_at = min(job.started_at, now), now
            return job.record(now)

    # -- internals (call with the lock held) -----------------------------------------------------------

    def _take(self, matches: Callable[[Fault], bool]) -> Fault | None:
        for index, entry in enumerate(self._faults):
            if matches(entry.fault):
                entry.uses_left -= 1
                if entry.uses_left <= 0:
                    del self._faults[index]
                return entry.fault
        return None

    def _active(self, now: float) -> int:
        return sum(1 for job in self._jobs.values() if job.status_at(now) in ("queued", "processing"))

    def _job_of(self, generation_id: str) -> Job | None:
        return self._jobs.get(self._by_generation.get(generation_id, ""))

    def _accept(
        self,
        model: str,
        payload: dict[str, Any],
        values: Mapping[str, Any],
        *,
        api: Api,
        owner: str,
        rejection_status: int,
        view: Callable[[Job, float], dict[str, Any]],
        names: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Plan, limit-check and create a job from valid ``values``; both fronts end here, so they share one state.

        :param rejection_status: the status of a submit-time rejection (a reframe to the source's own ratio).
        :param view: the front's create answer of the new job; ``names``: the front's names for reference fields.
        """
        with self._lock:
            now = self._clock()
            outcome = plan(model, values, self._job_of, now, names)
            if outcome.rejection:  # checked before the limits: a bad payload is rejected whatever the load
                raise SimulatorError(rejection_status, outcome.rejection)
            headers = check_limits(self._config, self._rpm_window, lambda: self._active(now), now)
            render = render_seconds(values, outcome.duration, self._config)
            job = self._create(model, payload, outcome, render, now, api=api, owner=owner)
            return view(job, now), headers

    def _create(
        self, model: str, payload: dict[str, Any], outcome: Plan, render: float, now: float, *, api: Api, owner: str
    ) -> Job:
        failure: tuple[str, str] | None = None
        finishes_at = now + render
        injected = self._take(lambda f: f.kind == "fail_generation")
        # An injected failure states the test's intent, so it wins over a bad chain reference.
        if injected is not None:
            failure = (injected.reason or "Generation failed", injected.failure_code or "generation_failed")
        elif outcome.failures:
            # The real service accepts the POST and fails the request asynchronously, once it is picked up.
            failure = ("; ".join(outcome.failures), "invalid_request")
            finishes_at = now + render * QUEUED_FRACTION
        job = Job(
            request_id=str(uuid.uuid4()),
            model=model,
            payload=dict(payload),
            references=outcome.references,
            generation_id=str(uuid.uuid4()),
            created_at=now,
            started_at=now + render * QUEUED_FRACTION,
            finishes_at=finishes_at,
            failure=failure,
            chained_from_request_ids=outcome.chained_from_request_ids,
            aspect_ratio=outcome.aspect_ratio,
            duration=outcome.duration,
            exr_export=outcome.exr_export,
            api=api,
            owner=owner,
        )
        self._jobs[job.request_id] = job
        self._by_generation[job.generation_id] = job.request_id
        self._rpm_window.append(now)
        return job

    def _mint(self, filename: str, now: float, root_url: str) -> str:
        expires = int(now + self._config.url_ttl_seconds)
        return f"{root_url}/files/{filename}?expires={expires}&sig={sign(self._secret, filename, expires)}"

    def _view(self, job: Job, now: float, *, root_url: str, full: bool) -> dict[str, Any]:
        flat = self._config.response_style == "flat"
        return request_view(job, now, full=full, flat=flat, mint=lambda name: self._mint(name, now, root_url))
