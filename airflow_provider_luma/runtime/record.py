"""The durable record of a render (Airflow 3.3's ``task_state_store``, a Variable before 3.3): typed, versioned,
one phase enum.

The key (:data:`STATE_KEY`) and the record's field names are a compatibility contract: a record survives retries
and upgrades of the same task instance, so renaming them would make a retry buy a render twice. Versions:

* **3** (this release): version 2's fields plus ``render`` (:class:`RenderFacts`): everything the finish of the
  render needs (mode, resolution, output ratio and duration, quality, source generations and facts, the estimate,
  the prompt's digest) and an inline source video's name, size and digest, so a resubmission after a rate-limit
  wait sends it without hashing it again. Written when the request is about to be submitted and when a try re-attaches,
  so a resume (``execute_complete``, ``execute_after_rate_limit``) starts from the record: it neither pulls
  upstream XComs again nor re-reads or re-hashes a source video.
* **2** (0.2, ``tests/fixtures/v0_2_state.json``): ``version``, ``backend``, ``model``, ``phase``,
  ``fingerprint``, ``attempted_at``, ``request_id``, ``generation_id``. The fingerprint hashes ``{backend, model,
  payload as sent}`` (inline media as its digest), so an optional parameter added later changes nothing.
* **1** (0.1.0, no ``version`` field, ``tests/fixtures/v0_1_state.json``): generate on GMI only; its fingerprint
  hashed every field of the request *with defaults* (:func:`legacy_fingerprint`).

A record of version 1 or 2 still resumes (its render is re-attached, never bought again); it lacks the facts, so
its resume rebuilds the request from the task as those releases did. A version this release does not know is
refused with :class:`RecordVersionError` before anything is polled or bought.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_luma.core._compat import StrEnum
from airflow_provider_luma.runtime.task import context_get
from airflow_provider_luma.version_compat import AIRFLOW_V_3_3_PLUS, VariableStateStore

if TYPE_CHECKING:
    from airflow_provider_luma.core.pricing import Estimate
    from airflow_provider_luma.core.specs.base import RenderSpec, SourceFacts

STATE_KEY: Final = "luma_render"  # stable across releases
STATE_RETENTION: Final = timedelta(days=30)
RECORD_VERSION: Final = 3
READABLE_VERSIONS: Final = (1, 2, 3)  # 1 is the version-less record of 0.1.0


class Phase(StrEnum):
    """Where a task instance's render stands. The one place the phases are documented.

    A later try reads the phase: an in-flight request is re-attached (no new create request), a succeeded one is
    returned (when ``reuse_existing``), a ``rendered`` one is always finished, a rejected or failed one is
    submitted again, and ``submitting`` without a request id fails loudly instead of silently buying twice.
    """

    SUBMITTING = "submitting"
    """Written right before the create request leaves (after the connection and key were found, so a failure
    that sent nothing never looks billed). Without a ``request_id`` it means the answer was lost."""
    REJECTED = "rejected"
    """The service provably did not accept the create request (nothing billed); a retry submits cleanly."""
    SUBMITTED = "submitted"
    """Accepted: ``request_id`` names the render, which may still be queued or rendering."""
    RENDERED = "rendered"
    """Done and paid for, its files not stored yet (``output_path``); a retry downloads it again."""
    SUCCEEDED = "succeeded"
    """Done, files stored, result returned."""


class RecordVersionError(AirflowFailException):
    """A record this release cannot read (a newer release wrote it, or it is damaged): the task fails without
    retries, since a retry would read the same record."""


@dataclass(frozen=True)
class RenderFacts:
    """What the finish of a render needs and a resubmission sends, kept in the record (version 3).

    :param mode: the render mode (``text_to_video``, ``edit``, ...).
    :param resolution: the price table's resolution column.
    :param duration: the output clip's duration (``5s``), when known.
    :param aspect_ratio: the output clip's ratio, when known.
    :param quality: ``SDR``, ``HDR`` or ``HDR+EXR``.
    :param source_generation_ids: the prior generations it is made from.
    :param source: what is known of the source video (ratio, duration).
    :param estimated_cost_usd: the estimate in USD, ``None`` when unknown.
    :param billed_blocks: 5-s blocks billed, ``None`` when unknown.
    :param estimate_text: the estimate as logged.
    :param prompt_sha256: the first 16 hex digits of the prompt's SHA-256 (for Asset events), or ``None``.
    :param source_video: an inline source video's ``label``, ``media_type``, ``size``, ``sha256``,
        ``duration_seconds``; ``None`` when there is none.
    """

    mode: str
    resolution: str
    duration: str | None
    aspect_ratio: str | None
    quality: str
    source_generation_ids: tuple[str, ...]
    source: dict[str, Any]
    estimated_cost_usd: float | None
    billed_blocks: int | None
    estimate_text: str
    prompt_sha256: str | None
    source_video: dict[str, Any] | None = None

    @classmethod
    def of(cls, spec: RenderSpec, source: SourceFacts, est: Estimate) -> RenderFacts:
        """The facts of a validated request."""
        out = spec.output_facts(source)
        prompt = getattr(spec, "prompt", None)
        video = getattr(spec, "source_video", None)
        return cls(
            mode=str(spec.mode),
            resolution=spec.resolution_label,
            duration=out.duration,
            aspect_ratio=out.aspect_ratio,
            quality=str(spec.quality),
            source_generation_ids=tuple(spec.source_generation_ids),
            source={"aspect_ratio": source.aspect_ratio, "duration_seconds": source.duration_seconds},
            estimated_cost_usd=est.cost_usd,
            billed_blocks=est.blocks,
            estimate_text=est.describe(),
            prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest()[:16] if prompt else None,
            source_video=None
            if video is None
            else {
                "label": video.label,
                "media_type": video.media_type,
                "size": video.size,
                "sha256": video.sha256,
                "duration_seconds": video.duration_seconds,
            },
        )

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> RenderFacts:
        """Parse the record's ``render`` field."""
        try:
            return cls(**{**value, "source_generation_ids": tuple(value.get("source_generation_ids") or ())})
        except TypeError as exc:
            raise RecordVersionError(f"its 'render' field does not have this release's shape ({exc})") from None

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in the record."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in self.__dict__.items()  # a frozen dataclass: its fields, in order
        }


