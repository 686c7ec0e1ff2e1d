"""Smoke DAG for the e2e cluster: a deferrable core sensor, then a task with ``multiple_outputs``."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import dag, task


@dag(dag_id="e2e_smoke", schedule=None, catchup=False, tags=["e2e"])
def e2e_smoke() -> None:
    # The target is rendered when the task starts, so the sensor always defers (for ``wait_seconds`` from the
    # run conf, default 2) and then resumes on a worker (``execute_complete``). TimeDeltaSensor counts from
    # ``run_after`` instead and may not defer at all when the worker picks the task up late.
    wait = DateTimeSensorAsync(
        task_id="wait",
        target_time=(
            "{{ (ti.start_date + macros.timedelta(seconds=dag_run.conf.get('wait_seconds', 2))).isoformat() }}"
        ),
    )

    @task(multiple_outputs=True)
    def summarize(**context: Any) -> dict[str, Any]:
        return {"answer": 42, "run_id": context["run_id"], "nested": {"ok": True}}

    wait >> summarize()


e2e_smoke()
