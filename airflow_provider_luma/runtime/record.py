"""The durable record of a render in Airflow 3.3's ``task_state_store``, and small helpers shared by the workers.

The key (:data:`STATE_KEY`) and the record's field names are a compatibility contract: renaming them breaks
in-flight retries. The record is **versioned**:

* version 2 (this release): ``version``, ``backend``, ``model``, ``phase``, ``fingerprint``, ``attempted_at``,
  ``request_id``, ``generation_id``. The fingerprint hashes ``{backend, model, payload as sent}`` (inline media as
  its digest), so adding an optional parameter in a later release changes nothing that was already sent and
  therefore not the fingerprint.
* version 1 (0.1.0, no ``version`` field): generate only; its fingerprint hashed every field of the request
  *with defaults*. :func:`record_matches` still recognises it, so an upgrade in the middle of a render re-attaches
  instead of buying it again (``tests/fixtures/v0_1_state.json`` holds records written by 0.1.0).

The phases are described in :mod:`airflow_provider_luma._flow`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk.exceptions import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from airflow_provider_luma.core.specs.base import RenderSpec

STATE_KEY: Final = "luma_render"  # stable across releases
STATE_RETENTION: Final = timedelta(days=30)
RECORD_VERSION: Final = 2


def fingerprint(spec: RenderSpec, backend: str) -> str:
    """Stable hash of what is sent, so a retry with different parameters never re-attaches."""
    sent = {"backend": backend, "model": spec.MODEL_ID, "payload": spec.fingerprint_payload()}
    return _digest(sent)


def legacy_fingerprint(spec: RenderSpec) -> str | None:
    """The fingerprint 0.1.0 wrote for the same parameters (generate only; ``None`` for other models)."""
    dump = getattr(spec, "legacy_dump", None)
    return _digest(dump()) if dump is not None else None


def record_matches(record: dict[str, Any], spec: RenderSpec, backend: str) -> bool:
    """Whether a stored record is for this very render (same backend, model and payload)."""
    if record.get("version") is None:  # written by 0.1.0: GMI generate only
        return backend == "gmi" and record.get("fingerprint") == legacy_fingerprint(spec)
    return (
        record.get("backend") == backend
        and record.get("model") == spec.MODEL_ID
        and record.get("fingerprint") == fingerprint(spec, backend)
    )


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def context_get(context: Any, key: str) -> Any:
    """``context[key]``, or None when the context (a plain dict in tests, ``dag.test``) does not have it."""
    try:
        return context[key]
    except (KeyError, TypeError):
        return None


def fail_or_retry(exc: BaseException, message: str | None = None) -> AirflowException:
    """The Airflow exception for a Luma error: permanent ones skip the task's remaining retries."""
    text = message or str(exc)
    return AirflowException(text) if getattr(exc, "retryable", False) else AirflowFailException(text)


class StateStore:
    """``task_state_store`` with a tolerant fallback (``dag.test`` and older runtimes may not offer one).

    :param spec: the render this task instance is about; :meth:`set` stamps every record with its model.
    :param backend: the wire format it is bought on.
    """

    def __init__(self, context: Any, spec: RenderSpec | None = None, backend: str = "gmi") -> None:
        try:
            self._store = context["task_state_store"]
        except (KeyError, TypeError):
            self._store = None
        self._memory: dict[str, Any] = {}
        self.spec, self.backend = spec, backend

    def get(self) -> dict[str, Any] | None:
        """The stored record, or None."""
        value = self._store.get(STATE_KEY) if self._store is not None else self._memory.get(STATE_KEY)
        return value if isinstance(value, dict) else None

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` is for this task's render (see :func:`record_matches`)."""
        return self.spec is not None and record_matches(record, self.spec, self.backend)

    def set(self, **fields: Any) -> None:
        """Write the record: ``phase``, ``attempted_at``, ``request_id``, ``generation_id``; the version,
        backend, model and fingerprint are added here."""
        record: dict[str, Any] = {"version": RECORD_VERSION, "backend": self.backend}
        if self.spec is not None:
            record.update(model=self.spec.MODEL_ID, fingerprint=fingerprint(self.spec, self.backend))
        record.update(fields)
        if self._store is not None:
            self._store.set(STATE_KEY, record, retention=STATE_RETENTION)
        else:
            self._memory[STATE_KEY] = record
