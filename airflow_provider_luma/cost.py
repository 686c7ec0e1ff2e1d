"""What a DAG run's Luma renders are estimated to cost, summed from their XCom (the public entry point).

Use :func:`luma_cost_report` as the callable of a teardown task at the end of a DAG::

    from airflow.providers.standard.operators.python import PythonOperator
    from airflow_provider_luma.cost import luma_cost_report

    report = PythonOperator(task_id="cost_report", python_callable=luma_cost_report).as_teardown()
    [render, extend, ...] >> report

A teardown runs once its upstream tasks are done, whatever their outcome, and is left out of the run's state
(Airflow 3.3.2), so a run whose render failed ends ``failed`` while the report still counts what was bought. A
last task with ``trigger_rule="all_done"`` would run too, but as a leaf its success would make such a run
``success``.

Every Luma render task pushes ``estimated_cost_usd`` (the seed price table's estimate, see
:mod:`airflow_provider_luma.core.pricing`) as soon as the service accepted its render, so a render paid for by a task
that later failed still counts; a task stopped before submitting pushes nothing. A render reused after a clear
(no new spend) counts too, since it is part of what the run's clips cost. The service bills from its own meter. The
scan and the sum live with the run budget in :mod:`airflow_provider_luma.runtime.money`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from airflow_provider_luma.runtime.money import COST_KEY, run_costs, sum_costs

__all__ = ["COST_KEY", "luma_cost_report", "summarize_costs"]


def summarize_costs(costs_by_task: Mapping[str, Iterable[Any]]) -> dict[str, Any]:
    """Sum per-task costs (one value per map index; ``None`` entries are skipped) into a report dict.

    Returns ``{"total_estimated_cost_usd": float, "renders": int, "by_task": {task_id: float},
    "unpriced_renders": int, "unpriced_tasks": [task_id, ...]}`` (JSON-safe, so it can be the task's XCom). A
    ``None`` value is a render whose price is unknown (edit and reframe, unless the connection has prices): it is
    counted apart, never as $0.
    """
    by_task: dict[str, Decimal] = {}
    renders, unpriced, unpriced_tasks = 0, 0, set()
    for task_id, values in costs_by_task.items():
        spent, priced, unknown = sum_costs(values)
        if priced:
            by_task[task_id] = spent
        if unknown:
            unpriced_tasks.add(task_id)
        renders, unpriced = renders + priced, unpriced + unknown
    total = sum(by_task.values(), Decimal(0))
    return {
        "total_estimated_cost_usd": float(total.quantize(Decimal("0.01"))),
        "renders": renders,
        "by_task": {task_id: float(cost.quantize(Decimal("0.01"))) for task_id, cost in sorted(by_task.items())},
        "unpriced_renders": unpriced,
        "unpriced_tasks": sorted(unpriced_tasks),
    }


def luma_cost_report(**context: Any) -> dict[str, Any]:
    """Task callable: read ``estimated_cost_usd`` of every other task in this DAG run (all map indexes), log a
    per-task table and return the summary of :func:`summarize_costs`."""
    import logging

    log = logging.getLogger(__name__)
    ti = context["ti"]
    costs = run_costs(ti, context["dag"], skip_task=ti.task_id)
    report = summarize_costs(costs)
    for task_id, cost in report["by_task"].items():
        log.info("  %-40s $%8.2f  (%d render(s))", task_id, cost, len([v for v in costs[task_id] if v is not None]))
    for task_id in report["unpriced_tasks"]:
        log.info("  %-40s  unknown  (no price for its model: add one to the connection's 'prices' extra)", task_id)
    log.info(
        "Luma estimated cost of run %s: $%.2f for %d render(s)",
        ti.run_id,
        report["total_estimated_cost_usd"],
        report["renders"],
    )
    return report
