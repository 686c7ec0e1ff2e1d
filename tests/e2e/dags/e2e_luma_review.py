"""A reviewed render: ``editor`` approves, re-renders or rejects each take; ``publish`` gets the approved take."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_luma.operators import LumaGenerateVideoOperator, LumaReview
from airflow_provider_luma.version_compat import AIRFLOW_V_3_1_PLUS

PROMPT = "review e2e: a red fox in fresh snow"

if AIRFLOW_V_3_1_PLUS:  # human review needs Airflow 3.1 (on 3.0 this DAG would fail to import, by design)
    with DAG(
        dag_id="e2e_luma_review",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["e2e"],
    ):
        clip = LumaGenerateVideoOperator(
            task_id="clip",
            prompt=PROMPT,
            resolution="540p",
            poll_interval=float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10")),
            review=LumaReview(
                assigned_users=[{"id": "editor", "name": "editor"}],
                response_timeout=timedelta(hours=1),
                on_reject="skip",
            ),
        )

        @task
        def publish(generation_id: str) -> str:
            return generation_id

        publish(clip.output["generation_id"])
