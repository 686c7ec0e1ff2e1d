"""The provider on Airflow's distributed engine: PostgreSQL, CeleryExecutor (2 workers), two triggerers, S3.

Every process is real (``DistributedAirflowCluster``); the clips go to moto's S3 server, as workers on separate
machines would store them. One deployment serves the module; each test leaves both workers and both triggerers
running.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from airflow_provider_luma.testing._media import sample_mp4
from tests.harness._services import S3Server
from tests.harness.distributed import TRIGGERERS, WORKERS, DistributedAirflowCluster

pytestmark = [pytest.mark.e2e, pytest.mark.distributed]

PIPELINE = "example_luma_content_pipeline"
BUCKET = "luma-e2e"  # created by the s3 fixture
HEALTH_CHECK_THRESHOLD = 10.0  # [triggerer] triggerer_health_check_threshold of the deployment


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(interval)
    return value


def paid_per_prompt(server: LumaSimulatorServer, prefix: str) -> Counter[str]:
    """Accepted create requests per prompt, for prompts starting with ``prefix``."""
    prompts = [str(r.payload["payload"]["prompt"]) for r in server.simulator.create_requests() if r.payload]
    return Counter(p for p in prompts if p.startswith(prefix))


def downloads_per_request(server: LumaSimulatorServer, request_ids: set[str]) -> Counter[str]:
    """Media-file GETs per render (the simulator serves them under ``/files/``)."""
    return Counter(
        str(e.request_id)
        for e in server.simulator.request_log
        if e.method == "GET" and "/files/" in e.path and e.request_id in request_ids
    )


def s3_bytes(s3: S3Server, key: str) -> bytes:
    return bytes(s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def run_trigger_ids(cluster: DistributedAirflowCluster, dag_id: str, run_id: str) -> set[int]:
    rows = cluster.query(
        "SELECT trigger_id FROM task_instance WHERE dag_id = %s AND run_id = %s AND trigger_id IS NOT NULL",
        dag_id,
        run_id,
    )
    return {int(r[0]) for r in rows}


def wait_all_held(cluster: DistributedAirflowCluster, dag_id: str, run_id: str, count: int) -> dict[str | None, int]:
    """Wait until all ``count`` renders of the run are deferred and claimed by a triggerer; return the owners."""

    def all_held() -> dict[str | None, int] | None:
        ids = run_trigger_ids(cluster, dag_id, run_id)
        owners = cluster.trigger_owners(ids)
        return owners if len(ids) == count and None not in owners and sum(owners.values()) == count else None

    return dict(wait_until(all_held, 120, f"{count} renders held by triggerers"))


def workers_that_ran(cluster: DistributedAirflowCluster, run_id: str) -> Counter[str]:
    """How many Celery workloads of ``run_id`` each worker's log shows."""
    return Counter(
        {w: len(re.findall(rf"Executing workload in Celery:.*{re.escape(run_id)}", t)) for w, t in _logs(cluster)}
    )


def _logs(cluster: DistributedAirflowCluster) -> list[tuple[str, str]]:
    return [(w, (cluster.log_dir / f"{w}.log").read_text(errors="replace")) for w in WORKERS]


