"""Value types of the simulator: settings, records, errors, the manual clock and the constants they use.

Imports nothing heavy at run time, so the package can hand out ``DEFAULT_TEST_API_KEY`` cheaply.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from airflow_provider_luma.testing._faults import Fault

DEFAULT_TEST_API_KEY: Final = "sim-test-key-7f3a9c2e"
"""The API key a simulator accepts unless told otherwise. Not a secret: it only opens the local simulator."""

GENERATE_MODEL_ID: Final = "luma-ray-3-2-generate"
"""Text/image-to-video, extend and interpolate."""

EDIT_MODEL_ID: Final = "luma-ray-3-2-edit"
"""Restyles a source video; keeps its aspect ratio and duration."""

REFRAME_MODEL_ID: Final = "luma-ray-3-2-reframe"
"""Changes a source video's aspect ratio; keeps its duration."""

NATIVE_MODEL: Final = "ray-3.2"
"""The native Luma Agents API's model id for every Ray 3.2 video type."""

BASE_RENDER_SECONDS: Final = {"360p": 20.0, "540p": 40.0, "720p": 60.0, "1080p": 120.0}
"""Render time of a 5-s SDR clip at ``time_factor=1``; ×2 for 10 s, ×2.5 for HDR, ×3 for HDR + EXR.

Edit and reframe use the same table with the source's duration (they are SDR only)."""

QUEUED_FRACTION: Final = 0.15
"""The first 15 % of a render's time is reported as ``queued``, the rest as ``processing``."""

RPM_WINDOW_SECONDS: Final = 60.0

Api = Literal["gmi", "luma_agents"]
"""Which front a server speaks: GMI's request queue, or the native Luma Agents API (``/v1/generations``)."""

APIS: Final[tuple[Api, ...]] = ("gmi", "luma_agents")

ResponseStyle = Literal["outcome", "flat"]
"""``outcome``: results under ``outcome`` (``media_urls``); ``flat``: ``generation_id``/``video_url`` top level."""


class SimulatorError(Exception):
    """An error answer: HTTP ``status`` with a JSON ``{"error": message}`` body and extra ``headers``.

    The native front answers the same error as ``{"detail": message}`` (``render(key="detail")``).
    """

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def render(self, key: str = "error") -> tuple[bytes, str]:
        """The body (the message under ``key``) and its content type."""
        return json.dumps({key: self.message}).encode(), "application/json"


class StorageError(SimulatorError):
    """An error from the (S3-like) media store: answered with S3's XML error document."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code

    def render(self, key: str = "error") -> tuple[bytes, str]:
        """S3-style ``<Error><Code>…</Code><Message>…</Message></Error>``."""
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message></Error>"
        )
        return xml.encode(), "application/xml"


class ManualClock:
    """A clock that only moves when told to; pass it as ``LumaSimulator(clock=ManualClock())``.

    :param start: the initial time, in Unix seconds.
    """

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._now = float(start)

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``; returns the new time."""
        self._now += seconds
        return self._now

    def set(self, now: float) -> None:
        """Jump to ``now`` (Unix seconds)."""
        self._now = float(now)


@dataclass
class SimulatorConfig:
    """Tunable behaviour; change it with :meth:`LumaSimulator.configure` (render times apply to new requests)."""

    time_factor: float = 1.0
    render_seconds: float | None = None
    response_style: ResponseStyle = "outcome"
    url_ttl_seconds: float = 3600.0
    video_size_bytes: int | None = None
    max_concurrent_jobs: int | None = None
    concurrency_retry_after: int = 60
    rpm_limit: int | None = None

    def validate(self) -> None:
        """:raises ValueError: naming the first setting that is out of range."""
        if self.time_factor < 0:
            raise ValueError(f"time_factor must be >= 0, got {self.time_factor}")
        if self.render_seconds is not None and self.render_seconds < 0:
            raise ValueError(f"render_seconds must be >= 0, got {self.render_seconds}")
        if self.response_style not in ("outcome", "flat"):
            raise ValueError(f"response_style must be 'outcome' or 'flat', got {self.response_style!r}")
        if self.url_ttl_seconds <= 0:
            raise ValueError(f"url_ttl_seconds must be > 0, got {self.url_ttl_seconds}")
        for name in ("video_size_bytes", "max_concurrent_jobs", "rpm_limit"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "video_size_bytes" else 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value}")
        if self.concurrency_retry_after < 1:
            raise ValueError(f"concurrency_retry_after must be >= 1, got {self.concurrency_retry_after}")


