"""The review step in a real browser against the session cluster (Airflow's own HITL UI and the "Luma review" tab).

Headless Chromium logs in as ``editor`` (the assigned reviewer), opens the pending action (its Markdown body shows a
still of the latest take, made by the plugin from the stored copy), watches the take play in the task instance's
"Luma review" tab, asks for a re-render with a new prompt, then approves the second take: exactly two create
requests for the reviewed clip, and downstream (a Python task and a Luma extend) gets the second take's generation
id. ``admin`` (not assigned) cannot answer, neither through ``PATCH …/hitlDetails`` nor in the UI; the gallery lists
both takes with who and when, and its chain graph counts the rejected take.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from tests.e2e._browser import chromium, login, require_chromium, wait_for
from tests.harness.cluster import LocalAirflowCluster

DAG_ID = "e2e_luma_review"
FIRST = "review e2e: a red fox in fresh snow"
SECOND = "review e2e: a red fox at dusk, slow pan"
EXTEND = "review e2e: the fox runs off"
SCREENSHOT = Path(__file__).parents[2] / "docs" / "review.png"

pytestmark = pytest.mark.e2e


def prompt_of(entry: Any) -> Any:
    body = entry.payload if isinstance(entry.payload, dict) else {}
    return (body.get("payload") or {}).get("prompt")


def creates(sim: LumaSimulatorServer) -> list[Any]:
    """This DAG's create requests (the session simulator serves every test; the prompts are this DAG's own)."""
    return [e for e in sim.simulator.request_log if e.method == "POST" and prompt_of(e) in (FIRST, SECOND, EXTEND)]


HUMAN_PAUSE = 5.0
"""Seconds a test waits before it answers where the scheduler's log cannot say more (see :func:`human_pause`)."""


def human_pause(cluster: LocalAirflowCluster, run_id: str) -> None:
    """Wait before answering the question a take asks until the scheduler has taken in the end of the worker run
    that parked the task, as a person answering seconds later always finds it.

    Airflow (3.3.2 seen in CI) fails a task answered before that: the answer resumes it to ``queued``, then the
    scheduler reads the executor's event for the run that parked it, takes it for a task changed behind its back
    ("finished with state success, but the task instance's state attribute is queued") and fails it. The parking
    run can take seconds to end on a loaded machine, so a fixed pause is not enough: the scheduler's log says when
    the run ended ("Workload finished" on 3.3, "Task finished" before) and when its event was read. Where the log
    does not show the park (a release that does not forward task logs there), the test waits :data:`HUMAN_PAUSE`."""
    ti_id = str(cluster.task_instance(DAG_ID, run_id, "clip")["id"])
    log = cluster.log_dir / "scheduler.log"
    event = f"for task instance TaskInstanceKey(dag_id='{DAG_ID}', task_id='clip', run_id='{run_id}'"

    def taken_in() -> bool | None:
        lines = log.read_text().splitlines()
        parked = [i for i, line in enumerate(lines) if "Pausing task as" in line and ti_id in line]
        if not parked:
            return None
        ended = [i for i, line in enumerate(lines) if i > parked[-1] and "finished" in line and ti_id in line]
        ended = [i for i in ended if "Workload finished" in lines[i] or "Task finished" in lines[i]]
        return bool(ended) and any("Received executor event" in line and event in line for line in lines[ended[0] :])

    try:
        wait_for("the scheduler to take in the parked run", taken_in, timeout=20)
    except AssertionError:
        if not any("Pausing task as" in line and ti_id in line for line in log.read_text().splitlines()):
            time.sleep(HUMAN_PAUSE)  # the log does not show the park on this release
        else:
            wait_for("the scheduler to take in the parked run", taken_in, timeout=60)


def watch_the_take(page: Any, tab_url: str, generation_id: str | None = None) -> str:
    """Open the "Luma review" tab; the take's player has data and plays. Returns the take's generation id."""
    page.goto(tab_url)
    frame = page.frame_locator("iframe").first
    selector = f'video[data-generation-id="{generation_id}"]' if generation_id else "video"
    video = frame.locator(selector)
    video.wait_for(timeout=60_000)
    wait_for("the take to have data", lambda: video.evaluate("v => v.readyState >= 2 || null"), timeout=60)
    video.evaluate("v => v.play()")
    wait_for("the take to play", lambda: video.evaluate("v => v.currentTime > 0 || null"), timeout=30)
    return str(video.get_attribute("data-generation-id"))


def still_loaded(page: Any) -> int:
    """The Markdown body's still (the latest take's first frame) has loaded on the Required Actions page: its
    decoded width (``naturalWidth`` is 0 for an image that failed to load)."""
    image = page.locator('img[alt="the latest take"]').first
    image.wait_for(timeout=60_000)
    width = wait_for("the still to load", lambda: image.evaluate("i => i.complete && i.naturalWidth") or None, 60)
    return int(width)


