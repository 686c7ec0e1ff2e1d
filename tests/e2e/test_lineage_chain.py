"""OpenLineage end to end: a real Airflow with ``apache-airflow-providers-openlineage`` and its file transport
(the session cluster's, see conftest.py).

The listener calls the operators' ``get_openlineage_facets_on_complete`` / ``_on_failure`` in the worker after each
try; the events it writes must link every clip of a generate → extend → reframe → edit chain to the clip it came
from (the same generation dataset is one task's output and the next task's input), name each stored file in its
storage's namespace, carry the request and generation ids, and carry the error of a failed render.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from tests.harness.cluster import LocalAirflowCluster

pytestmark = pytest.mark.e2e

DAG_SUBMIT = "example_luma_submit_then_store"  # submit only → sensor → download, extend and a hook task


@pytest.fixture
def lineage(airflow_cluster: LocalAirflowCluster, lineage_events: Path) -> tuple[LocalAirflowCluster, Path]:
    """The session cluster, whose OpenLineage listener writes one JSON file per event into the returned folder.

    Other tests' runs write events there too (``example_luma_social_cut`` also runs in test_luma_pipeline.py), so
    events are read by run id.
    """
    return airflow_cluster, lineage_events


def task_events(
    events: Path, dag_id: str, run_id: str, event_type: str, timeout: float = 60.0
) -> dict[str, dict[str, Any]]:
    """The last ``event_type`` event of each task of one run, by task id (the listener writes after the try)."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, dict[str, Any]] = {}
        for path in sorted(events.glob("ol-*.json")):
            event = json.loads(path.read_text())
            name = event.get("job", {}).get("name", "")
            event_run = event.get("run", {}).get("facets", {}).get("airflow", {}).get("dagRun", {}).get("run_id")
            if event.get("eventType") == event_type and name.startswith(f"{dag_id}.") and event_run == run_id:
                found[name.removeprefix(f"{dag_id}.")] = event
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def run(cluster: LocalAirflowCluster, dag_id: str, expect: str) -> str:
    cluster.wait_for_dag(dag_id)
    run_id = cluster.trigger_dag(dag_id)
    state = cluster.wait_for_run(dag_id, run_id, timeout=240)
    assert state == expect, [(t["task_id"], t["state"]) for t in cluster.task_instances(dag_id, run_id)]
    return run_id


def test_chain_events_link_each_clip_to_its_source(
    lineage: tuple[LocalAirflowCluster, Path], luma_sim: LumaSimulatorServer, e2e_output: Path
) -> None:
    cluster, events = lineage
    dag_id, chain = "example_luma_social_cut", ["master", "extend", "reframe_9x16", "edit_film_look"]
    run_id = run(cluster, dag_id, "success")
    results = {t: cluster.xcom(dag_id, run_id, t) for t in chain}
    # The lineage below comes from the resumed try (execute_complete), after the render waited in the triggerer.
    assert "Pausing task as DEFERRED" in cluster.task_log(dag_id, run_id, "master")
    complete = task_events(events, dag_id, run_id, "COMPLETE")
    assert set(chain) <= set(complete), sorted(complete)

    host = luma_sim.base_url.split("://", 1)[1].split("/", 1)[0]
    namespace = f"luma-gmi://{host}"

    def generation(task: str) -> tuple[str, str]:
        return namespace, f"generations/{results[task]['generation_id']}"

    for task, source in zip(chain, [None, *chain], strict=False):
        event = complete[task]
        stored = e2e_output / run_id / f"{task}-{results[task]['generation_id']}.mp4"
        # Output: the render's own generation in the backend's namespace, and the stored file in the storage's.
        assert names(event["outputs"]) == {generation(task), ("file", str(stored))}, event["outputs"]
        # Input: the generation it was made from, the very dataset the upstream task output.
        assert names(event["inputs"]) == ({generation(source)} if source else set()), event["inputs"]
        if source:
            assert generation(source) in names(complete[source]["outputs"])
        facets = event["run"]["facets"]
        assert facets["externalQuery"]["externalQueryId"] == results[task]["request_id"]
        assert facets["externalQuery"]["source"] == namespace
        luma = facets["lumaRender"]
        assert (luma["request_id"], luma["generation_id"], luma["model"]) == (
            results[task]["request_id"], results[task]["generation_id"], results[task]["model"],
        )  # fmt: skip
        assert luma["source_generation_ids"] == results[task]["source_generation_ids"]


def test_sensor_download_and_failure_events(lineage: tuple[LocalAirflowCluster, Path], e2e_output: Path) -> None:
    cluster, events = lineage
    run_id = run(cluster, DAG_SUBMIT, "success")
    generation_id = cluster.xcom(DAG_SUBMIT, run_id, "wait", key="generation_id")
    request_id = cluster.xcom(DAG_SUBMIT, run_id, "submit", key="request_id")
    complete = task_events(events, DAG_SUBMIT, run_id, "COMPLETE")
    assert {"submit", "wait", "store", "follow", "status"} <= set(complete), sorted(complete)
    assert cluster.xcom(DAG_SUBMIT, run_id, "status")["generation_id"] == generation_id  # the hook task
    (sensed,) = complete["wait"]["outputs"]
    assert sensed["name"] == f"generations/{generation_id}" and sensed["namespace"].startswith("luma-gmi://")
    # The submit-only render knows no generation yet: its run carries the request id and no output.
    assert complete["submit"]["outputs"] == []
    assert complete["submit"]["run"]["facets"]["externalQuery"]["externalQueryId"] == request_id
    assert complete["wait"]["run"]["facets"]["externalQuery"]["externalQueryId"] == request_id
    store = complete["store"]
    assert names(store["inputs"]) == {(sensed["namespace"], sensed["name"])}
    stored = cluster.xcom(DAG_SUBMIT, run_id, "store", key="video_path")
    assert names(store["outputs"]) == {("file", stored.removeprefix("file://"))}
    assert str(e2e_output) in stored
    assert (sensed["namespace"], sensed["name"]) in names(complete["follow"]["inputs"])

    failed_run = run(cluster, "luma_lineage_failure", "failed")
    (fail,) = task_events(events, "luma_lineage_failure", failed_run, "FAIL").values()
    error = fail["run"]["facets"]["errorMessage"]
    assert "00000000-0000-4000-8000-00000000dead" in error["message"], error
    assert error["programmingLanguage"] == "python" and "Traceback" in error["stackTrace"]
    # The source generation it could not edit is still its input, in the backend's namespace.
    assert names(fail["inputs"]) == {(sensed["namespace"], "generations/00000000-0000-4000-8000-00000000dead")}
