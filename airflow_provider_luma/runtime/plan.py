"""From an operator's (rendered) parameters to a validated :class:`RenderPlan`, before any request or spend.

Also the parse-time check: a DAG file whose literal values break a rule (``hdr=True, resolution="540p"``) fails to
import with the rule in the import error, so ``airflow dags list-import-errors`` or a DagBag test catches it.
Templated values are checked after templating, in :func:`build_plan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_luma._state import context_get
from airflow_provider_luma._storage import OutputSpec, parse_output_path
from airflow_provider_luma.core.errors import LumaValidationError
from airflow_provider_luma.core.pricing import parse_max_cost
from airflow_provider_luma.core.specs import SPECS
from airflow_provider_luma.core.specs.base import RenderSpec, SourceFacts

if TYPE_CHECKING:
    from airflow_provider_luma.operators._base import LumaRenderOperator

# Fields whose rules depend only on being set (or on their shape), not on their exact value: at parse time a
# templated value there is replaced by a stand-in so the other, literal fields can still be checked together.
_STAND_INS: Final[dict[str, str]] = {
    "prompt": "stand-in prompt",
    "start_frame_generation_id": "parse-time-generation-id",
    "end_frame_generation_id": "parse-time-generation-id",
    "source_generation_id": "parse-time-generation-id",
    "start_frame_url": "https://parse-time.invalid/frame.png",
    "end_frame_url": "https://parse-time.invalid/frame.png",
}


@dataclass(frozen=True)
class RenderPlan:
    """Everything the worker flow needs to know about one render, validated.

    :param spec: the strict request.
    :param source: what is known about the source video (ratio, duration), for rules, price and the result.
    :param output: the parsed ``output_path``, or None.
    :param max_cost: the cap in USD, or None.
    :param max_run_cost: the cap on the whole DAG run's renders in USD, or None.
    """

    spec: RenderSpec
    source: SourceFacts
    output: OutputSpec | None
    max_cost: Decimal | None
    max_run_cost: Decimal | None = None


def is_templated(value: Any) -> bool:
    """Whether a value is only known after templating (Jinja text or an XComArg / other resolvable object)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return value is not None and not isinstance(value, bool | int | float)


def check_literals(model_id: str, params: dict[str, Any], source: SourceFacts | None = None) -> None:
    """Validate the literal parameters at DAG-parse time (templated ones are checked after templating).

    :param source: what the upstream task's literals say about the source video (a reframe to the ratio it
        already has is refused at import), see :func:`airflow_provider_luma._preflight.source_facts_of`.

    :raises LumaValidationError: for a rule that the literal values break; it becomes the DAG's import error.
    """
    given = literal_params(params)
    if given is None:
        return  # a templated enum or flag: the combination can only be judged after templating
    SPECS[model_id].validate_params(given, source or SourceFacts())


def literal_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """``params`` as they stand before templating: literal values as given, a templated value whose rules depend
    only on its being set replaced by a stand-in; ``None`` when a templated value decides the request."""
    given: dict[str, Any] = {}
    for name, value in params.items():
        if name == "source_video" and value is not None:
            given[name] = _stand_in_video(str(value))  # the file itself is only read when the task runs
        elif not is_templated(value):
            given[name] = value
        elif name in _STAND_INS:
            given[name] = _STAND_INS[name]
        else:
            return None
    return given


def check_literal_output_path(value: Any) -> None:
    """A literal ``output_path``'s shape rules at DAG-parse time (absolute, placeholders, braces, characters).

    Whether its filesystem is installed and writable is checked when the task runs (resolving it would import
    the storage provider while the DAG file is parsed).

    :raises LumaValidationError: naming ``output_path`` and the rule.
    """
    if not is_templated(value):
        parse_output_path(value, resolve=False)


def _stand_in_video(label: str) -> Any:
    """A ``source_video`` stand-in for parse-time checks: never read."""
    from airflow_provider_luma.core.specs.source import VideoFile

    def unreadable() -> Any:
        raise OSError("a parse-time stand-in is never read")

    return VideoFile(label, "video/mp4", 1, "0" * 64, None, unreadable)


def build_plan(op: LumaRenderOperator, context: Any) -> RenderPlan:
    """Validate the rendered parameters, ``output_path``, ``max_cost_usd`` and ``max_run_cost_usd``.

    :raises LumaValidationError: one line per broken rule, each naming its field.
    """
    params = op.spec_params()
    source = upstream_source_facts(context, params.get("source_generation_id"))
    spec = op.build_spec(params, source)
    output = parse_output_path(op.output_path)
    max_cost = parse_max_cost(op.max_cost_usd)
    max_run_cost = parse_max_cost(op.max_run_cost_usd, "max_run_cost_usd")
    map_index = getattr(context_get(context, "ti"), "map_index", -1)
    mapped = isinstance(map_index, int) and map_index >= 0
    if output is not None and mapped and not output.unique_per_render:
        raise LumaValidationError(
            [
                f"output_path: got {output.raw!r}; in a mapped task every element would write the same "
                "file: put {generation_id}, {request_id} or {map_index} in it, or end it with / (a folder)"
            ]
        )
    known = spec.known_source(source)
    return RenderPlan(spec, known, output, max_cost, max_run_cost)


def upstream_source_facts(context: Any, generation_id: Any) -> SourceFacts:
    """Ratio and duration of ``generation_id`` when an upstream Luma task of this run produced it (else unknown).

    Reads the upstream tasks' ``generation_id`` / ``aspect_ratio`` / ``duration`` XComs (all map indexes).
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
