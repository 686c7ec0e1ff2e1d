"""The download operator's run: look a finished render up by request id and store its files like a render does.

The operator hands over a frozen :class:`DownloadPlan` (built by ``LumaDownloadVideoOperator.download_plan``) and
itself as a :class:`~airflow_provider_luma.runtime.task.DeliveryTask`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_luma.core.errors import LumaError, LumaNotFoundError, LumaValidationError
from airflow_provider_luma.core.jobs import JobStatus
from airflow_provider_luma.core.specs.base import is_unset
from airflow_provider_luma.runtime import delivery, delivery_record
from airflow_provider_luma.runtime.storage import parse_output_path
from airflow_provider_luma.runtime.task import fail_or_retry

if TYPE_CHECKING:
    from airflow_provider_luma.runtime.storage import OutputSpec
    from airflow_provider_luma.runtime.task import DeliveryTask


@dataclass(frozen=True)
class DownloadPlan:
    """What one download task does, validated (see :meth:`checked`).

    :param task_id: the task's id (placeholders of ``output_path``).
    :param conn_id: the Airflow connection (type ``luma``).
    :param request_id: the finished render's request id.
    :param output: where its files go.
    :param generation_id: the generation the request must hold, or None.
    :param asset_alias: the alias stored files are announced through, or None.
    """

    task_id: str
    conn_id: str
    request_id: str
    output: OutputSpec
    generation_id: str | None
    asset_alias: str | None

    @classmethod
    def checked(
        cls,
        *,
        task_id: str,
        conn_id: str,
        request_id: Any,
        output_path: Any,
        generation_id: Any,
        asset_alias: str | None,
    ) -> DownloadPlan:
        """The plan from the task's rendered parameters.

        :raises LumaValidationError: naming ``request_id`` or ``output_path``.
        """
        rid = str(request_id or "").strip()
        if is_unset(rid) or "/" in rid:
            raise LumaValidationError(
                [
                    f"request_id: got {request_id!r}; pass the request id of a finished render, e.g. "
                    "upstream.output['request_id'] (renders are looked up by request id, not generation id)"
                ]
            )
        output = parse_output_path(output_path)
        if output is None:
            raise LumaValidationError(["output_path: required; a local path or an ObjectStoragePath URI"])
        expected = str(generation_id or "").strip()
        return cls(task_id, conn_id, rid, output, None if is_unset(expected) else expected, asset_alias)


def download_existing(task: DeliveryTask, context: Any, plan: DownloadPlan) -> dict[str, Any]:
    """Look the request up, download its files to the plan's ``output``, emit Asset events, set the link and the
    delivery record; returns the task's result."""
    from airflow_provider_luma.hooks import LumaHook

    request_id = plan.request_id
    hook = LumaHook(plan.conn_id)
    try:
        generation = hook.get_generation(request_id)
    except LumaNotFoundError as exc:
        raise AirflowFailException(f"Luma request {request_id} is unknown to the service: {exc}") from None
    except LumaError as exc:
        raise fail_or_retry(exc, f"Could not look up Luma request {request_id}: {exc}") from None
    if not generation.is_terminal:
        raise AirflowException(f"Luma request {request_id} is still {generation.status}; a retry will look again")
    if generation.status is not JobStatus.SUCCESS:
        raise AirflowFailException(f"Luma request {request_id} ended {generation.status}; there is nothing to store")
    expected = plan.generation_id
    if expected is not None and generation.generation_id and generation.generation_id != expected:
        raise AirflowFailException(
            f"generation_id: request {request_id} holds generation {generation.generation_id}, not {expected}"
        )
    delivery.mask_urls(generation.video_url, generation.exr_url)
    result: dict[str, Any] = {
        "generation_id": generation.generation_id,
        "request_id": request_id,
        "model": generation.model,
        "backend": generation.backend,
        "video_url": generation.video_url,
        "exr_url": generation.exr_url,
    }
    values = delivery.placeholder_values(context, plan.task_id, {**result, "mode": "download"})
    try:
        result = delivery.store_outputs(hook, result, plan.output, values, task.log)
    except LumaError as exc:
        raise fail_or_retry(exc) from None
    delivery.emit_assets(context, plan.asset_alias, result, None, task.log)
    task.luma_video_link = delivery.video_link(result)
    delivery_record.record(task, result)  # what the gallery serves (XComs are REST-writable)
    return result
