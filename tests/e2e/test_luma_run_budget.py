"""``max_run_cost_usd`` under a real scheduler, LocalExecutor (parallelism 8) and triggerer: exactly the renders
that fit are bought, however many elements are ready to submit at once, with no pool: the tasks take turns to
decide (runtime/turns.py) and the renders run in parallel."""

from __future__ import annotations

import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from tests.harness.cluster import LocalAirflowCluster

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_luma_run_budget"
BUDGET_MESSAGE = (
    "This render's estimate $0.15 would bring the run's estimated spend to $1.65, above max_run_cost_usd=$1.50: "
    "this run's other renders hold $1.50: 10 bought ($1.50), none pending. Nothing was submitted."
)


def test_twenty_mapped_renders_under_a_ten_render_budget_buy_exactly_ten(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer
) -> None:
    cluster = airflow_cluster
    assert cluster.config["core.parallelism"] == "8"
    cluster.wait_for_dag(DAG_ID)
    run_id = cluster.trigger_dag(DAG_ID)
    assert cluster.wait_for_run(DAG_ID, run_id, timeout=240) == "failed"

    bought = [
        r
        for r in luma_sim.simulator.create_requests()
        if r.path.endswith("/requests") and "run budget e2e" in (r.payload or {}).get("payload", {}).get("prompt", "")
    ]
    tis = cluster.task_instances(DAG_ID, run_id)
    by_state = {s: sorted(t["map_index"] for t in tis if t["state"] == s) for s in {t["state"] for t in tis}}
    assert len(bought) == 10 and len(by_state["success"]) == 10 and len(by_state["failed"]) == 10, by_state
    for index in by_state["failed"]:
        assert BUDGET_MESSAGE in cluster.task_log(DAG_ID, run_id, "render", map_index=index)
    report = [cluster.xcom(DAG_ID, run_id, "render", "estimated_cost_usd", i) for i in by_state["success"]]
    assert sum(report) == pytest.approx(1.50)
