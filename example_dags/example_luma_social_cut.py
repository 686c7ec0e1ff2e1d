"""Social cut: a 16:9 master → extend it → reframe to 9:16 for social → edit to a film look, every clip stored.

The whole Ray 3.2 family in one chain: ``luma-ray-3-2-generate`` renders and extends the master,
``luma-ray-3-2-reframe`` outpaints it to a vertical 9:16 (it must change the ratio: the master's 16:9 is known from
the upstream task's XCom, so a same-ratio reframe fails before any spend), and ``luma-ray-3-2-edit`` restyles the
vertical cut, keeping its ratio and length. Each task hands ``generation_id`` to the next; each result names its
``model`` and the ``source_generation_ids`` it was made from, so the chain can be drawn from XCom alone.

GMI publishes no price for edit or reframe, so their estimates are unknown unless the connection's extra carries
the account's prices (``{"prices": {"luma-ray-3-2-edit": {"SDR": {"720p": 0.40}}}}``); this DAG therefore sets
``max_cost_usd`` only on the generate renders.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_luma.cost import luma_cost_report
from airflow_provider_luma.operators import (
    LumaEditVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaReframeVideoOperator,
    LumaReview,
)

# `make demo` and the test suite point the connection at the local simulator and poll it faster.
POLL_INTERVAL = float(os.getenv("LUMA_EXAMPLE_POLL_INTERVAL", "10"))
# A person approves the master take (Airflow 3.1+) when this names them; unset (the demo, the tests): no review.
REVIEWER = os.getenv("LUMA_EXAMPLE_REVIEWER")
OUTPUT_ROOT = os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-videos")

with DAG(
    dag_id="example_luma_social_cut",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={
        "poll_interval": POLL_INTERVAL,
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "output_path": OUTPUT_ROOT + "/{run_id}/{task_id}-{generation_id}.mp4",
    },
    tags=["luma", "example"],
) as dag:
    # [START howto_operator_luma_review]
    master = LumaGenerateVideoOperator(
        task_id="master",
        prompt="A cyclist crosses a rain-soaked city bridge at blue hour, wide establishing shot",
        aspect_ratio="16:9",
        resolution="720p",
        max_cost_usd=1.00,
        review=LumaReview(
            assigned_users=[{"id": REVIEWER, "name": REVIEWER}],
            response_timeout=timedelta(hours=24),
            default="Reject",
            on_reject="skip",
        )
        if REVIEWER
        else None,
    )
    # [END howto_operator_luma_review]
    longer = LumaExtendVideoOperator(
        task_id="extend",
        generation_id=master.output["generation_id"],
        prompt="The cyclist rides on into a neon-lit street",
        max_cost_usd=1.00,
    )
    # [START howto_operator_luma_reframe]
    vertical = LumaReframeVideoOperator(
        task_id="reframe_9x16",
        source_generation_id=longer.output["generation_id"],
        aspect_ratio="9:16",
        prompt="More of the wet street below and the glowing sky above",
    )
    # [END howto_operator_luma_reframe]
    # [START howto_operator_luma_edit]
    film_look = LumaEditVideoOperator(
        task_id="edit_film_look",
        source_generation_id=vertical.output["generation_id"],
        prompt="Moody 35mm film stock, soft halation, fine grain",
        edit_strength="flex_2",
    )
    # [END howto_operator_luma_edit]

    # A teardown: it runs once every render is done, whatever happened to them, and the run's state is still
    # that of the renders (a failed render fails the run; a last all_done task would have made it "success").
    report = PythonOperator(task_id="cost_report", python_callable=luma_cost_report).as_teardown()
    [master, longer, vertical, film_look] >> report
