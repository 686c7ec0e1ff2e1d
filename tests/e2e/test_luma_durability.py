"""Never pay twice, never lose a clip: crashes, clears, faults and kills under a real scheduler and triggerer."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_luma.testing import Fault, LoggedRequest, LumaSimulatorServer
from airflow_provider_luma.version_compat import AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_3_PLUS
from tests.harness.cluster import LocalAirflowCluster

pytestmark = pytest.mark.e2e


def creates(server: LumaSimulatorServer, prefix: str) -> list[LoggedRequest]:
    """Accepted create requests (paid renders) whose prompt starts with ``prefix``."""
    return [
        r
        for r in server.simulator.create_requests()
        if r.payload and str(r.payload.get("payload", {}).get("prompt")).startswith(prefix)
    ]


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
    return value


def trigger_logs(cluster: LocalAirflowCluster, dag_id: str, run_id: str) -> list[Path]:
    return sorted((cluster.log_dir / f"dag_id={dag_id}" / f"run_id={run_id}").rglob("attempt=1.log.trigger.*.log"))


@pytest.fixture
def slow_renders(sim_settings: Any) -> Any:
    """Makes new renders take a fixed number of seconds for this test."""
    return lambda seconds: sim_settings(render_seconds=seconds)


def test_worker_killed_after_submit_reattaches_on_retry(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer, slow_renders: Any
) -> None:
    # The retry keeps the original poll schedule, so its trigger may fire as soon as the render ends: the render must
    # outlast the retry's deferral by more than Airflow 3.3.2's deferral race window (see conftest.E2E_TIME_FACTOR).
    slow_renders(30)
    cluster, dag_id = airflow_cluster, "luma_crash_before_defer"
    cluster.wait_for_dag(dag_id)
    run_id = cluster.trigger_dag(dag_id)
    if not AIRFLOW_V_3_1_PLUS:
        # Airflow 3.0 fails a task whose process was killed instead of retrying it: a person clears it.
        assert cluster.wait_for_run(dag_id, run_id, timeout=120) == "failed"
        cluster.clear_task_instances(dag_id, run_id, ["render"])
    assert cluster.wait_for_run(dag_id, run_id, timeout=120) == "success"
    assert cluster.task_instance(dag_id, run_id, "render")["try_number"] == 2, "try 1 was killed"
    assert len(creates(luma_sim, "crash-before-defer")) == 1, "the retry re-attached instead of paying again"
    retry_log = cluster.task_log(dag_id, run_id, "render", try_number=2)
    assert "Re-attaching to Luma request" in retry_log
    # The retry's trigger counts from the original submission (30 s ago at the end), not from its own deferral.
    finished = re.search(r"processing -> success after (\d+) s", retry_log)
    assert finished and int(finished.group(1)) >= 30, retry_log[-3000:]


def test_clear_after_success_reuses_by_default_and_rerenders_when_asked(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer
) -> None:
    cluster, dag_id = airflow_cluster, "luma_clear_reuse"
    cluster.wait_for_dag(dag_id)
    run_id = cluster.trigger_dag(dag_id)
    assert cluster.wait_for_run(dag_id, run_id, timeout=120) == "success"
    first = {t: cluster.xcom(dag_id, run_id, t)["generation_id"] for t in ("reuse_on", "reuse_off")}

    cluster.clear_task_instances(dag_id, run_id, ["reuse_on", "reuse_off"])

    def both_done_again() -> bool:
        tis = [ti for ti in cluster.task_instances(dag_id, run_id)]
        return all(ti["try_number"] == 2 and ti["state"] == "success" for ti in tis)

    wait_until(both_done_again, 120, "the cleared tasks to succeed again")
    second = {t: cluster.xcom(dag_id, run_id, t)["generation_id"] for t in ("reuse_on", "reuse_off")}
    assert len(creates(luma_sim, "clear-reuse: on")) == 1 and second["reuse_on"] == first["reuse_on"]
    assert len(creates(luma_sim, "clear-reuse: off")) == 2 and second["reuse_off"] != first["reuse_off"]


def assert_no_retry_of_a_started_try(
    cluster: LocalAirflowCluster, dag_id: str, run_id: str, renders: list[dict[str, Any]]
) -> None:
    """No Airflow retry was needed by our code: a mapped render has a second try only after a first try Airflow never
    started (the fan-out DAGs allow one retry for Airflow 3.0's start race, see dags/e2e_luma_durable.py), so that
    first try's log is empty."""
    for ti in renders:
        if ti["try_number"] == 1:
            continue
        assert ti["try_number"] == 2, ti
        run = f"dag_id={dag_id}/run_id={run_id}/task_id={ti['task_id']}/map_index={ti['map_index']}"
        first, second = (cluster.log_dir / run / f"attempt={n}.log" for n in (1, 2))
        assert second.stat().st_size > 0, f"{second} (the retry's log, where the first try's would be)"
        assert not first.exists() or first.stat().st_size == 0, f"{ti['map_index']} was retried after it ran"


def test_fault_schedule_during_a_mapped_fanout(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer, slow_renders: Any
) -> None:
    cluster, dag_id, sim = airflow_cluster, "luma_fault_fanout", luma_sim.simulator
    cluster.wait_for_dag(dag_id)
    slow_renders(15)
    faults = [
        Fault.rate_limit_rpm(retry_after=1, times=3),  # on submit: slept through in the worker
        Fault.rate_limit_concurrency(retry_after=20, times=2),  # on submit: waited out in the triggerer
        Fault.slow(2.0, on="submit", times=2),
        Fault.http_error(500, on="poll", times=2),
        Fault.http_error(502, on="poll", times=2),
        Fault.http_error(503, on="poll", times=2),
        Fault.drop_connection(on="poll", times=3),
        Fault.html_error(502, on="poll", times=2),
        Fault.malformed(on="poll", times=2),
        Fault.slow(2.0, on="poll", times=2),
        Fault.rate_limit_rpm(retry_after=1, on="poll", times=2),
    ]
    log_start = len(sim.request_log)
    sim.inject(*faults)
    run_id = cluster.trigger_dag(dag_id)
    state = cluster.wait_for_run(dag_id, run_id, timeout=300)
    renders = [ti for ti in cluster.task_instances(dag_id, run_id) if ti["task_id"] == "render"]
    assert state == "success" and len(renders) == 20 and all(ti["state"] == "success" for ti in renders)
    assert_no_retry_of_a_started_try(cluster, dag_id, run_id, renders)
    per_prompt = Counter(str(r.payload["payload"]["prompt"]) for r in creates(luma_sim, "fault-fanout"))  # type: ignore[index]
    assert len(per_prompt) == 20 and set(per_prompt.values()) == {1}, "one paid render per task instance"
    survived = Counter(e.fault for e in sim.request_log[log_start:] if e.fault)
    assert sum(survived.values()) == sum(f.times for f in faults) and not sim.pending_faults
    print(f"faults injected and survived: {dict(survived)}")


def test_triggerer_sigkilled_three_times_loses_nothing(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer, slow_renders: Any
) -> None:
    cluster, dag_id = airflow_cluster, "luma_long_renders"
    cluster.wait_for_dag(dag_id)
    slow_renders(75)
    run_id = cluster.trigger_dag(dag_id)
    wait_until(lambda: len(trigger_logs(cluster, dag_id, run_id)) == 3, 90, "three triggers running")
    for kill in range(1, 4):
        assert cluster.kill_component("triggerer", signal.SIGKILL) == -signal.SIGKILL
        cluster.restart_component("triggerer")
        # Every trigger is re-created from its kwargs by the new triggerer and run() starts from the top.
        wait_until(lambda n=kill: len(trigger_logs(cluster, dag_id, run_id)) == 3 * (n + 1), 90, f"takeover {kill}")
    assert cluster.wait_for_run(dag_id, run_id, timeout=180) == "success"
    renders = cluster.task_instances(dag_id, run_id)
    assert len(renders) == 3 and all(ti["state"] == "success" and ti["try_number"] == 1 for ti in renders)
    assert len(creates(luma_sim, "long-render")) == 3, "exactly one POST per task instance"


def test_marking_a_deferred_task_failed_runs_on_kill_once_and_stops_polling(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer, slow_renders: Any
) -> None:
    cluster, dag_id, sim = airflow_cluster, "luma_kill_me", luma_sim.simulator
    cluster.wait_for_dag(dag_id)
    slow_renders(300)
    run_id = cluster.trigger_dag(dag_id)
    wait_until(lambda: trigger_logs(cluster, dag_id, run_id), 90, "the trigger to start")
    (request,) = creates(luma_sim, "kill-me")
    wait_until(
        lambda: [e for e in sim.request_log if e.method == "GET" and e.request_id == request.request_id], 30, "a poll"
    )

    cluster.patch_task_instance(dag_id, run_id, "render", "failed")

    def polls() -> int:
        return sum(e.method == "GET" and e.request_id == request.request_id for e in sim.request_log)

    marker = "task was stopped by a user"
    if AIRFLOW_V_3_3_PLUS:  # a trigger's on_kill came in 3.3; before, the triggerer only cancels it
        wait_until(
            lambda: marker in "".join(p.read_text() for p in trigger_logs(cluster, dag_id, run_id)), 30, "on_kill"
        )
    else:
        wait_until(lambda: cluster.task_instance(dag_id, run_id, "render")["state"] == "failed", 30, "the mark")
        time.sleep(4)  # the triggerer notices within its heartbeat
    settled = polls()
    time.sleep(4)  # four poll intervals
    assert polls() == settled, "the trigger stopped polling"
    text = "".join(p.read_text() for p in trigger_logs(cluster, dag_id, run_id))
    assert text.count(marker) == (1 if AIRFLOW_V_3_3_PLUS else 0) and ("billed" in text) is AIRFLOW_V_3_3_PLUS
    assert cluster.task_instance(dag_id, run_id, "render")["state"] == "failed"


def test_fanout_of_50_against_a_concurrency_limit_fails_no_task(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer, sim_settings: Any
) -> None:
    """The service allows 10 concurrent jobs and answers the rest 429 "Too many concurrent jobs" + Retry-After."""
    cluster, dag_id, sim = airflow_cluster, "luma_concurrency_fanout", luma_sim.simulator
    cluster.wait_for_dag(dag_id)
    # Retry-After just above the 15 s a worker sleeps through in-line (runtime.finish.WORKER_RETRY), so every 429
    # takes the deferral path this test is about, and a resubmission round waits little longer than a render.
    sim_settings(render_seconds=10, max_concurrent_jobs=10, concurrency_retry_after=16)
    log_start = len(sim.request_log)
    run_id = cluster.trigger_dag(dag_id)
    state = cluster.wait_for_run(dag_id, run_id, timeout=420)
    renders = [ti for ti in cluster.task_instances(dag_id, run_id) if ti["task_id"] == "render"]
    assert state == "success" and len(renders) == 50
    assert all(ti["state"] == "success" for ti in renders), "no task failed"
    assert_no_retry_of_a_started_try(cluster, dag_id, run_id, renders)
    limited = [e for e in sim.request_log[log_start:] if e.method == "POST" and e.status == 429]
    assert limited, "the limit was actually hit"
    per_prompt = Counter(str(r.payload["payload"]["prompt"]) for r in creates(luma_sim, "concurrency-fanout"))  # type: ignore[index]
    assert len(per_prompt) == 50 and set(per_prompt.values()) == {1}
    run_logs = (cluster.log_dir / f"dag_id={dag_id}" / f"run_id={run_id}").rglob("attempt=1.log")
    assert any("concurrent-jobs limit reached" in p.read_text() for p in run_logs), "the 429 kind is logged"
    print(f"concurrency fan-out: {len(limited)} POSTs answered 429 'Too many concurrent jobs', 50/50 rendered once")
