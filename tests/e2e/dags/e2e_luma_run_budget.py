"""Twenty mapped 540p renders ($0.15 each) under a run budget of ten renders, in the default pool."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

PROMPTS = [f"run budget e2e: shot {i:02d}" for i in range(20)]

with DAG(
    dag_id="e2e_luma_run_budget",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=20,  # the 20 elements may all be ready to submit at once
    default_args={"max_run_cost_usd": 1.50, "retries": 0},
    tags=["e2e"],
):
    LumaGenerateVideoOperator.partial(
        task_id="render", resolution="540p", poll_interval=float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10"))
    ).expand(prompt=PROMPTS)
