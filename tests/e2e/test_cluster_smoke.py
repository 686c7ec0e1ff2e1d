"""Smoke test for the e2e harness: a real run with a deferral and XComs.

Clearing a task and killing the triggerer are proved on Luma renders in test_luma_durability.py
(``test_clear_after_success_reuses_by_default_and_rerenders_when_asked``,
``test_triggerer_sigkilled_three_times_loses_nothing``): the smoke versions of both were cut as duplicates.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from tests.harness.cluster import LocalAirflowCluster

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_smoke"


def _run_and_record_states(cluster: LocalAirflowCluster, run_id: str, timeout: float = 120) -> dict[str, list[str]]:
    """Poll task states until the run finishes; return each task's distinct states in order of appearance."""
    seen: dict[str, list[str]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    while True:
        for ti in cluster.task_instances(DAG_ID, run_id):
            states = seen[ti["task_id"]]
            if ti["state"] and (not states or states[-1] != ti["state"]):
                states.append(ti["state"])
        if cluster.dag_run(DAG_ID, run_id)["state"] in {"success", "failed"}:
            return dict(seen)
        assert time.monotonic() < deadline, f"run {run_id} did not finish: {dict(seen)}"
        time.sleep(0.2)


def test_run_defers_resumes_and_publishes_multiple_outputs(airflow_cluster: LocalAirflowCluster) -> None:
    cluster = airflow_cluster
    cluster.wait_for_dag(DAG_ID)
    # 8 s, not the DAG's default 2: a trigger that fires within seconds of the deferral can meet the executor's late
    # "success" event of the deferring run, which Airflow 3.0.6 answers by failing the resumed task.
    run_id = cluster.trigger_dag(DAG_ID, conf={"source": "smoke", "wait_seconds": 8})

    seen = _run_and_record_states(cluster, run_id)

    assert cluster.wait_for_run(DAG_ID, run_id, timeout=5) == "success", seen
    assert "deferred" in seen["wait"], seen
    assert seen["wait"][-1] == seen["summarize"][-1] == "success"
    tis = {ti["task_id"]: ti for ti in cluster.task_instances(DAG_ID, run_id)}
    assert tis["wait"]["try_number"] == 1  # a deferral does not consume a try
    assert tis["wait"]["map_index"] == -1 and tis["wait"]["end_date"] >= tis["wait"]["start_date"]
    assert cluster.dag_run(DAG_ID, run_id)["conf"] == {"source": "smoke", "wait_seconds": 8}

    assert cluster.xcom(DAG_ID, run_id, "summarize", key="answer") == 42
    assert cluster.xcom(DAG_ID, run_id, "summarize", key="run_id") == run_id
    assert cluster.xcom(DAG_ID, run_id, "summarize", key="nested") == {"ok": True}
    assert cluster.xcom(DAG_ID, run_id, "summarize")["answer"] == 42
    assert "trigger" in cluster.task_log(DAG_ID, run_id, "wait").lower()