@dataclass(frozen=True)
class RenderRecord:
    """One stored record. ``version`` is what it was read as (1 for 0.1.0's version-less records)."""

    phase: Phase
    backend: str
    model: str | None
    fingerprint: str | None
    attempted_at: float
    request_id: str | None = None
    generation_id: str | None = None
    facts: RenderFacts | None = None
    version: int = RECORD_VERSION

    def moved_to(self, phase: Phase, *, at: float, request_id: str | None, generation_id: str | None) -> RenderRecord:
        """This record in a later phase (now written as the current version), with these ids."""
        return replace(
            self, phase=phase, attempted_at=at, version=RECORD_VERSION, request_id=request_id,
            generation_id=generation_id,
        )  # fmt: skip


def record_of(
    spec: RenderSpec,
    backend: str,
    facts: RenderFacts,
    phase: Phase,
    *,
    at: float,
    request_id: str | None = None,
    generation_id: str | None = None,
) -> RenderRecord:
    """The current version's record of the render ``spec`` describes, bought on ``backend``."""
    return RenderRecord(phase, backend, spec.MODEL_ID, fingerprint(spec, backend), at, request_id, generation_id, facts)


def parse_record(value: Any) -> RenderRecord | None:
    """A stored value as a :class:`RenderRecord` (``None`` when nothing usable is stored).

    :raises RecordVersionError: for a version this release does not read, naming it, what this release reads and
        what to do.
    """
    if not isinstance(value, Mapping):
        return None
    version = value.get("version", 1)
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise RecordVersionError(
            f"The durable record of this task instance's render (task_state_store[{STATE_KEY!r}]) has version "
            f"{version!r}; this release of airflow-provider-luma reads versions {READABLE_VERSIONS[0]} to "
            f"{READABLE_VERSIONS[-1]}. A newer release wrote it: run this task on workers with that release (or a "
            "later one) so it re-attaches to its render. Nothing was polled or bought."
        )
    try:
        phase = Phase(str(value.get("phase")))
        facts = RenderFacts.from_json(value["render"]) if version >= 3 and value.get("render") else None
        return RenderRecord(
            phase=phase,
            backend=str(value.get("backend") or "gmi"),  # 0.1.0 bought on GMI's queue only
            model=_text(value.get("model")),
            fingerprint=_text(value.get("fingerprint")),
            attempted_at=float(value.get("attempted_at") or 0.0),
            request_id=_text(value.get("request_id")),
            generation_id=_text(value.get("generation_id")),
            facts=facts,
            version=int(version),
        )
    except (ValueError, RecordVersionError) as exc:
        raise RecordVersionError(
            f"The durable record of this task instance's render (task_state_store[{STATE_KEY!r}], version "
            f"{version}) cannot be read: {exc}. Nothing was polled or bought; delete the record (or clear the "
            "task with a new try) only after checking the service's console for a render this task paid for."
        ) from None


