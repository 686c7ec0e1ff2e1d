"""Stored clips under a real scheduler: the asset producer/consumer pair, the UI link, the budget guard."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from airflow_provider_luma.testing._media import sample_mp4
from tests.harness.cluster import LocalAirflowCluster

pytestmark = pytest.mark.e2e

PRODUCER, CONSUMER = "example_luma_asset_producer", "example_luma_asset_consumer"


def wait_for_consumer_run(cluster: LocalAirflowCluster, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in cluster.dag_runs(CONSUMER) if r["state"] in ("success", "failed")]
        if runs:
            return runs[0]
        time.sleep(1.0)
    raise AssertionError(f"{CONSUMER} was not triggered within {timeout} s: {cluster.dag_runs(CONSUMER)}")


def test_stored_clip_triggers_the_asset_scheduled_consumer(
    airflow_cluster: LocalAirflowCluster, e2e_output: Path
) -> None:
    cluster = airflow_cluster
    cluster.wait_for_dag(PRODUCER)
    cluster.wait_for_dag(CONSUMER)
    cluster.set_paused(CONSUMER, False)  # only unpaused DAGs are queued by an asset event
    run_id = cluster.trigger_dag(PRODUCER)
    assert cluster.wait_for_run(PRODUCER, run_id, timeout=180) == "success"
    produced = cluster.xcom(PRODUCER, run_id, "render_clip")
    stored = e2e_output / "assets" / f"render_clip-{produced['generation_id']}.mp4"  # a folder: task-generation
    assert produced["video_path"] == f"file://{stored}" and stored.read_bytes() == sample_mp4()

    consumer_run = wait_for_consumer_run(cluster)
    assert consumer_run["state"] == "success" and consumer_run["run_type"] == "asset_triggered", consumer_run
    published = cluster.xcom(CONSUMER, consumer_run["dag_run_id"], "publish")
    assert published == [
        {"uri": f"file://{stored}", "generation_id": produced["generation_id"], "bytes": len(sample_mp4())}
    ]

    # The "Luma video" link as the UI reads it: the clip's place in the run's gallery page (the plugin streams
    # the file:// copy, which a browser could not open).
    links = cluster.extra_links(PRODUCER, run_id, "render_clip")
    assert links == {"Luma video": f"{cluster.api_url}/luma/runs/{PRODUCER}/{quote(run_id, safe='')}#clip=render_clip"}


def test_over_budget_element_fails_alone_without_a_request(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer
) -> None:
    cluster, dag_id = airflow_cluster, "e2e_luma_budget"
    cluster.wait_for_dag(dag_id)
    run_id = cluster.trigger_dag(dag_id)
    assert cluster.wait_for_run(dag_id, run_id, timeout=180) == "failed"
    tis = {t["map_index"]: t for t in cluster.task_instances(dag_id, run_id)}
    assert {i: t["state"] for i, t in tis.items()} == {0: "success", 1: "failed", 2: "success"}
    assert tis[1]["try_number"] == 1, "no retry was spent on the over-budget element"
    log = cluster.task_log(dag_id, run_id, "render", map_index=1)
    assert "Estimated cost $4.80 is above max_cost_usd=$1.00" in log and "resolution=1080p" in log
    prompts = [r.payload.get("payload", {}).get("prompt") for r in luma_sim.simulator.create_requests() if r.payload]
    assert "budget e2e: a glacier calving at dawn" not in prompts
    assert prompts.count("budget e2e: a kite over a beach") == prompts.count("budget e2e: rain on a tin roof") == 1