def test_review_in_chromium(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer, e2e_output: Path
) -> None:
    require_chromium()
    cluster, sim = airflow_cluster, luma_sim
    before = len(creates(sim))
    run_id = cluster.trigger_dag(DAG_ID)
    cluster.wait_for_task_state(DAG_ID, run_id, "clip", "awaiting_input", timeout=180)
    dag, run = quote(DAG_ID, safe=""), quote(run_id, safe="")
    ti_url = f"{cluster.api_url}/dags/{dag}/runs/{run}/tasks/clip"
    hitl = f"{cluster.api_url}/api/v2/dags/{dag}/dagRuns/{run}/taskInstances/clip/-1/hitlDetails"
    review_api = f"{cluster.api_url}/luma/api/review/{dag}/{run}/clip/-1"
    admin = {"Authorization": f"Bearer {cluster.user_token('admin')}"}
    editor = {"Authorization": f"Bearer {cluster.user_token('editor')}"}

    # Not assigned: even an Admin cannot answer through the REST API.
    denied = httpx.patch(hitl, headers=admin, json={"chosen_options": ["Approve"], "params_input": {}})
    assert denied.status_code == 403, denied.text

    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        login(page, cluster.api_url, "editor", cluster.users["editor"][1])
        first = watch_the_take(page, f"{ti_url}/plugin/luma_review")
        human_pause(cluster, run_id)

        # The pending action: the Markdown body links to the gallery; re-render with a new prompt.
        page.goto(f"{ti_url}/required_actions")
        page.get_by_test_id("hitl-option-Re-render").wait_for(timeout=60_000)
        assert page.get_by_role("link", name="Luma renders gallery").count() == 1
        assert still_loaded(page) == 320, "the simulator's clip is 320 px wide (the still is never enlarged)"
        page.locator("#element_prompt").fill(SECOND)
        page.get_by_test_id("hitl-option-Re-render").click()

        def second_take_asked() -> dict[str, Any] | None:
            data: dict[str, Any] = httpx.get(review_api, headers=editor).json()
            ready = data["awaiting_review"] and len(data["takes"]) == 2 and data["generation_id"] != first
            return data if ready else None

        data = wait_for("the second take to await review", second_take_asked, timeout=180)
        assert [t["decision"] for t in data["takes"]] == ["re-render", "awaiting review"]
        assert data["takes"][0]["by"] == "editor" and data["takes"][1]["edits"] == {"prompt": SECOND}
        second = watch_the_take(page, f"{ti_url}/plugin/luma_review", data["generation_id"])
        human_pause(cluster, run_id)
        page.frame_locator("iframe").first.locator('#takes tr[data-take="2"]').wait_for()
        # The tracked picture changes only on request (LUMA_UPDATE_SCREENSHOT=1): tests never write tracked files.
        shot = cluster.log_dir / "review.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("LUMA_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, SCREENSHOT)

        # Not assigned: the UI does not let admin answer either.
        other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        login(other, cluster.api_url, "admin", cluster.users["admin"][1])
        other.goto(f"{ti_url}/required_actions")
        other.get_by_text("Review the Luma render of clip").first.wait_for(timeout=60_000)
        approve = other.get_by_test_id("hitl-option-Approve")
        if approve.count() and approve.first.is_enabled():
            approve.first.click()
            time.sleep(3)  # the UI's PATCH is answered 403; give it time to land if it were accepted
        assert httpx.get(hitl, headers=editor).json()["response_received"] is False
        assert cluster.task_instance(DAG_ID, run_id, "clip")["state"] == "awaiting_input"

        # The assigned reviewer approves the second take; the body, written at take 1, shows the second take's still.
        page.goto(f"{ti_url}/required_actions")
        page.get_by_test_id("hitl-option-Approve").wait_for(timeout=60_000)
        # Each take is its own file; with take 1's gone the still still loads: it is made from take 2's.
        (take_1,), (take_2,) = (list(e2e_output.rglob(f"clip-*{g}*.mp4")) for g in (first, second))
        take_1.unlink()
        assert still_loaded(page) == 320
        still = httpx.get(f"{cluster.api_url}/luma/still/{dag}/{run}/clip/-1", headers=editor)
        assert still.status_code == 200 and still.content[:3] == b"\xff\xd8\xff" and take_2.is_file()
        assert httpx.get(f"{cluster.api_url}/luma/still/{dag}/{run}/clip/-1").status_code == 401, "login required"
        page.get_by_test_id("hitl-option-Approve").click()
        assert cluster.wait_for_run(DAG_ID, run_id, timeout=180) == "success"

        # The approved take still plays once the task succeeded (its delivery record names it).
        after = httpx.get(review_api, headers=editor).json()
        assert after["generation_id"] == second and after["video"] and after["state"] == "success"
        assert watch_the_take(page, f"{ti_url}/plugin/luma_review", second) == second

        # The gallery lists both takes with their decisions, who and when.
        page.goto(f"{cluster.api_url}/luma/runs/{dag}/{run}")
        takes = page.locator('article[data-key="clip"] .takes li')
        takes.nth(1).wait_for(timeout=30_000)
        shown = takes.evaluate_all("items => items.map(i => [i.dataset.decision, i.textContent])")
        # The chain graph: the reviewed clip's node counts its rejected take; the extend hangs off it.
        node = page.locator('#chain g.node[data-key="clip"] text.sub')
        node.wait_for(timeout=30_000)
        chain_label = node.text_content()
        assert page.locator('#chain g.edge[data-from="clip"][data-to="longer"]').count() == 1

    made = creates(sim)[before:]
    assert [prompt_of(e) for e in made] == [FIRST, SECOND, EXTEND], "two takes bought, then the extend"
    assert (made[2].payload.get("payload") or {}).get("start_frame_generation_id") == second, "extends take 2"
    assert chain_label is not None and "1 take(s) rejected" in chain_label, chain_label
    assert cluster.xcom(DAG_ID, run_id, "publish") == second
    result = cluster.xcom(DAG_ID, run_id, "clip", key="generation_id")
    assert result == second != first
    assert [d for d, _ in shown] == ["re-render", "approved"]
    assert all("by editor at 20" in text for _, text in shown)
