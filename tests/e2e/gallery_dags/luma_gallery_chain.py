"""Gallery e2e DAG: a stored master → extend → reframe 9:16 → edit chain, plus a mapped pair of presigned-only
clips (no output_path) whose prompts carry HTML that the page must show as text."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import (
    LumaEditVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaReframeVideoOperator,
)

POLL = float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "1"))
OUTPUT = os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-gallery") + "/{run_id}/{task_id}-{generation_id}.mp4"

with DAG(
    dag_id="luma_gallery_chain",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"poll_interval": POLL, "retries": 1, "retry_delay": timedelta(seconds=5)},
) as dag:
    master = LumaGenerateVideoOperator(
        task_id="master", prompt="A lighthouse at dawn, waves below", aspect_ratio="16:9", output_path=OUTPUT
    )
    variants = LumaGenerateVideoOperator.partial(task_id="variants", resolution="540p").expand(
        prompt=['<script>window.pwned=1</script> a "quoted" fox & <b>bold</b>', "A paper boat in the rain"]
    )
    longer = LumaExtendVideoOperator(
        task_id="extend", generation_id=master.output["generation_id"], prompt="Gulls fly over", output_path=OUTPUT
    )
    vertical = LumaReframeVideoOperator(
        task_id="reframe",
        source_generation_id=longer.output["generation_id"],
        aspect_ratio="9:16",
        prompt="More sky",
        output_path=OUTPUT,
    )
    LumaEditVideoOperator(
        task_id="edit",
        source_generation_id=vertical.output["generation_id"],
        prompt="35mm film look",
        edit_strength="flex_2",
        output_path=OUTPUT,
    )
