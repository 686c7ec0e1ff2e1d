"""Fan out over a prompt list with dynamic task mapping; each mapped render defers on its own.

Size an Airflow pool to your account's concurrent-job limit (``pool="luma"``) so a large fan-out waits in
Airflow instead of collecting 429s from the service.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_luma.operators import LumaGenerateVideoOperator

PROMPTS = [
    "A paper boat drifting down a rain gutter",
    "A hummingbird hovering at a red flower, slow motion",
    "Neon signs reflected in puddles on a quiet street",
    "A lighthouse beam sweeping through thick fog",
]

with DAG(
    dag_id="example_luma_fanout",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["luma", "example"],
) as dag:
    clips = LumaGenerateVideoOperator.partial(
        task_id="render",
        resolution="540p",
        poll_interval=float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10")),
    ).expand(prompt=PROMPTS)

    @task
    def summarise(generation_ids: list[str]) -> int:
        print(f"Rendered {len(generation_ids)} clips: {generation_ids}")
        return len(generation_ids)

    summarise(clips.output["generation_id"])
