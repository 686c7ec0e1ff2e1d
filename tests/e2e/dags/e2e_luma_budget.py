"""A mapped fan-out under a $1.00 cap whose second element (1080p HDR, $4.80) is over it."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

ELEMENTS = [
    {"prompt": "budget e2e: a kite over a beach", "resolution": "720p"},
    {"prompt": "budget e2e: a glacier calving at dawn", "resolution": "1080p", "hdr": True},
    {"prompt": "budget e2e: rain on a tin roof", "resolution": "540p"},
]

with DAG(
    dag_id="e2e_luma_budget",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Retries would be spent on a retryable failure; an over-budget element must not use them.
    default_args={"max_cost_usd": 1.00, "retries": 2, "retry_delay": timedelta(seconds=5)},
    tags=["e2e"],
):
    LumaGenerateVideoOperator.partial(
        task_id="render", poll_interval=float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10"))
    ).expand_kwargs(ELEMENTS)
