"""Forged XComs never steer the gallery's video route (issue 17, item 1), on a real cluster and the real REST API.

SimpleAuthManager's "User" role may write XComs (``POST``/``PATCH …/xcomEntries``). The route must open only what
the worker recorded in the task instance's rendered template fields (``luma_delivery``), which no REST user can
write: a forged ``video_path`` naming a file of the api-server, or a forged ``request_id`` of another task's or
another DAG's render, must not reach a Viewer, nor make the api-server spend the connection on that request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from tests.harness.cluster import LocalAirflowCluster

DAG_ID, VICTIM = "luma_gallery_forgery", "luma_gallery_victim"

pytestmark = pytest.mark.e2e


@dataclass
class Forgery:
    cluster: LocalAirflowCluster
    sim: LumaSimulatorServer
    run_id: str
    victim_run_id: str


@pytest.fixture(scope="module")
def forgery(airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer) -> Forgery:
    """One run of each DAG on the session cluster, whose users include an ``editor`` (SimpleAuthManager's "User"
    role, which may write XComs) and a ``viewer``."""
    cluster = airflow_cluster
    cluster.wait_for_dag(DAG_ID)
    cluster.wait_for_dag(VICTIM)
    run_id, victim_run_id = cluster.trigger_dag(DAG_ID), cluster.trigger_dag(VICTIM)
    assert cluster.wait_for_run(VICTIM, victim_run_id, timeout=180) == "success"
    assert cluster.wait_for_run(DAG_ID, run_id, timeout=180) == "failed", "the refused render fails the run"
    return Forgery(cluster, luma_sim, run_id, victim_run_id)


def bearer(cluster: LocalAirflowCluster, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.user_token(user)}"}


def ti_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/{quote(task_id, safe='')}"


def write_xcom(f: Forgery, editor: dict[str, str], dag_id: str, run_id: str, task: str, key: str, value: Any) -> int:
    """Create the XCom as the editor (201), or overwrite it when the task pushed one (200)."""
    base = f"{f.cluster.api_url}/api/v2/{ti_path(dag_id, run_id, task)}/xcomEntries"
    created = httpx.post(base, headers=editor, json={"key": key, "value": value, "map_index": -1})
    if created.status_code != 409:
        return created.status_code
    return httpx.patch(f"{base}/{quote(key, safe='')}", headers=editor, json={"value": value}).status_code


def video_url(f: Forgery, dag_id: str, run_id: str, task: str) -> str:
    return f"{f.cluster.api_url}/luma/video/{quote(dag_id, safe='')}/{quote(run_id, safe='')}/{task}/-1"


def requests_for(sim: LumaSimulatorServer, request_id: str, since: int) -> list[Any]:
    return [e for e in sim.simulator.request_log[since:] if e.request_id == request_id]


def test_the_worker_records_what_it_stored_in_the_rendered_fields(forgery: Forgery) -> None:
    f = forgery
    ti = f.cluster.api("GET", ti_path(DAG_ID, f.run_id, "stored")).json()
    record = ti["rendered_fields"]["luma_delivery"]
    result = f.cluster.xcom(DAG_ID, f.run_id, "stored")
    assert record == {k: result[k] for k in ("request_id", "generation_id", "model", "backend", "video_path",
                                             "exr_path")}  # fmt: skip
    assert record["video_path"].startswith("file://") and "***" not in str(record)
    refused = f.cluster.api("GET", ti_path(DAG_ID, f.run_id, "refused")).json()
    assert refused["state"] == "failed" and refused["rendered_fields"]["luma_delivery"] is None, "bought nothing"


def test_forged_xcoms_open_no_file_and_no_other_request(forgery: Forgery) -> None:
    f = forgery
    editor, viewer = bearer(f.cluster, "editor"), bearer(f.cluster, "viewer")
    stored_id = f.cluster.xcom(DAG_ID, f.run_id, "stored")["request_id"]
    stored_file = Path(f.cluster.xcom(DAG_ID, f.run_id, "stored")["video_path"].removeprefix("file://"))
    victim_id = f.cluster.xcom(VICTIM, f.victim_run_id, "private")["request_id"]
    secrets = [Path("/etc/hostname"), f.cluster.home / "airflow.cfg",
               Path(f.cluster.config["core.simple_auth_manager_passwords_file"])]  # fmt: skip
    assert all(p.is_file() for p in secrets) and stored_file.is_file()
    forged_values = [{"video_path": str(p)} for p in secrets] + [
        {"video_path": f"file://{secrets[1]}"},
        {"request_id": victim_id, "model": "luma-ray-3-2-generate"},  # another DAG's render
        {"request_id": stored_id},  # another task's render
    ]
    mark = len(f.sim.simulator.request_log)
    failed_video, stored_video = video_url(f, DAG_ID, f.run_id, "refused"), video_url(f, DAG_ID, f.run_id, "stored")
    # The durable render record (task_state_store) is REST-writable too: a forged one names the victim's request.
    state = {"version": 2, "backend": "gmi", "model": "luma-ray-3-2-generate", "phase": "succeeded",
             "request_id": victim_id, "video_path": str(secrets[0])}  # fmt: skip
    # So is the review state: a forged approved take naming a secret file and the victim's request.
    review = {"version": 1, "takes": [{"number": 1, "decision": "approved", "by": "editor", "result": {
        "request_id": victim_id, "generation_id": "g", "video_path": str(secrets[0])}}]}  # fmt: skip
    for task in ("refused", "stored"):
        for key, value in (("luma_render", state), ("luma_review", review)):
            put = httpx.put(f"{f.cluster.api_url}/api/v2/{ti_path(DAG_ID, f.run_id, task)}/state-store/{key}",
                            headers=editor, json={"value": value})  # fmt: skip
            assert put.status_code == 204, put.text

    for i, forged in enumerate(forged_values):
        # The forgery itself is possible: the failed task has no result, so the first write creates it.
        status = write_xcom(f, editor, DAG_ID, f.run_id, "refused", "return_value", forged)
        assert status == (201 if i == 0 else 200), forged
        assert write_xcom(f, editor, DAG_ID, f.run_id, "stored", "return_value", forged) == 200
        for key, value in forged.items():  # the keys multiple_outputs pushed, too
            assert write_xcom(f, editor, DAG_ID, f.run_id, "stored", key, value) == 200

        refused = httpx.get(failed_video, headers=viewer)
        assert refused.status_code in (403, 404), (forged, refused.status_code, refused.text)
        assert all(p.read_bytes() not in refused.content for p in secrets if p.read_bytes())
        own = httpx.get(stored_video, headers=viewer)
        assert own.status_code == 200 and own.content == stored_file.read_bytes(), forged
        # The review body's still: decoded only from the file the task stored, never from a forged path.
        no_still = httpx.get(failed_video.replace("/luma/video/", "/luma/still/"), headers=viewer)
        assert no_still.status_code in (403, 404), (forged, no_still.status_code, no_still.text)
        still = httpx.get(stored_video.replace("/luma/video/", "/luma/still/"), headers=viewer)
        assert still.status_code == 200 and still.content[:3] == b"\xff\xd8\xff", forged

    assert write_xcom(f, editor, DAG_ID, f.run_id, "refused", "video_path", str(secrets[0])) == 201
    part = httpx.get(stored_video, headers={**viewer, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == stored_file.read_bytes()[100:200]
    run = httpx.get(f"{f.cluster.api_url}/luma/api/runs/{DAG_ID}/{quote(f.run_id, safe='')}", headers=viewer).json()
    clips = {c["key"]: c for c in run["clips"]}
    assert clips["refused"]["video"] is None and clips["stored"]["video"], "the player comes from the record"
    assert requests_for(f.sim, victim_id, mark) == [] and requests_for(f.sim, stored_id, mark) == []

    # A successful presigned-only clip with another task's request id forged: its own request is refreshed.
    mark = len(f.sim.simulator.request_log)
    assert write_xcom(f, editor, VICTIM, f.victim_run_id, "private", "return_value", {"request_id": stored_id}) == 200
    assert write_xcom(f, editor, VICTIM, f.victim_run_id, "private", "request_id", stored_id) == 200
    fresh = httpx.get(video_url(f, VICTIM, f.victim_run_id, "private"), headers=viewer, follow_redirects=False)
    assert fresh.status_code == 307 and fresh.headers["location"].startswith(f.sim.root_url)
    assert requests_for(f.sim, stored_id, mark) == [] and requests_for(f.sim, victim_id, mark)


def test_a_failed_card_says_why_and_an_unbought_render_is_not_unpriced(forgery: Forgery) -> None:
    f = forgery
    viewer = bearer(f.cluster, "viewer")
    url = f"{f.cluster.api_url}/luma/api/runs/{DAG_ID}/{quote(f.run_id, safe='')}"
    deadline = time.monotonic() + 30
    while (clips := {c["key"]: c for c in httpx.get(url, headers=viewer).json()["clips"]})["refused"]["reason"] is None:
        assert time.monotonic() < deadline, "no failure reason"
        time.sleep(1)
    reason = clips["refused"]["reason"]
    assert "max_cost_usd" in reason and "Task failed with exception" not in reason, reason
    data = httpx.get(url, headers=viewer).json()
    assert data["unpriced_renders"] == 0, "the refused render was never bought: not an unpriced render"
