"""The README's weekly DAG as a DAG file, for the DagBag test next door (test_dags_import.py)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaExtendVideoOperator, LumaGenerateVideoOperator

with DAG("weekly_social_cut", schedule="@weekly", start_date=pendulum.datetime(2026, 1, 5, tz="UTC")) as dag:
    master = LumaGenerateVideoOperator(task_id="master", prompt="A neon street market at night", resolution="540p")
    longer = LumaExtendVideoOperator(
        task_id="longer", generation_id=master.output["generation_id"], prompt="The camera rises", resolution="540p"
    )
