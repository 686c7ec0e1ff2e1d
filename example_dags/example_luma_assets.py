"""Asset-driven pair: a producer stores a rendered clip; a consumer DAG runs whenever a new clip is stored.

The producer's ``output_path`` makes the render task download the MP4 and emit an Asset event (URI = the stored
file, ``extra`` = generation id, mode, prompt hash, estimated cost, size) through ``AssetAlias("example_luma_clips")``.
The consumer is scheduled on that alias, so it needs no knowledge of file names decided at run time.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, AssetAlias, ObjectStoragePath, task

from airflow_provider_luma.operators import LumaGenerateVideoOperator

POLL_INTERVAL = float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10"))
OUTPUT_ROOT = os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-videos")
CLIPS = AssetAlias("example_luma_clips")

# [START howto_luma_asset_producer]
with DAG(
    dag_id="example_luma_asset_producer",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["luma", "example"],
):
    LumaGenerateVideoOperator(
        task_id="render_clip",
        prompt="Steam rising from a cup of coffee on a windowsill, morning light",
        resolution="540p",
        poll_interval=POLL_INTERVAL,
        output_path=OUTPUT_ROOT + "/assets/",  # a folder: files are named {task_id}-{generation_id}.mp4
        asset_alias=CLIPS.name,
        max_cost_usd=0.50,
    )
# [END howto_luma_asset_producer]

# [START howto_luma_asset_consumer]
with DAG(
    dag_id="example_luma_asset_consumer",
    schedule=[CLIPS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["luma", "example"],
):

    @task
    def publish(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """Check each new clip is in storage and report it (a real DAG would transcode or upload it)."""
        published = []
        # Each event is listed under its asset and under the alias it came through; read the alias's list.
        events = triggering_asset_events[CLIPS] if triggering_asset_events else []
        for event in events:
            uri, extra = event.asset.uri, event.extra
            size = ObjectStoragePath(extra["path"]).stat().st_size
            cost = extra["estimated_cost_usd"]
            print(f"New clip {uri}: generation {extra['generation_id']}, {size} bytes, est. ${cost}")
            published.append({"uri": uri, "generation_id": extra["generation_id"], "bytes": size})
        if not published:
            raise ValueError("triggered without any asset event")
        return published

    publish()
# [END howto_luma_asset_consumer]
