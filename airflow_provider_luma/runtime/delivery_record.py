"""The delivery record: what a Luma task bought and where it stored it, kept in the task's rendered template fields.

The gallery (:mod:`airflow_provider_luma.plugins`) opens a clip's file, or mints a fresh presigned URL for its
request, from this record alone. XComs and ``task_state_store`` rows are writable through the public REST API by
any account with the "User" role, so they cannot say which file the api-server opens or which request it
spends the connection's key on. Rendered template fields (RTIF) are written only by the worker through the
Execution API: an operator with ``overwrite_rtif_after_execution = True`` has them re-sent after every execution
(a deferral included), so setting :data:`FIELD` on the operator before it returns or defers is what lands.

The record holds ids and storage URIs only. The task runner redacts rendered fields with the secrets masker, and
presigned URLs are registered secrets (:func:`airflow_provider_luma.runtime.delivery.mask_urls`): a URL here would
arrive as ``***``, and it would be a capability shown in the UI besides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

FIELD: Final = "luma_delivery"
"""The template field (an attribute of the render and download operators, default ``None``)."""

KEYS: Final = ("request_id", "generation_id", "model", "backend", "video_path", "exr_path")
"""The record's keys; every value is a string or ``None``."""


def _text(value: Any) -> str | None:
    return str(value) if value is not None and str(value) else None


def build(values: Mapping[str, Any]) -> dict[str, str | None]:
    """The record from a task result (or any mapping with some of :data:`KEYS`); other keys are dropped, so a
    presigned ``video_url`` never gets in."""
    return {key: _text(values.get(key)) for key in KEYS}


def record(operator: Any, values: Mapping[str, Any]) -> None:
    """Set the operator's record from ``values`` (a result: ``request_id``, ``generation_id``, ``model``,
    ``backend``, ``video_path``, ``exr_path``). A no-op for operators without the field (a subclass of a
    release before it, or a test double)."""
    if operator is not None and hasattr(operator, FIELD):
        setattr(operator, FIELD, build(values))


def record_request(operator: Any, request_id: str | None, model: str | None, backend: str | None) -> None:
    """Record a request that is ours but not finished (right after submit, before deferring or returning with
    ``wait_for_completion=False``): nothing is stored yet, so both paths are ``None``.

    Keeps the generation id and paths when the record already names the same request (a resumed task)."""
    if operator is None or not hasattr(operator, FIELD) or not request_id:
        return
    current = getattr(operator, FIELD)
    if isinstance(current, Mapping) and current.get("request_id") == request_id:
        return
    record(operator, {"request_id": request_id, "model": model, "backend": backend})
