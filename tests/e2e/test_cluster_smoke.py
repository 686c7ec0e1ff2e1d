"""Smoke tests for the e2e harness: a real run with a deferral, XComs, clear, and a triggerer crash."""

from __future__ import annotations

import signal
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
    run_id = cluster.trigger_dag(DAG_ID, conf={"source": "smoke"})

    seen = _run_and_record_states(cluster, run_id)

    assert cluster.wait_for_run(DAG_ID, run_id, timeout=5) == "success", seen
    assert "deferred" in seen["wait"], seen
    assert seen["wait"][-1] == seen["summarize"][-1] == "success"
    tis = {ti["task_id"]: ti for ti in cluster.task_instances(DAG_ID, run_id)}
    assert tis["wait"]["try_number"] == 1  # a deferral does not consume a try
    assert tis["wait"]["map_index"] == -1 and tis["wait"]["end_date"] >= tis["wait"]["start_date"]
    assert cluster.dag_run(DAG_ID, run_id)["conf"] == {"source": "smoke"}

    assert cluster.xcom(DAG_ID, run_id, "summarize", key="answer") == 42
    assert cluster.xcom(DAG_ID, run_id, "summarize", key="run_id") == run_id
    assert cluster.xcom(DAG_ID, run_id, "summarize", key="nested") == {"ok": True}
    assert cluster.xcom(DAG_ID, run_id, "summarize")["answer"] == 42
    assert "trigger" in cluster.task_log(DAG_ID, run_id, "wait").lower()


def test_clear_reruns_a_task(airflow_cluster: LocalAirflowCluster) -> None:
    cluster = airflow_cluster
    run_id = cluster.trigger_dag(DAG_ID)
    assert cluster.wait_for_run(DAG_ID, run_id) == "success"

    cleared = cluster.clear_task_instances(DAG_ID, run_id, ["summarize"])

    assert [ti["task_id"] for ti in cleared] == ["summarize"]
    assert cluster.wait_for_run(DAG_ID, run_id) == "success"
    assert cluster.task_instance(DAG_ID, run_id, "summarize")["try_number"] == 2
    assert cluster.task_instance(DAG_ID, run_id, "wait")["try_number"] == 1


def test_deferred_task_survives_triggerer_sigkill(airflow_cluster: LocalAirflowCluster) -> None:
    cluster = airflow_cluster
    run_id = cluster.trigger_dag(DAG_ID, conf={"wait_seconds": 12})
    log_folder = cluster.log_dir / f"dag_id={DAG_ID}" / f"run_id={run_id}" / "task_id=wait"
    deadline = time.monotonic() + 60
    while not list(log_folder.glob("attempt=1.log.trigger.*.log")):  # the trigger runs in the triggerer
        assert time.monotonic() < deadline, "the trigger never started"
        time.sleep(0.2)
    assert cluster.task_instance(DAG_ID, run_id, "wait")["state"] == "deferred"
    old_pid = cluster.pid("triggerer")

    assert cluster.kill_component("triggerer", signal.SIGKILL) == -signal.SIGKILL
    assert cluster.pid("triggerer") is None
    cluster.restart_component("triggerer")

    assert cluster.pid("triggerer") not in {None, old_pid}
    assert cluster.wait_for_run(DAG_ID, run_id) == "success"
    # Run by the killed triggerer, then again from the top by its successor.
    assert len(list(log_folder.glob("attempt=1.log.trigger.*.log"))) == 2
    assert cluster.task_instance(DAG_ID, run_id, "wait")["try_number"] == 1
