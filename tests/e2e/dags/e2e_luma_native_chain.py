"""The social-cut chain on the native Luma Agents API (connection ``luma_native``): generate → extend → reframe →
edit, every clip stored. The GMI twin is ``example_luma_social_cut``."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import (
    LumaEditVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaReframeVideoOperator,
)

with DAG(
    dag_id="e2e_luma_native_chain",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={
        "luma_conn_id": "luma_native",
        "poll_interval": float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10")),
        "retries": 2,
        "output_path": os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-videos") + "/{run_id}/{task_id}-{generation_id}.mp4",
    },
) as dag:
    master = LumaGenerateVideoOperator(task_id="master", prompt="A lighthouse at dawn", resolution="540p")
    longer = LumaExtendVideoOperator(task_id="extend", generation_id=master.output["generation_id"], prompt="Gulls")
    vertical = LumaReframeVideoOperator(
        task_id="reframe", source_generation_id=longer.output["generation_id"], aspect_ratio="9:16", prompt="Sky"
    )
    LumaEditVideoOperator(
        task_id="edit",
        source_generation_id=vertical.output["generation_id"],
        prompt="Watercolour",
        edit_auto_controls=True,
    )
