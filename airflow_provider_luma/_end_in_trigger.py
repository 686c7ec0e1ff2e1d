"""Ending a render in the triggerer: when a finished render needs no worker, and the XComs the trigger pushes then.

A deferred task normally resumes on a worker to turn the trigger's event into its result. For a render without
``output_path`` that resume does nothing the triggerer cannot do: fetch the URLs (the trigger's last poll has them)
and push the result's XComs, one Execution-API round trip per key. Airflow 3.3 lets a trigger end the task itself
(``airflow.triggers.base.TaskSuccessEvent``: the triggerer sets the task instance's state), so the worker slot is
held only to submit. The trigger writes the XComs itself, through the triggerer's Execution-API channel
(:func:`push_xcoms`), as a worker's task runner would, and ends the task with an XCom-less event: Airflow 3.3.2
stores the event's own ``xcoms`` JSON-encoded a second time, so downstream tasks would read them as strings.

What only a worker does, and why each one keeps the resume (:func:`finish_result` returns ``None``):

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

__all__ = ["SUCCESS_PAYLOAD", "finish_result", "finished_xcoms", "push_xcoms"]

SUCCESS_PAYLOAD: Final = "success"
"""The payload of a ``TaskSuccessEvent``: what a runner that resumes the task anyway hands ``execute_complete``."""

_FROM_SERVICE: Final = ("generation_id", "request_id", "video_url", "exr_url")


def finish_result(op: Any, result: Mapping[str, Any]) -> dict[str, Any] | None:
    """``result`` (the task's result before the service's ids and URLs are known) when the render may end in the
    triggerer, else ``None`` (see the module docstring for each rule)."""
    if op.output_path is not None or not op.reuse_existing or not op.do_xcom_push:
        return None
    if op.outlets or op.on_success_callback:
        return None
    if _has_mapped_dependants(op) or _has_listeners():
        return None
    return {key: value for key, value in result.items() if key not in _FROM_SERVICE}


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


def _has_mapped_dependants(op: Any) -> bool:
    try:
        return next(op.iter_mapped_dependants(), None) is not None
    except RuntimeError:  # not in a DAG (an operator executed directly): nothing downstream
        return False


def _has_listeners() -> bool:
    from airflow.sdk.listener import get_listener_manager

    return bool(get_listener_manager().has_listeners)
