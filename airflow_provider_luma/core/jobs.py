"""The one job type between a wire format and Airflow.

Every backend module parses its bodies into :class:`Job`; the trigger, the worker's poll loop, the download
operator (and later the UI) read only this, never a raw body. Status vocabularies (``success``/``completed``,
``cancelled``/``canceled``) are mapped in the backend modules and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from airflow_provider_luma.core._compat import StrEnum


class JobStatus(StrEnum):
    """Where a render is. The values are also the ``status`` of the trigger's events."""

    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True for ``success``, ``failed`` and ``cancelled``."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES: Final = frozenset({JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True)
class Job:
    """One render as the service last described it.

    :param request_id: the id we poll with (GMI: the queue request id).
    :param status: normalised status; :attr:`raw_status` keeps the service's own word.
    :param backend: which wire format it came from (``"gmi"``).
    :param model: the model id the job runs, when the body says it (else the one we asked for).
    :param generation_id: the Luma generation id that later renders chain from (set on success).
    :param video_url: presigned MP4 URL on success (https, or http to a loopback host).
    :param exr_url: presigned EXR URL when one was exported.
    :param error: failure text; :attr:`failure_code` Luma's code when passed through.
    :param trace_id: the service's request id for this exchange (the native API's ``X-Request-Id``), for support.
    """

    request_id: str
    status: JobStatus
    backend: str
    model: str | None = None
    raw_status: str = ""
    generation_id: str | None = None
    video_url: str | None = None
    exr_url: str | None = None
    error: str | None = None
    failure_code: str | None = None
    trace_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the job reached success, failed or cancelled."""
        return self.status.is_terminal
