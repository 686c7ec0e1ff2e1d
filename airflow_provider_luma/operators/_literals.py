"""The DAG-parse-time check of an operator's literal values, before any templating.

A DAG file whose literal values break a rule (``hdr=True, resolution="540p"``) fails to import with the rule in the
import error, so ``airflow dags list-import-errors`` or a DagBag test catches it. Templated values are checked after
templating, when the task builds its plan (:meth:`~airflow_provider_luma.operators.LumaRenderOperator.render_plan`).
The run pre-flight (:mod:`._preflight`) reads the same literals.
"""

from __future__ import annotations

from typing import Any, Final

from airflow_provider_luma.core.specs import SPECS
from airflow_provider_luma.core.specs.base import SourceFacts
from airflow_provider_luma.runtime.storage import parse_output_path

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


def is_templated(value: Any) -> bool:
    """Whether a value is only known after templating (Jinja text or an XComArg / other resolvable object)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return value is not None and not isinstance(value, bool | int | float)


def check_literals(model_id: str, params: dict[str, Any], source: SourceFacts | None = None) -> None:
    """Validate the literal parameters at DAG-parse time (templated ones are checked after templating).

    :param source: what the upstream task's literals say about the source video (a reframe to the ratio it
        already has is refused at import), see :func:`airflow_provider_luma.operators._preflight.source_facts_of`.

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