@dataclass(frozen=True)
class GenerationRecord:
    """A snapshot of one submitted request, as :meth:`LumaSimulator.generation` returns it.

    :param model: the model id the request was submitted to.
    :param generation_id: the Luma generation id, once the render succeeded (``None`` before, or on failure).
    :param started_at: when the request leaves ``queued``; ``finishes_at``: when it becomes terminal.
    :param start_frame_generation_id: the generation this request chained from as its start frame, if any.
    :param end_frame_generation_id: the generation this request chained from as its end frame, if any.
    :param chained_from_request_ids: the request ids that produced the referenced generations (valid ones only).
    :param source_generation_id: the generation an edit or reframe works on, if given by id.
    :param aspect_ratio: the output's aspect ratio; ``None`` when unknown (an edit of inline ``source_data``, or
        of a source that is not a generation of this simulator).
    :param duration: the output's duration (``"5s"``/``"10s"``); ``None`` when the source is unknown.
    :param api: the front that created the request: ``"gmi"`` or ``"luma_agents"``. ``model`` and ``payload`` are
        GMI-style either way (a native request is translated to the flat payload of the GMI model it maps to, with
        native-only fields such as ``keyframes`` or ``user_id`` under their own names), so both fronts compare.
    """

    request_id: str
    model: str
    payload: dict[str, Any]
    status: str
    generation_id: str | None
    created_at: float
    started_at: float
    finishes_at: float
    start_frame_generation_id: str | None
    end_frame_generation_id: str | None
    chained_from_request_ids: tuple[str, ...]
    error: str | None
    failure_code: str | None
    source_generation_id: str | None
    aspect_ratio: str | None
    duration: str | None
    api: Api

    @property
    def chained_from(self) -> tuple[str, ...]:
        """The generation ids this request referenced (start, end, source), valid or not."""
        refs = (self.start_frame_generation_id, self.end_frame_generation_id, self.source_generation_id)
        return tuple(g for g in refs if g)

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-able dict."""
        return {**asdict(self), "chained_from_request_ids": list(self.chained_from_request_ids)}


@dataclass
class PendingFault:
    """A queued fault and how many more requests it will affect (internal)."""

    fault: Fault
    uses_left: int


@dataclass
class Job:
    """The simulator's mutable record of one request (internal); status is derived from the clock."""

    request_id: str
    model: str
    payload: dict[str, Any]
    references: dict[str, str]  # reference field (REFERENCE_FIELDS) -> the generation id it names
    generation_id: str
    created_at: float
    started_at: float
    finishes_at: float
    failure: tuple[str, str] | None
    chained_from_request_ids: tuple[str, ...]
    aspect_ratio: str | None
    duration: str | None
    exr_export: bool
    api: Api
    owner: str  # fingerprint of the API key that created the job: the native API hides other keys' generations

    def status_at(self, now: float) -> str:
        """``queued`` → ``processing`` → ``success`` / ``failed``, as of ``now``."""
        if now >= self.finishes_at:
            return "failed" if self.failure else "success"
        return "processing" if now >= self.started_at else "queued"

    def updated_at(self, now: float) -> float:
        """When the status seen at ``now`` was entered."""
        if now >= self.finishes_at:
            return self.finishes_at
        return self.started_at if now >= self.started_at else self.created_at

    def record(self, now: float) -> GenerationRecord:
        """A frozen snapshot as of ``now``."""
        status = self.status_at(now)
        error, code = self.failure if status == "failed" and self.failure else (None, None)
        return GenerationRecord(
            request_id=self.request_id,
            model=self.model,
            payload=dict(self.payload),
            status=status,
            generation_id=self.generation_id if status == "success" else None,
            created_at=self.created_at,
            started_at=self.started_at,
            finishes_at=self.finishes_at,
            start_frame_generation_id=self.references.get("start_frame_generation_id"),
            end_frame_generation_id=self.references.get("end_frame_generation_id"),
            chained_from_request_ids=self.chained_from_request_ids,
            error=error,
            failure_code=code,
            source_generation_id=self.references.get("source_generation_id"),
            aspect_ratio=self.aspect_ratio,
            duration=self.duration,
            api=self.api,
        )
