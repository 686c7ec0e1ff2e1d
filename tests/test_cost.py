"""The documented cost report is a teardown: it runs after every render whatever happened, and the run's state
still says a render failed (a last ``trigger_rule="all_done"`` task made such a run end "success")."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_luma.cost import luma_cost_report
from airflow_provider_luma.operators import LumaExtendVideoOperator, LumaGenerateVideoOperator
from airflow_provider_luma.testing import Fault

START = pendulum.datetime(2026, 1, 1, tz="UTC")


# The teardown is the documented pattern; the old last all_done task shows what it fixes: the run ended "success".
@pytest.mark.parametrize(("teardown", "run_state"), [(True, "failed"), (False, "success")])
def test_a_failed_render_fails_the_run_and_the_teardown_report_still_counts_what_was_bought(
    luma_airflow: Any, teardown: bool, run_state: str
) -> None:
    with DAG("teardown_report", schedule=None, start_date=START, default_args={"retries": 0}) as dag:
        master = LumaGenerateVideoOperator(task_id="master", prompt="a harbour at dawn", resolution="540p")
        longer = LumaExtendVideoOperator(
            task_id="longer", generation_id=master.output["generation_id"], prompt="boats leave", resolution="540p"
        )
        if teardown:
            report = PythonOperator(task_id="cost_report", python_callable=luma_cost_report).as_teardown()
        else:
            report = PythonOperator(task_id="cost_report", python_callable=luma_cost_report, trigger_rule="all_done")
        [master, longer] >> report
    # The master is bought, then fails on the service's side; the extend never starts.
    luma_airflow.simulator.inject(Fault.fail_generation(reason="content filter"))
    run = luma_airflow.run(dag)

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"master": "failed", "longer": "upstream_failed", "cost_report": "success"}
    assert run.state == run_state, "a teardown's success does not hide the failed render; a leaf all_done does"
    totals = run.get_task_instance("cost_report").xcom_pull(task_ids="cost_report")
    assert totals["renders"] == 1 and totals["total_estimated_cost_usd"] == 0.15, "the failed render was bought"
