"""Lineage e2e: an edit of a generation the service does not know, which the simulator refuses, so the task's
OpenLineage FAIL event must carry the error (and still name the source generation it was asked to edit)."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaEditVideoOperator

POLL_INTERVAL = float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10"))

with DAG(
    "luma_lineage_failure",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 0},
):
    LumaEditVideoOperator(
        task_id="edit_unknown",
        source_generation_id="00000000-0000-4000-8000-00000000dead",
        prompt="Restyle a clip that does not exist",
        poll_interval=POLL_INTERVAL,
    )
