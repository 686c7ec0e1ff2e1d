"""Reading a run's Luma renders from the metadata database (api-server side).

Two queries per page load, whatever the number of renders: the run's task instances joined with their rendered
template fields and the run's state, then the XComs the gallery reads for display (:data:`~._model.XCOM_KEYS`).
The failure reason of a failed try comes from its task log (the message of the exception it failed with, see
:func:`last_error`), read once per try and cached. The video route reads only :func:`delivery_fields`: the task
instance's state and rendered template fields, which no REST user can write (XComs they can).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from airflow_provider_luma.plugins._model import XCOM_KEYS, TaskRow

_REASONS: dict[tuple[str, str, str, int, int], str | None] = {}
_REASONS_LOCK = threading.Lock()
MAX_REASONS_PER_REQUEST = 20
"""Failed tries whose log is read in one request (the rest show "see the task log")."""


def run_state(session: Session, dag_id: str, run_id: str) -> tuple[bool, str | None]:
    """Whether the run exists, and its state."""
    from airflow.models.dagrun import DagRun

    state = session.execute(
        select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    ).scalar_one_or_none()
    return state is not None, str(state) if state is not None else None


def task_rows(session: Session, dag_id: str, run_id: str) -> tuple[str | None, list[TaskRow]]:
    """The run's state and every task instance (mapped ones included), with its rendered fields."""
    from airflow.models.dagrun import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif
    from airflow.models.taskinstance import TaskInstance as TI

    query = (
        select(
            TI.task_id,
            TI.map_index,
            TI.state,
            TI.operator,
            TI.custom_operator_name,
            TI.try_number,
            TI.start_date,
            TI.end_date,
            Rtif.rendered_fields,
            DagRun.state.label("run_state"),
        )
        .join(DagRun, and_(DagRun.dag_id == TI.dag_id, DagRun.run_id == TI.run_id))
        .outerjoin(Rtif, _same_task_instance(Rtif, TI))
        .where(TI.dag_id == dag_id, TI.run_id == run_id)
        .order_by(TI.task_id, TI.map_index)
    )
    rows, state = [], None
    for r in session.execute(query):
        state = str(r.run_state) if r.run_state is not None else None
        rows.append(
            TaskRow(
                task_id=r.task_id,
                map_index=r.map_index,
                state=str(r.state) if r.state is not None else None,
                operator=r.operator,
                custom_operator_name=r.custom_operator_name,
                try_number=r.try_number or 0,
                start_date=r.start_date,
                end_date=r.end_date,
                rendered_fields=r.rendered_fields if isinstance(r.rendered_fields, dict) else None,
            )
        )
    return state, rows


def xcom_values(
    session: Session, dag_id: str, run_id: str, keys: Iterable[str] = XCOM_KEYS, task: tuple[str, int] | None = None
) -> dict[tuple[str, int], dict[str, Any]]:
    """``{(task_id, map_index): {key: value}}`` for the gallery's XCom keys (of one task instance if given)."""
    from airflow.models.xcom import XComModel

    query = select(XComModel.task_id, XComModel.map_index, XComModel.key, XComModel.value).where(
        XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key.in_(list(keys))
    )
    if task is not None:
        query = query.where(XComModel.task_id == task[0], XComModel.map_index == task[1])
    values: dict[tuple[str, int], dict[str, Any]] = {}
    for row in session.execute(query):
        values.setdefault((row.task_id, row.map_index), {})[row.key] = XComModel.deserialize_value(row)
    return values


