"""The durable record of a render in Airflow 3.3's ``task_state_store``, and small helpers shared by the workers.

The key (:data:`STATE_KEY`) and the record's field names (``phase``, ``fingerprint``, ``attempted_at``,
``request_id``, ``generation_id``) are a compatibility contract: renaming them breaks in-flight retries. The
phases are described in :mod:`airflow_provider_luma._render`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from airflow_provider_luma.models import VideoRequest

STATE_KEY = "luma_render"  # stable across releases
STATE_RETENTION = timedelta(days=30)


def fingerprint(request: VideoRequest) -> str:
    """Stable hash of what would be sent, so a retry with different parameters never re-attaches."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
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
    """``task_state_store`` with a tolerant fallback (``dag.test`` and older runtimes may not offer one)."""

    def __init__(self, context: Any) -> None:
        try:
            self._store = context["task_state_store"]
        except (KeyError, TypeError):
            self._store = None
        self._memory: dict[str, Any] = {}

    def get(self) -> dict[str, Any] | None:
        value = self._store.get(STATE_KEY) if self._store is not None else self._memory.get(STATE_KEY)
        return value if isinstance(value, dict) else None

    def set(self, **record: Any) -> None:
        if self._store is not None:
            self._store.set(STATE_KEY, record, retention=STATE_RETENTION)
        else:
            self._memory[STATE_KEY] = record
