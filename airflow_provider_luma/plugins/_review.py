"""The review of a clip in the gallery (``review=LumaReview(...)``): every take with its decision, who and when.

The takes come from the task instance's review state (``task_state_store`` key ``luma_review`` on Airflow 3.3, a
``luma_review.<digest>`` Variable before), written by the worker. A User-role account can write those rows through
the REST API, so they are **display data only**: shown as text, never used to open a file or name a request (the
player still plays what the worker-written delivery record names, see :mod:`._media`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

REVIEW_KEY: Final = "luma_review"  # runtime.review.REVIEW_KEY (not imported: the runtime imports Airflow's SDK)
REVIEWING_STATES: Final = frozenset({"awaiting_input", "deferred"})
"""Task-instance states in which a finished take may be waiting for its review (3.3 parks the task in
``awaiting_input``; 3.1-3.2 defer it to the HITL trigger)."""
MAX_TEXT: Final = 300
"""Prompts and names are cut to this many characters for display."""


def awaiting_review(state: str | None, record: Mapping[str, Any]) -> bool:
    """Whether a task instance holds a finished take awaiting review: it waits for input (or is deferred) and its
    worker-written delivery record names a generation (recorded only once a render succeeded)."""
    return state in REVIEWING_STATES and bool(record.get("generation_id"))


def _cut(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= MAX_TEXT else f"{text[: MAX_TEXT - 1]}…"


def summarize(value: Any) -> list[dict[str, Any]]:
    """The takes of a stored review state, for display (``[]`` for anything unreadable)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, Mapping) or value.get("version") != 1 or not isinstance(value.get("takes"), list):
        return []
    takes: list[dict[str, Any]] = []
    for raw in value["takes"]:
        if not isinstance(raw, Mapping):
            return []
        result: Mapping[str, Any] = raw["result"] if isinstance(raw.get("result"), Mapping) else {}
        edits: Mapping[str, Any] = raw["edits"] if isinstance(raw.get("edits"), Mapping) else {}
        takes.append(
            {
                "number": raw.get("number") if isinstance(raw.get("number"), int) else len(takes) + 1,
                "decision": _cut(raw.get("decision")) or ("rendering" if not result else "awaiting review"),
                "by": _cut(raw.get("by")),
                "at": _cut(raw.get("at")),
                "generation_id": _cut(result.get("generation_id")),
                "estimated_cost_usd": result.get("estimated_cost_usd")
                if isinstance(result.get("estimated_cost_usd"), int | float)
                else None,
                "edits": {str(k): _cut(v) for k, v in edits.items()},
                "note": _cut(raw.get("note")),
            }
        )
    return takes


def review_takes(
    session: Session, dag_id: str, run_id: str, task: tuple[str, int] | None = None
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """``{(task_id, map_index): takes}`` of the run's reviewed task instances (of one, if ``task`` is given)."""
    from airflow_provider_luma.version_compat import AIRFLOW_V_3_3_PLUS

    if not AIRFLOW_V_3_3_PLUS:
        return _variable_takes(dag_id, run_id, task) if task is not None else {}
    from airflow.models.task_state_store import TaskStateStoreModel as Row

    query = select(Row.task_id, Row.map_index, Row.value).where(
        Row.dag_id == dag_id, Row.run_id == run_id, Row.key == REVIEW_KEY
    )
    if task is not None:
        query = query.where(Row.task_id == task[0], Row.map_index == task[1])
    found: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in session.execute(query):
        takes = summarize(row.value)
        if takes:
            found[(row.task_id, row.map_index)] = takes
    return found


def _variable_takes(dag_id: str, run_id: str, task: tuple[str, int]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Before 3.3 the state is a Variable named after a digest of the task instance (one task instance only)."""
    from airflow.models.variable import Variable

    from airflow_provider_luma.version_compat import variable_key

    key = variable_key(dag_id, task[0], run_id, task[1], prefix="luma_review.")  # review_loop.REVIEW_VARIABLE_PREFIX
    raw = Variable.get(key, default_var=None)
    try:
        stored = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return {}
    takes = summarize(stored.get(REVIEW_KEY)) if isinstance(stored, Mapping) else []
    return {task: takes} if takes else {}
