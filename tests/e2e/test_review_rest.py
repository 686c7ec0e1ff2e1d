"""The review step through Airflow's own REST API, on every Airflow with human-in-the-loop (3.1 and later).

What ``test_review_browser.py`` proves in Chromium on Airflow 3.3, this proves on the HITL machinery of the release
under test (3.3 parks the task in ``awaiting_input``; 3.1 and 3.2 defer it to Airflow's ``HITLTrigger``; the version
matrix runs this file on 3.1 and 3.2): the assigned reviewer asks for a re-render with a new prompt, then approves
the second take; exactly two create requests for the clip; downstream gets the second take; a user who is not
assigned cannot answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from airflow_provider_luma.version_compat import AIRFLOW_V_3_1_PLUS
from tests.e2e._browser import wait_for
from tests.e2e.test_review_browser import (
    DAG_ID,
    EXTEND,
    FIRST,
    SECOND,
    creates,
    human_pause,
    prompt_of,
)
from tests.harness.cluster import LocalAirflowCluster

pytestmark = [
    pytest.mark.e2e,
    # Airflow 3.0 has no human-in-the-loop: there the review step fails at DAG import, naming 3.1 (unit-tested in
    # tests/runtime/test_review.py); the DAG file renders without review on 3.0.
    pytest.mark.skipif(not AIRFLOW_V_3_1_PLUS, reason="Airflow 3.0 has no human-in-the-loop"),
]


def test_review_through_the_rest_api(airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer) -> None:
    cluster, sim = airflow_cluster, luma_sim
    http = httpx.Client(timeout=30.0)  # the api-server of a loaded CI machine can take longer than httpx's 5 s
    before = len(creates(sim))
    run_id = cluster.trigger_dag(DAG_ID)
    dag, run = quote(DAG_ID, safe=""), quote(run_id, safe="")
    hitl = f"{cluster.api_url}/api/v2/dags/{dag}/dagRuns/{run}/taskInstances/clip/-1/hitlDetails"
    review_api = f"{cluster.api_url}/luma/api/review/{dag}/{run}/clip/-1"
    admin = {"Authorization": f"Bearer {cluster.user_token('admin')}"}
    editor = {"Authorization": f"Bearer {cluster.user_token('editor')}"}

    seen: list[Any] = []

    def take_asked(number: int) -> dict[str, Any] | None:
        """The review tab's data once take ``number`` awaits its review (and Airflow holds an open question)."""
        data: dict[str, Any] = http.get(review_api, headers=editor).json()
        asked = http.get(hitl, headers=editor)
        seen[:] = [data, asked.status_code, asked.text[:500]]  # what a failure message shows
        if not (data["awaiting_review"] and len(data["takes"]) == number and data["video"]):
            return None
        return data if asked.status_code == 200 and asked.json()["response_received"] is False else None

    def wait_for_take(number: int) -> dict[str, Any]:
        try:
            return dict(wait_for(f"take {number} to await review", lambda: take_asked(number), timeout=180))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen: {seen}") from None

    first = wait_for_take(1)
    assert first["state"] in ("awaiting_input", "deferred"), first["state"]
    human_pause(cluster, run_id)

    # Not assigned: even an Admin cannot answer.
    denied = http.patch(hitl, headers=admin, json={"chosen_options": ["Approve"], "params_input": {}})
    assert denied.status_code == 403, denied.text

    rerender = http.patch(
        hitl, headers=editor, json={"chosen_options": ["Re-render"], "params_input": {"prompt": SECOND}}
    )
    assert rerender.status_code == 200, rerender.text
    second = wait_for_take(2)
    assert second["generation_id"] != first["generation_id"]
    assert [t["decision"] for t in second["takes"]] == ["re-render", "awaiting review"]
    assert second["takes"][0]["by"] == "editor" and second["takes"][1]["edits"] == {"prompt": SECOND}
    human_pause(cluster, run_id)

    approve = http.patch(hitl, headers=editor, json={"chosen_options": ["Approve"], "params_input": {}})
    assert approve.status_code == 200, approve.text
    assert cluster.wait_for_run(DAG_ID, run_id, timeout=180) == "success"

    made = creates(sim)[before:]
    assert [prompt_of(e) for e in made] == [FIRST, SECOND, EXTEND], "two takes bought, then the extend"
    assert (made[2].payload.get("payload") or {}).get("start_frame_generation_id") == second["generation_id"]
    assert cluster.xcom(DAG_ID, run_id, "publish") == second["generation_id"]
    assert cluster.xcom(DAG_ID, run_id, "clip", key="generation_id") == second["generation_id"]
    after = http.get(review_api, headers=editor).json()
    assert after["state"] == "success" and after["generation_id"] == second["generation_id"] and after["video"]
    assert [t["decision"] for t in after["takes"]] == ["re-render", "approved"]
