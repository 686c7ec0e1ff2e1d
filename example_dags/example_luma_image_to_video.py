"""Image-to-video: animate between a start and an end frame given as image URLs."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

with DAG(
    dag_id="example_luma_image_to_video",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"start_frame": "https://images.example.com/storyboard/frame-01.jpg"},
    tags=["luma", "example"],
) as dag:
    LumaGenerateVideoOperator(
        task_id="animate_storyboard",
        prompt="The sketch comes alive: ink lines become a windy coastal cliff",
        start_frame_url="{{ params.start_frame }}",
        end_frame_url="https://images.example.com/storyboard/frame-02.png",
        aspect_ratio="4:3",
        resolution="720p",
        poll_interval=float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10")),
    )
