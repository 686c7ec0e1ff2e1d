"""A reviewed render: ``editor`` approves, re-renders or rejects each take; ``publish`` and the Luma extend ``longer``
get the approved take."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_luma.operators import LumaExtendVideoOperator, LumaGenerateVideoOperator, LumaReview
from airflow_provider_luma.version_compat import AIRFLOW_V_3_1_PLUS

PROMPT = "review e2e: a red fox in fresh snow"
EXTEND_PROMPT = "review e2e: the fox runs off"

# Human review needs Airflow 3.1 (on 3.0 LumaReview fails at DAG import, by design). The session cluster of an older
# release's e2e run parses this file too and waits until every file has a DAG or an import error, so there the DAG
# renders without review (tests/e2e/test_review_browser.py runs on 3.3).
REVIEW = (
    LumaReview(
        assigned_users=[{"id": "editor", "name": "editor"}],
        response_timeout=timedelta(hours=1),
        on_reject="skip",
    )
    if AIRFLOW_V_3_1_PLUS
    else None
)

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
        # Stored takes (one file per take): the review body's still is made from the latest take's stored copy.
        output_path=os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-videos") + "/{run_id}/{task_id}-{generation_id}.mp4",
        poll_interval=float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10")),
        review=REVIEW,
    )

    @task
    def publish(generation_id: str) -> str:
        return generation_id

    publish(clip.output["generation_id"])
    # A chain in the gallery: its graph shows the reviewed clip's rejected takes.
    LumaExtendVideoOperator(
        task_id="longer",
        generation_id=clip.output["generation_id"],
        prompt=EXTEND_PROMPT,
        resolution="540p",
        poll_interval=float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10")),
    )
