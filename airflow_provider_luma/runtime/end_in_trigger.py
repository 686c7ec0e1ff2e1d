"""Ending a render in the triggerer: when a finished render needs no worker, and the XComs the trigger pushes then.

A deferred task normally resumes on a worker to turn the trigger's event into its result. For a render without
``output_path`` that resume does nothing the triggerer cannot do: fetch the URLs (the trigger's last poll has them)
and push the result's XComs, one Execution-API round trip per key. Airflow 3.3 lets a trigger end the task itself
(``airflow.triggers.base.TaskSuccessEvent``: the triggerer sets the task instance's state), so the worker slot is
held only to submit. The trigger writes the XComs itself, through the triggerer's Execution-API channel
(:func:`push_xcoms`), as a worker's task runner would, and ends the task with an XCom-less event: Airflow 3.3.2
stores the event's own ``xcoms`` JSON-encoded a second time, so downstream tasks would read them as strings.

What only a worker does, and why each one keeps the resume (:func:`task_may_end_here` or :func:`finish_result`
say no):

* storing files (``output_path``), and the Asset events of stored files or of the task's own ``outlets``;
* the durable record's ``succeeded`` phase (the triggerer cannot write ``task_state_store``): a later try finds
  the render ``submitted``, sees it succeeded and finishes it without a new create request, which is what
  ``reuse_existing=True`` does anyway; with ``reuse_existing=False`` it would not know to render again;
* listeners (OpenLineage's ``on_complete``, a plugin's ``on_task_instance_success``) and ``on_success_callback``:
  they run in the process where the task succeeds (a callback would move to the dag processor);
* the mapped length of the returned value, which Airflow's task runner records for mapped downstream tasks.

Everything else a user sees is the same: the same XCom keys and values (``task.output["generation_id"]``, the
return value), the "Luma video" link (pushed when the task deferred), the delivery record (written then, with the
request id the gallery mints URLs for). A runner that resumes the task even so (``dag.test()`` runs the trigger
inline and resumes with the event's payload, the state name) finishes it from the durable record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_luma.runtime.record import RenderRecord

__all__ = [
    "SUCCESS_PAYLOAD", "finish_result", "finished_xcoms", "has_listeners", "push_xcoms", "resumed_event",
    "task_may_end_here",
]  # fmt: skip

SUCCESS_PAYLOAD: Final = "success"
"""The payload of a ``TaskSuccessEvent``: what a runner that resumes the task anyway hands ``execute_complete``."""

_FROM_SERVICE: Final = ("generation_id", "request_id", "video_url", "exr_url")


def finish_result(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """``result`` (the task's result before the service's ids and URLs are known) when the render may end in the
    triggerer, else ``None``. The task's own rules (:func:`task_may_end_here`) were checked when its run options
    were built; what is left is the process's: no listener may be waiting for the task's success."""
    if has_listeners():
        return None
    return {key: value for key, value in result.items() if key not in _FROM_SERVICE}


def task_may_end_here(
    *,
    has_output: bool,
    reuse_existing: bool,
    do_xcom_push: bool,
    has_outlets: bool,
    has_success_callback: bool,
    has_mapped_dependants: bool,
) -> bool:
    """Whether nothing of a task's finish needs a worker (see the module docstring for each rule); the operator
    answers these from its own attributes."""
    return (
        not has_output
        and reuse_existing
        and do_xcom_push
        and not has_outlets
        and not has_success_callback
        and not has_mapped_dependants
    )


def resumed_event(event: Any, record: RenderRecord | None) -> Any:
    """The event a resume reads: a ``TaskSuccessEvent``'s bare payload (a runner that resumes the task anyway,
    such as ``dag.test()``) becomes the success of the request the durable record names; any other event is
    returned as it is. Without a recorded request the payload stays unusable (and is reported so)."""
    if event != SUCCESS_PAYLOAD or record is None or not record.request_id:
        return event
    return {"status": "success", "request_id": record.request_id, "generation_id": record.generation_id}


def finished_xcoms(base: Mapping[str, Any], payload: Mapping[str, Any], *, keys: bool) -> dict[str, Any]:
    """The XComs a resumed worker would push for a render without ``output_path``: ``return_value`` (the result),
    and, with ``keys`` (``multiple_outputs``), each of its keys."""
    result = {**base, **{key: payload.get(key) for key in _FROM_SERVICE}}
    xcoms: dict[str, Any] = dict(result) if keys else {}
    xcoms["return_value"] = result
    return xcoms


def push_xcoms(ti: Any, xcoms: Mapping[str, Any]) -> None:
    """Write ``xcoms`` for the trigger's task instance ``ti`` as a worker's task runner does (the configured XCom
    backend, through the process's Execution-API channel: the triggerer's, in a trigger). Blocking: call it in a
    thread. Raises when there is no task instance or no channel (a trigger run outside a triggerer)."""
    from airflow.sdk.execution_time.xcom import XCom

    if ti is None:
        raise RuntimeError("the trigger has no task instance")
    for key, value in xcoms.items():
        XCom.set(key, value, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index)


def has_listeners() -> bool:
    """Whether a listener (OpenLineage's, a plugin's) is registered in this process."""
    from airflow.providers.common.compat.sdk import get_listener_manager

    return bool(get_listener_manager().has_listeners)