def recent_runs(session: Session, dag_ids: set[str] | None, limit: int = 50) -> list[dict[str, Any]]:
    """Recent runs with at least one render (a ``model`` or ``estimated_cost_usd`` XCom), newest first."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel

    renders = (
        select(XComModel.dag_run_id, XComModel.task_id, XComModel.map_index)
        .where(XComModel.key.in_(["model", "estimated_cost_usd"]))
        .distinct()
        .subquery()
    )
    query = (
        select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.start_date, func.count().label("renders"))
        .join(renders, renders.c.dag_run_id == DagRun.id)
        .group_by(DagRun.id, DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.start_date)
        .order_by(DagRun.id.desc())
        .limit(limit)
    )
    if dag_ids is not None:
        query = query.where(DagRun.dag_id.in_(sorted(dag_ids)))
    return [
        {
            "dag_id": r.dag_id,
            "run_id": r.run_id,
            "state": str(r.state) if r.state is not None else None,
            "start_date": r.start_date.isoformat() if r.start_date else None,
            "renders": int(r.renders),
        }
        for r in session.execute(query)
    ]


def add_failure_reasons(session: Session, dag_id: str, run_id: str, rows: list[TaskRow]) -> None:
    """Set ``reason`` on failed rows from their try's log (:func:`last_error`; cached per try)."""
    budget = MAX_REASONS_PER_REQUEST
    for row in rows:
        if row.state not in ("failed", "up_for_retry"):
            continue
        key = (dag_id, run_id, row.task_id, row.map_index, row.try_number)
        with _REASONS_LOCK:
            cached = key in _REASONS
            row.reason = _REASONS.get(key)
        if cached:
            continue
        if budget <= 0:
            row.reason = "see the task log"
            continue
        budget -= 1
        row.reason = _read_reason(session, dag_id, run_id, row)
        with _REASONS_LOCK:
            _REASONS[key] = row.reason


def _read_reason(session: Session, dag_id: str, run_id: str, row: TaskRow) -> str | None:
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.log.log_reader import TaskLogReader

    ti = session.scalar(
        select(TI).where(
            TI.dag_id == dag_id, TI.run_id == run_id, TI.task_id == row.task_id, TI.map_index == row.map_index
        )
    )
    if ti is None:
        return None
    try:
        stream, _ = TaskLogReader().read_log_chunks(ti, row.try_number, {"end_of_log": False})
        lines = list(stream)
    except Exception:  # noqa: BLE001 - a missing or unreadable log leaves the reason empty
        return None
    return last_error(lines)


def last_error(lines: Iterable[Any]) -> str | None:
    """Why a try failed, from its structured task log: the message of the exception Airflow logged ("Task failed
    with exception", whose ``error_detail`` holds ``exc_type`` and ``exc_value``), else the last ``error``-level
    line. Airflow's and the provider's own exceptions carry a sentence for people, shown alone; any other
    exception type is named (``KeyError: 'x'`` says more than ``'x'``)."""
    exception, event_text = None, None
    for line in lines:
        record = line if isinstance(line, dict) else getattr(line, "model_dump", lambda: None)()
        if not isinstance(record, dict):
            continue
        if str(record.get("level") or "").lower() not in ("error", "critical"):
            continue
        exception = _exception_text(record.get("error_detail")) or exception
        event = record.get("event")
        if isinstance(event, str) and event.strip() and not event.startswith("Task failed with exception"):
            event_text = event.strip()
        elif isinstance(event, str) and event.strip() and event_text is None and exception is None:
            event_text = event.strip()
    found = exception or event_text
    return found[:2000] if found else None


def _exception_text(detail: Any) -> str | None:
    """``exc_value`` of the outermost exception of a structlog ``error_detail`` list (the one raised)."""
    if not isinstance(detail, list) or not detail or not isinstance(detail[0], dict):
        return None
    kind, value = str(detail[0].get("exc_type") or ""), str(detail[0].get("exc_value") or "").strip()
    if not value:
        return kind or None
    if kind.startswith(("Airflow", "Luma")) or not kind:
        return value
    return f"{kind}: {value}"


def _same_task_instance(rtif: Any, ti: Any) -> Any:
    """The join of a task instance with its rendered template fields."""
    return and_(
        rtif.dag_id == ti.dag_id, rtif.run_id == ti.run_id, rtif.task_id == ti.task_id, rtif.map_index == ti.map_index
    )


def delivery_fields(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int
) -> tuple[bool, str | None, dict[str, Any]]:
    """Whether the task instance exists, its state and its rendered template fields (``{}`` when none): all the
    video route trusts (one query)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif
    from airflow.models.taskinstance import TaskInstance as TI

    row = session.execute(
        select(TI.state, Rtif.rendered_fields)
        .outerjoin(Rtif, _same_task_instance(Rtif, TI))
        .where(TI.dag_id == dag_id, TI.run_id == run_id, TI.task_id == task_id, TI.map_index == map_index)
    ).one_or_none()
    if row is None:
        return False, None, {}
    fields = dict(row.rendered_fields) if isinstance(row.rendered_fields, dict) else {}
    return True, str(row.state) if row.state is not None else None, fields