def serialise_record(record: RenderRecord) -> dict[str, Any]:
    """The JSON value stored under :data:`STATE_KEY` (always the current version)."""
    value: dict[str, Any] = {
        "version": RECORD_VERSION,
        "backend": record.backend,
        "model": record.model,
        "fingerprint": record.fingerprint,
        "phase": record.phase.value,
        "attempted_at": record.attempted_at,
        "request_id": record.request_id,
        "generation_id": record.generation_id,
    }
    if record.facts is not None:
        value["render"] = record.facts.to_json()
    return value


def _text(value: Any) -> str | None:
    return str(value) if value is not None and str(value) else None


def fingerprint(spec: RenderSpec, backend: str) -> str:
    """Stable hash of what is sent, so a retry with different parameters never re-attaches."""
    sent = {"backend": backend, "model": spec.MODEL_ID, "payload": spec.fingerprint_payload()}
    return _digest(sent)


def legacy_fingerprint(spec: RenderSpec) -> str | None:
    """The fingerprint 0.1.0 wrote for the same parameters (generate only; ``None`` for other models)."""
    dump = getattr(spec, "legacy_dump", None)
    return _digest(dump()) if dump is not None else None


def record_matches(record: RenderRecord, spec: RenderSpec, backend: str) -> bool:
    """Whether a stored record is for this very render (same backend, model and payload)."""
    if record.version == 1:  # written by 0.1.0: GMI generate only
        return backend == "gmi" and record.fingerprint == legacy_fingerprint(spec)
    same = record.backend == backend and record.model == spec.MODEL_ID
    return same and record.fingerprint == fingerprint(spec, backend)


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class RecordStore:
    """Where a task instance's record lives: ``task_state_store`` on Airflow 3.3, a Variable per task instance
    before it (:class:`~airflow_provider_luma.version_compat.VariableStateStore`), memory when the context has
    neither (a plain dict in a unit test)."""

    def __init__(self, context: Any) -> None:
        self._store = context_get(context, "task_state_store")
        if self._store is None and not AIRFLOW_V_3_3_PLUS:
            ti = context_get(context, "ti")
            self._store = VariableStateStore(ti) if getattr(ti, "dag_id", None) else None
        self._memory: dict[str, Any] = {}

    def get(self) -> RenderRecord | None:
        """The stored record, or None.

        :raises RecordVersionError: see :func:`parse_record`.
        """
        value = self._store.get(STATE_KEY) if self._store is not None else self._memory.get(STATE_KEY)
        return parse_record(value)

    def put(self, record: RenderRecord) -> None:
        """Write ``record`` in the current version."""
        value = serialise_record(record)
        if self._store is not None:
            self._store.set(STATE_KEY, value, retention=STATE_RETENTION)
        else:
            self._memory[STATE_KEY] = value