def test_pipeline_and_30_mapped_renders_spread_over_both_workers(
    dist_cluster: DistributedAirflowCluster, dist_sim: LumaSimulatorServer, s3: S3Server
) -> None:
    cluster = dist_cluster
    started = time.monotonic()
    pipeline_run = cluster.trigger_dag(PIPELINE)
    fanout_run = cluster.trigger_dag("dist_fanout")
    assert cluster.wait_for_run(PIPELINE, pipeline_run, timeout=240) == "success"
    assert cluster.wait_for_run("dist_fanout", fanout_run, timeout=240) == "success"
    elapsed = time.monotonic() - started

    tis = cluster.task_instances(PIPELINE, pipeline_run) + cluster.task_instances("dist_fanout", fanout_run)
    assert len(tis) == 6 + 30 and all(t["state"] == "success" and t["try_number"] == 1 for t in tis)
    fanout = paid_per_prompt(dist_sim, "dist-fanout")
    assert len(fanout) == 30 and set(fanout.values()) == {1}, "one create request per mapped render"
    results = {t: cluster.xcom(PIPELINE, pipeline_run, t) for t in ("opening_shot", "extend_forward", "interpolate")}
    pipeline_prompts = {dist_sim.simulator.generation(r["request_id"]).payload["prompt"] for r in results.values()}
    assert all(paid_per_prompt(dist_sim, p)[p] == 1 for p in pipeline_prompts)
    spread = workers_that_ran(cluster, fanout_run)
    assert all(spread[w] > 0 for w in WORKERS), f"both workers ran renders: {spread}"

    # The clips are in the bucket, byte for byte, with no temporary object or unfinished upload left behind.
    sample = sample_mp4()
    for index in (0, 17, 29):
        assert s3_bytes(s3, f"clips/fanout/{fanout_run}/{index}.mp4") == sample
    for task_id, r in results.items():
        key = f"clips/{pipeline_run}/{task_id}-{r['generation_id']}.mp4"
        assert r["video_path"] == f"s3://aws_default@{BUCKET}/{key}" and s3_bytes(s3, key) == sample
    listing = s3.client().list_objects_v2(Bucket=BUCKET, Prefix="clips/")
    assert not [o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith(".part")]
    assert not s3.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    print(f"pipeline (5 renders) + 30 mapped renders on CeleryExecutor: {elapsed:.1f} s; per worker: {dict(spread)}")


def test_sigkilled_triggerer_hands_its_renders_to_the_other(
    dist_cluster: DistributedAirflowCluster, dist_sim: LumaSimulatorServer, sim_settings: Any
) -> None:
    cluster, dag_id = dist_cluster, "dist_failover"
    sim_settings(render_seconds=30)
    run_id = cluster.trigger_dag(dag_id)

    owners = wait_all_held(cluster, dag_id, run_id, 6)
    victim = max(owners, key=lambda name: owners[name])
    assert victim in TRIGGERERS
    survivor = next(t for t in TRIGGERERS if t != victim)
    killed_at = time.monotonic()
    assert cluster.kill_component(str(victim), signal.SIGKILL) == -signal.SIGKILL
    try:
        ids = run_trigger_ids(cluster, dag_id, run_id)
        wait_until(lambda: cluster.trigger_owners(ids) == {survivor: 6}, 60, "the survivor to hold all six")
        delay = time.monotonic() - killed_at
        assert delay <= HEALTH_CHECK_THRESHOLD + 6, f"takeover took {delay:.1f} s"
        assert cluster.wait_for_run(dag_id, run_id, timeout=180) == "success"
    finally:
        cluster.restart_component(str(victim))
    tis = cluster.task_instances(dag_id, run_id)
    assert len(tis) == 6 and all(t["state"] == "success" and t["try_number"] == 1 for t in tis)
    paid = paid_per_prompt(dist_sim, "dist-failover")
    assert len(paid) == 6 and set(paid.values()) == {1}, "no render was bought twice"
    print(f"triggerer failover after SIGKILL of {victim} (held {owners[victim]}/6): {delay:.1f} s")


def test_worker_sigkilled_between_submit_and_defer_reattaches_on_the_other(
    dist_cluster: DistributedAirflowCluster, dist_sim: LumaSimulatorServer, s3: S3Server, sim_settings: Any
) -> None:
    cluster, dag_id = dist_cluster, "dist_worker_crash"
    sim_settings(render_seconds=40)  # still rendering when the retry starts (15-s heartbeat timeout + retry)
    run_id = cluster.trigger_dag(dag_id)
    marker = "Holding before defer()"
    wait_until(lambda: marker in cluster.task_log(dag_id, run_id, "render"), 120, "try 1 to hold after submit")
    assert len(paid_per_prompt(dist_sim, "dist-worker-crash")) == 1, "try 1 was accepted"
    ti = cluster.task_instance(dag_id, run_id, "render")
    victim = cluster.component_of_pid(int(ti["pid"]))
    assert victim in WORKERS, (ti["pid"], victim)
    survivor = next(w for w in WORKERS if w != victim)
    ran_before = workers_that_ran(cluster, run_id)[survivor]
    try:
        assert cluster.kill_component(victim, signal.SIGKILL) == -signal.SIGKILL
        # Nothing reports the crash: the scheduler fails try 1 once its heartbeat is 15 s old, then retries it.
        assert cluster.wait_for_run(dag_id, run_id, timeout=180) == "success"
    finally:
        cluster.restart_component(victim)
    ti = cluster.task_instance(dag_id, run_id, "render")
    assert ti["try_number"] == 2 and ti["state"] == "success"
    assert workers_that_ran(cluster, run_id)[survivor] > ran_before, "the retry ran on the surviving worker"
    assert "Re-attaching to Luma request" in cluster.task_log(dag_id, run_id, "render", try_number=2)
    assert paid_per_prompt(dist_sim, "dist-worker-crash") == {"dist-worker-crash: a lighthouse in fog": 1}
    assert s3_bytes(s3, f"clips/crash/{run_id}.mp4") == sample_mp4()


