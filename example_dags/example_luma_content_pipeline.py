"""Content pipeline: text-to-video → extend forward / backward → interpolate, chained by ``generation_id``.

Every render hands its ``generation_id`` to the next over XCom (``task.output["generation_id"]`` or Jinja), and
no worker slot is held while Luma renders: each task defers to the triggerer. Each finished clip is stored under
``$LUMA_EXAMPLE_OUTPUT/<run id>/`` (presigned URLs die after about an hour), no task may cost more than $2.00,
and a last task sums the run's estimated cost.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_luma.cost import luma_cost_report
from airflow_provider_luma.operators import (
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaInterpolateVideoOperator,
)

# `make demo` and the test suite point the connection at the local simulator and poll it faster.
POLL_INTERVAL = float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10"))
# A local folder or any ObjectStoragePath URI (s3://aws_default@bucket/videos, ...). {run_id}, {task_id} and
# {generation_id} are filled in by the operator; Jinja ({{ ... }}) works too.
OUTPUT_ROOT = os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-videos")

with DAG(
    dag_id="example_luma_content_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # A retry re-attaches to the render already paid for, so it can come quickly.
    default_args={
        "luma_conn_id": "luma_default",
        "poll_interval": POLL_INTERVAL,
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "output_path": OUTPUT_ROOT + "/{run_id}/{task_id}-{generation_id}.mp4",
        "max_cost_usd": 2.00,  # checked after templating, before any request
    },
    tags=["luma", "example"],
) as dag:
    # [START howto_operator_luma_generate]
    opening = LumaGenerateVideoOperator(
        task_id="opening_shot",
        prompt="A slow dolly shot through a misty greenhouse at sunrise",
        aspect_ratio="16:9",
        resolution="720p",
    )
    # [END howto_operator_luma_generate]

    closing = LumaGenerateVideoOperator(
        task_id="closing_shot",
        prompt="The greenhouse at dusk, lanterns glowing between the ferns",
        resolution="720p",
    )

    # [START howto_operator_luma_extend]
    continued = LumaExtendVideoOperator(
        task_id="extend_forward",
        generation_id=opening.output["generation_id"],
        direction="forward",
        prompt="The camera keeps drifting until it reaches a pond",
    )
    prologue = LumaExtendVideoOperator(
        task_id="extend_backward",
        # Jinja works as well as XComArg:
        generation_id="{{ ti.xcom_pull(task_ids='closing_shot', key='generation_id') }}",
        direction="backward",
        prompt="Moments earlier: the lanterns are being lit one by one",
    )
    prologue.set_upstream(closing)
    # [END howto_operator_luma_extend]

    # [START howto_operator_luma_interpolate]
    bridge = LumaInterpolateVideoOperator(
        task_id="interpolate",
        start=continued.output["generation_id"],
        end=prologue.output["generation_id"],
        prompt="Day turns to dusk over the pond in one continuous take",
    )
    # [END howto_operator_luma_interpolate]

    # [START howto_luma_cost_report]
    # A teardown: it runs once every render is done, whatever happened to them, and the run's state is still
    # that of the renders (a failed render fails the run; a last all_done task would have made it "success").
    report = PythonOperator(task_id="cost_report", python_callable=luma_cost_report).as_teardown()
    [opening, closing, continued, prologue, bridge] >> report
    # [END howto_luma_cost_report]
