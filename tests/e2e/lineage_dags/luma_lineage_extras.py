"""Lineage e2e DAGs beyond the social-cut chain: the sensor and the download operator, and a render that fails.

``luma_lineage_sensor``: submit without waiting → ``LumaGenerationSensor`` → ``LumaDownloadVideoOperator`` →
extend the sensed generation. ``luma_lineage_failure``: an edit of a generation the service does not know, which
the simulator refuses, so its OpenLineage FAIL event must carry the error.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import (
    LumaDownloadVideoOperator,
    LumaEditVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
)
from airflow_provider_luma.sensors import LumaGenerationSensor

POLL_INTERVAL = float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10"))
OUTPUT_ROOT = os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-videos")
START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("luma_lineage_sensor", schedule=None, start_date=START, catchup=False, default_args={"retries": 0}):
    submit = LumaGenerateVideoOperator(
        task_id="submit", prompt="A paper boat drifts down a gutter", resolution="540p", wait_for_completion=False
    )
    wait = LumaGenerationSensor(task_id="wait", request_id=submit.output["request_id"], poke_interval=POLL_INTERVAL)
    store = LumaDownloadVideoOperator(
        task_id="store", request_id=submit.output["request_id"], output_path=OUTPUT_ROOT + "/{run_id}/"
    )
    follow = LumaExtendVideoOperator(
        task_id="follow",
        generation_id=wait.output["generation_id"],
        prompt="The boat reaches a storm drain",
        resolution="540p",
        poll_interval=POLL_INTERVAL,
    )
    wait >> store

with DAG("luma_lineage_failure", schedule=None, start_date=START, catchup=False, default_args={"retries": 0}):
    LumaEditVideoOperator(
        task_id="edit_unknown",
        source_generation_id="00000000-0000-4000-8000-00000000dead",
        prompt="Restyle a clip that does not exist",
        poll_interval=POLL_INTERVAL,
    )