def test_graceful_triggerer_stop_runs_triggers_twice_but_delivers_once(
    dist_cluster: DistributedAirflowCluster, dist_sim: LumaSimulatorServer, s3: S3Server, sim_settings: Any
) -> None:
    cluster, dag_id = dist_cluster, "dist_graceful"
    sim_settings(render_seconds=30)
    run_id = cluster.trigger_dag(dag_id)

    owners = wait_all_held(cluster, dag_id, run_id, 4)
    victim = str(max(owners, key=lambda name: owners[name]))
    survivor = next(t for t in TRIGGERERS if t != victim)
    victim_job, survivor_job = cluster.triggerer_jobs[victim], cluster.triggerer_jobs[survivor]
    try:
        # SIGTERM: the triggerer stops heartbeating at once but runs its triggers for up to 10 s more; the other
        # one claims them once the heartbeat is older than the health-check threshold.
        stopping = threading.Thread(target=cluster.kill_component, args=(victim, signal.SIGTERM, 60))
        stopping.start()
        ids = run_trigger_ids(cluster, dag_id, run_id)
        wait_until(lambda: cluster.trigger_owners(ids) == {survivor: 4}, 60, "the survivor to hold all four", 0.2)
        # Usually the victim still runs its triggers here (it exits ~10 s after SIGTERM; the takeover comes after
        # 8-11 s), but that race is Airflow's timing, so it is reported rather than asserted.
        overlapped = stopping.is_alive()
        stopping.join()
        when = "while it still ran them" if overlapped else "after it exited"
        print(f"graceful stop of {victim}: the survivor took the triggers over {when}")
        assert cluster.wait_for_run(dag_id, run_id, timeout=180) == "success"
    finally:
        cluster.restart_component(victim)

    tis = cluster.task_instances(dag_id, run_id)
    assert len(tis) == 4 and all(t["state"] == "success" and t["try_number"] == 1 for t in tis)
    folder = cluster.log_dir / f"dag_id={dag_id}" / f"run_id={run_id}"
    ran_on = {p.name.rsplit(".", 2)[-2] for p in folder.rglob("attempt=1.log.trigger.*.log")}
    assert {str(victim_job), str(survivor_job)} <= ran_on, f"both triggerers ran the triggers: {ran_on}"
    request_ids = {str(cluster.xcom(dag_id, run_id, "render", map_index=t["map_index"])["request_id"]) for t in tis}
    assert downloads_per_request(dist_sim, request_ids) == dict.fromkeys(request_ids, 1), "each clip fetched once"
    events = cluster.api("GET", "assets/events", params={"source_dag_id": dag_id, "source_run_id": run_id}).json()
    per_ti = Counter((e["source_task_id"], e["source_map_index"]) for e in events["asset_events"])
    assert per_ti == {("render", i): 1 for i in range(4)}, "one Asset event per stored clip"
    paid = paid_per_prompt(dist_sim, "dist-graceful")
    assert len(paid) == 4 and set(paid.values()) == {1}
    for index in range(4):
        assert s3_bytes(s3, f"clips/graceful/{index}.mp4") == sample_mp4()
