"""A render's plan: every run option and the validated request, as frozen values the operator builds once.

The operator builds them in one place (:meth:`~airflow_provider_luma.operators.LumaRenderOperator.run_options`
and ``render_plan``) from its rendered parameters; the runtime reads nothing else from it. :class:`RunOptions` is
cheap (no request, no XCom, no file) and is all a resume needs besides the durable record; :class:`RenderPlan` adds
the validated request, which a fresh start builds from the parameters, the upstream tasks' XComs
(:func:`upstream_source_facts`) and a source video's bytes, and a resume rebuilds from the record
(:func:`plan_from_record`) without any of those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_luma.core.errors import LumaValidationError
from airflow_provider_luma.core.specs.base import RenderSpec, SourceFacts
from airflow_provider_luma.runtime.task import context_get

if TYPE_CHECKING:
    from airflow_provider_luma.runtime.record import RenderRecord
    from airflow_provider_luma.runtime.storage import OutputSpec


T = TypeVar("T")


def validated(build: Callable[[], T]) -> T:
    """What ``build`` makes (a plan, run options, request parameters); a broken rule fails the task without
    retries (a retry would break it again)."""
    try:
        return build()
    except LumaValidationError as exc:
        # Not logged here: Airflow logs the exception with its message, and a failure should read once.
        raise AirflowFailException(str(exc)) from None


@dataclass(frozen=True)
class RunOptions:
    """How one render task runs, independent of what it renders.

    :param task_id: the task's id (placeholders of ``output_path``, messages).
    :param model_id: the model the task renders.
    :param conn_id: the Airflow connection (type ``luma``).
    :param deferrable: wait in the triggerer (else poll in the worker).
    :param wait_for_completion: ``False`` returns right after the request is accepted.
    :param reuse_existing: return this task instance's earlier succeeded render instead of buying a new one.
    :param resubmit_unknown: submit again after a create request whose answer was lost.
    :param poll_interval: seconds between status checks.
    :param deadline_seconds: the render's deadline from submit: ``timeout``, or ``execution_timeout`` if shorter
        (Airflow 3.3 does not enforce that one while deferred).
    :param output: the parsed ``output_path``, or None.
    :param asset_alias: the alias stored files are announced through, or None.
    :param max_cost: the cap on this render in USD, or None.
    :param max_run_cost: the cap on the whole DAG run's renders in USD, or None.
    :param may_end_in_trigger: nothing of the task's own finish needs a worker, so a success may end the task in
        the triggerer (:mod:`airflow_provider_luma.runtime.end_in_trigger`).
    :param multiple_outputs: the task pushes each result key as its own XCom.
    """

    task_id: str
    model_id: str
    conn_id: str
    deferrable: bool
    wait_for_completion: bool
    reuse_existing: bool
    resubmit_unknown: bool
    poll_interval: float
    deadline_seconds: float
    output: OutputSpec | None
    asset_alias: str | None
    max_cost: Decimal | None
    max_run_cost: Decimal | None
    may_end_in_trigger: bool = False
    multiple_outputs: bool = True


@dataclass(frozen=True)
class RenderPlan:
    """Everything the worker flow needs to know about one render, validated.

    :param options: how the task runs.
    :param spec: the strict request.
    :param source: what is known about the source video (ratio, duration), for rules, price and the result.
    """

    options: RunOptions
    spec: RenderSpec
    source: SourceFacts


def check_unique_output(output: OutputSpec | None, context: Any) -> None:
    """In a mapped task every element must write its own file.

    :raises LumaValidationError: naming ``output_path`` when the elements would overwrite each other.
    """
    map_index = getattr(context_get(context, "ti"), "map_index", -1)
    mapped = isinstance(map_index, int) and map_index >= 0
    if output is not None and mapped and not output.unique_per_render:
        raise LumaValidationError(
            [
                f"output_path: got {output.raw!r}; in a mapped task every element would write the same "
                "file: put {generation_id}, {request_id} or {map_index} in it, or end it with / (a folder)"
            ]
        )


def plan_from_record(options: RunOptions, record: RenderRecord, params: dict[str, Any]) -> RenderPlan | None:
    """The plan of a resubmission: the task's rendered ``params`` validated against the source facts the record
    keeps (no upstream XCom is read), an inline source video reopened from the record's name, size and digest (not
    read or hashed; see :func:`airflow_provider_luma.runtime.source_video.reopen_source_video`).

    The video is reopened only when the task still names that very file, so a record written through the REST API
    cannot make the worker send a file the task does not name. ``None`` when the record has no facts (0.1, 0.2) or
    is for another model or file: the plan is then built afresh.

    :raises LumaValidationError: a rule the parameters break, or the file changed or went away.
    """
    from airflow_provider_luma.core.specs import SPECS

    facts = record.facts
    if facts is None or record.model != options.model_id or options.model_id not in SPECS:
        return None
    given = dict(params)
    if facts.source_video is not None:
        from airflow_provider_luma.runtime.source_video import reopen_source_video

        if str(given.get("source_video") or "").strip() != facts.source_video.get("label"):
            return None
        given["source_video"] = reopen_source_video(facts.source_video)
    source = SourceFacts(
        aspect_ratio=facts.source.get("aspect_ratio"), duration_seconds=facts.source.get("duration_seconds")
    )
    spec = SPECS[options.model_id].validate_params(given, source)
    return RenderPlan(options, spec, spec.known_source(source))


def upstream_source_facts(context: Any, generation_id: Any) -> SourceFacts:
    """Ratio and duration of ``generation_id`` when an upstream Luma task of this run produced it (else unknown).

    Reads the upstream tasks' ``generation_id`` / ``aspect_ratio`` / ``duration`` XComs (all map indexes); only a
    fresh start does (a resume reads the durable record).
    """
    ti = context_get(context, "ti")
    task = context_get(context, "task")
    if not generation_id or not isinstance(generation_id, str) or ti is None or task is None:
        return SourceFacts()
    for task_id in sorted(getattr(task, "upstream_task_ids", ()) or ()):
        try:
            ids = _as_list(ti.xcom_pull(task_ids=task_id, key="generation_id"))
            if generation_id not in ids:
                continue
            index = ids.index(generation_id)
            ratios = _as_list(ti.xcom_pull(task_ids=task_id, key="aspect_ratio"))
            durations = _as_list(ti.xcom_pull(task_ids=task_id, key="duration"))
        except Exception:  # noqa: BLE001 - facts are a bonus; a rule that needs them is then skipped
            return SourceFacts()
        ratio = ratios[index] if index < len(ratios) else None
        duration = durations[index] if index < len(durations) else None
        return SourceFacts(aspect_ratio=ratio if isinstance(ratio, str) else None, duration_seconds=_seconds(duration))
    return SourceFacts()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes | dict):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _seconds(duration: Any) -> float | None:
    if not isinstance(duration, str) or not duration.endswith("s"):
        return None
    try:
        return float(duration[:-1])
    except ValueError:
        return None
