"""The resumptions of a render task: they start from the durable record, not from the task's parameters.

The record (:mod:`.record`, version 3) holds the facts the finish needs and the source's facts and digest, so a
resume neither pulls upstream XComs (the source's facts) nor reads or hashes a source video: ``execute_complete``
finishes from the record alone, ``execute_after_rate_limit`` sends the request again with the recorded source facts
and digest. A record of 0.1 or 0.2 has no facts: its resume builds the plan from the task once more, as those
releases did, and the record gains the facts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_luma.runtime.finish import RenderFinish, worker_hook
from airflow_provider_luma.runtime.flow import RenderRun
from airflow_provider_luma.runtime.plan import plan_from_record, validated
from airflow_provider_luma.runtime.record import RecordStore

if TYPE_CHECKING:
    from airflow_provider_luma.runtime.plan import RenderPlan, RunOptions
    from airflow_provider_luma.runtime.task import RenderTask


def execute_after_rate_limit(
    task: RenderTask,
    context: Any,
    options: RunOptions,
    params: dict[str, Any],
    waits: int,
    build_plan: Callable[[], RenderPlan],
) -> dict[str, Any]:
    """After a 429 was waited out in the triggerer: submit the request again (or re-attach, if a try already
    did), with the source facts and the source video's digest from the record (:func:`plan_from_record`).

    :param params: the task's rendered request parameters.
    :param build_plan: builds the plan from the task; called only when the record cannot give one.
    """
    record = RecordStore(context).get()
    plan = validated(lambda: plan_from_record(options, record, params)) if record is not None else None
    run = RenderRun(task, context, plan or validated(build_plan))
    run.waits_so_far = waits
    return run.start()


def execute_complete(
    task: RenderTask, context: Any, options: RunOptions, event: Any, build_plan: Callable[[], RenderPlan]
) -> dict[str, Any]:
    """After the trigger fired: finish the render the durable record names, from the record alone.

    :param build_plan: builds the plan from the task; called only for a record of 0.1 or 0.2 (or none).
    """
    from airflow_provider_luma.runtime.end_in_trigger import resumed_event

    store = RecordStore(context)
    record = store.get()
    event = resumed_event(event, record)
    if record is None or record.facts is None:
        return RenderRun(task, context, validated(build_plan)).complete(event)
    return RenderFinish(task, context, options, record, store, worker_hook(options.conn_id)).complete(event)
