"""Submit now, wait elsewhere, store later: a render that returns at once, a sensor that waits for it, the download
operator that stores its clip, an extend made from the sensed generation, and the hook used from a plain task.

``wait_for_completion=False`` makes the render task submit, record the request durably and return its
``request_id`` at once (``generation_id`` is not known yet). ``LumaGenerationSensor`` waits for that request (in the
triggerer, with ``[operators] default_deferrable = True``) and pushes the same result a render task pushes;
``LumaDownloadVideoOperator`` stores a finished render's files, fetching fresh presigned URLs first, so it also
works for renders made in other runs or DAGs. The docs include this file by its ``howto`` markers.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_luma.operators import (
    LumaDownloadVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
)
from airflow_provider_luma.sensors import LumaGenerationSensor

# `make demo` and the test suite point the connection at the local simulator and poll it faster.
POLL_INTERVAL = float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10"))
OUTPUT_ROOT = os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-videos")

with DAG(
    dag_id="example_luma_submit_then_store",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # A retry re-attaches to the render it already paid for, so it can come soon: Airflow 3.3.2 sometimes fails a
    # deferred task whose trigger fires within seconds of deferring (a late executor event for the deferring try).
    default_args={"poll_interval": POLL_INTERVAL, "retries": 1, "retry_delay": timedelta(seconds=10)},
    tags=["luma", "example"],
) as dag:
    # [START howto_operator_luma_submit_only]
    submit = LumaGenerateVideoOperator(
        task_id="submit",
        prompt="A paper boat drifts down a rain-filled gutter",
        resolution="540p",
        wait_for_completion=False,  # returns request_id at once; no output_path here
    )
    # [END howto_operator_luma_submit_only]

    # [START howto_sensor_luma_generation]
    wait = LumaGenerationSensor(
        task_id="wait",
        request_id=submit.output["request_id"],
        poke_interval=POLL_INTERVAL,
        timeout=3600,
    )
    # [END howto_sensor_luma_generation]

    # [START howto_operator_luma_download]
    store = LumaDownloadVideoOperator(
        task_id="store",
        request_id=submit.output["request_id"],
        generation_id=wait.output["generation_id"],  # optional check: the request must hold this generation
        output_path=OUTPUT_ROOT + "/{run_id}/",  # a folder: files are named {task_id}-{generation_id}.mp4
    )
    # [END howto_operator_luma_download]

    follow = LumaExtendVideoOperator(
        task_id="follow",
        generation_id=wait.output["generation_id"],
        prompt="The boat tips over the edge of a storm drain",
        resolution="540p",
    )

    # [START howto_hook_luma]
    @task
    def status(request_id: str) -> dict[str, Any]:
        """Look a render up with the hook: the same client, retries and key handling the operators use."""
        from airflow_provider_luma.hooks import LumaHook

        job = LumaHook(luma_conn_id="luma_default").get_generation(request_id)
        return {"status": job.status.value, "generation_id": job.generation_id, "backend": job.backend}

    # [END howto_hook_luma]

    checked = status(submit.output["request_id"])
    wait >> [store, follow, checked]
