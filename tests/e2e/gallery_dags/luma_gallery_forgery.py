"""Gallery forgery e2e DAGs: one render stored to a local folder, one refused by its budget before buying (a failed
Luma task with no render), and a second DAG whose presigned-only render is the "someone else's request"."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

POLL = float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "1"))
OUTPUT = os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-gallery") + "/{run_id}/"
ARGS = {"poll_interval": POLL, "retries": 0}
START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG(dag_id="luma_gallery_forgery", schedule=None, start_date=START, catchup=False, default_args=ARGS):
    LumaGenerateVideoOperator(task_id="stored", prompt="A kite over dunes", resolution="540p", output_path=OUTPUT)
    # A templated cap is checked by its own task only (after templating), so the run pre-flight lets "stored"
    # render while this task is refused before buying: a failed Luma task with no render.
    LumaGenerateVideoOperator(
        task_id="refused", prompt="A glacier at dawn", resolution="1080p", hdr=True, max_cost_usd="{{ 0.01 }}"
    )

with DAG(dag_id="luma_gallery_victim", schedule=None, start_date=START, catchup=False, default_args=ARGS):
    LumaGenerateVideoOperator(task_id="private", prompt="Someone else's clip", resolution="540p")
