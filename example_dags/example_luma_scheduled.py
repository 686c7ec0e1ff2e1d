"""A daily render whose prompt is templated from the data interval."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

with DAG(
    dag_id="example_luma_scheduled",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["luma", "example"],
) as dag:
    LumaGenerateVideoOperator(
        task_id="daily_clip",
        prompt="A calm time-lapse of the harbour, title card reading '{{ data_interval_start | ds }}'",
        aspect_ratio="9:16",
        resolution="720p",
        poll_interval=float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10")),
        retries=2,
    )
