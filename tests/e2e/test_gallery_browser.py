"""The "Luma renders" gallery in a real browser against a real api-server (the session cluster).

Headless Debian Chromium via playwright: log in, open a DAG run's "Luma renders" tab while renders are deferred
(shown as rendering), let the chained DAG finish, then every ``<video>`` plays (``readyState >= 2``), the chain
graph has the right edges, prompts are shown as text, seeking works (HTTP 206), the API key never reaches the
browser, and every route answers 401 without a login and 403 to a user denied the DAG.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_luma.testing import LumaSimulatorServer
from tests.e2e._browser import chromium, login, require_chromium, wait_for
from tests.harness.cluster import LocalAirflowCluster

DAG_ID = "luma_gallery_chain"  # denied to the session cluster's viewer (conftest.py)
SCREENSHOT = Path(__file__).parents[2] / "docs" / "gallery.png"
CHAIN = {("master", "extend", "extended"), ("extend", "reframe", "reframed"), ("reframe", "edit", "edited")}
CLIPS = {"master", "extend", "reframe", "edit", "variants[0]", "variants[1]"}

pytestmark = pytest.mark.e2e


@pytest.fixture
def gallery(
    airflow_cluster: LocalAirflowCluster, luma_sim: LumaSimulatorServer, sim_settings: Callable[..., None]
) -> tuple[LocalAirflowCluster, LumaSimulatorServer, Callable[..., None]]:
    """The session cluster (its ``viewer`` is denied this DAG), its simulator, and a way to change its settings."""
    require_chromium()  # fail before triggering anything: no browser, no point
    return airflow_cluster, luma_sim, sim_settings


def keys_in_page(frame: Any) -> list[str]:
    keys: list[str] = frame.locator("article.clip").evaluate_all("cards => cards.map(c => c.dataset.key)")
    return keys


def test_gallery_in_chromium(gallery: tuple[LocalAirflowCluster, LumaSimulatorServer, Callable[..., None]]) -> None:
    cluster, sim, configure = gallery
    configure(render_seconds=600.0)  # the first renders stay in flight until completed below
    run_id = cluster.trigger_dag(DAG_ID)
    for task, index in (("master", -1), ("variants", 0), ("variants", 1)):
        cluster.wait_for_task_state(DAG_ID, run_id, task, "deferred", map_index=index, timeout=120)
    run_path = f"{quote(DAG_ID, safe='')}/{quote(run_id, safe='')}"
    tab_url = f"{cluster.api_url}/dags/{quote(DAG_ID, safe='')}/runs/{quote(run_id, safe='')}/plugin/luma_renders"
    page_url = f"{cluster.api_url}/luma/runs/{run_path}"
    api_url = f"{cluster.api_url}/luma/api/runs/{run_path}"

    # The "Luma video" link points at the clip's place in the gallery while the task is still deferred.
    link = cluster.extra_links(DAG_ID, run_id, "master")["Luma video"]
    assert link == f"{page_url}#clip=master"

    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        login(page, cluster.api_url, "admin", cluster.users["admin"][1])

        # The tab on the DAG-run page of Airflow's own UI, showing the plugin page in its iframe.
        page.goto(tab_url)
        frame = page.frame_locator("iframe").first
        try:
            frame.locator('article[data-key="master"][data-status="rendering"]').wait_for(timeout=60_000)
        except Exception:
            page.screenshot(path=str(cluster.log_dir / "gallery-failure.png"))
            (cluster.log_dir / "gallery-failure.html").write_text(page.content())
            print("api:", httpx.get(api_url, cookies={c["name"]: c["value"] for c in context.cookies()}).text[:3000])
            raise
        assert page.get_by_text("Luma renders", exact=True).filter(visible=True).count() >= 1, "the run's tab"
        assert "rendering" in frame.locator('article[data-key="master"] .badge').inner_text()
        assert frame.locator("body").get_attribute("data-in-flight") == "1"

        configure(render_seconds=None)
        for record in sim.simulator.generations():
            sim.simulator.complete_now(record.request_id)
        assert cluster.wait_for_run(DAG_ID, run_id, timeout=300) == "success"

        # The page refreshes by itself while renders are in flight: wait for every clip to be done.
        frame.locator("body[data-in-flight='0']").wait_for(timeout=30_000)
        keys = set(frame.locator("article.clip").evaluate_all("cards => cards.map(c => c.dataset.key)"))
        assert keys == CLIPS
        assert frame.locator('article[data-status="done"]').count() == len(CLIPS)
        frame.locator("video").first.wait_for()

        def ready_states() -> list[int] | None:
            states: list[int] = frame.locator("video").evaluate_all("vs => vs.map(v => v.readyState)")
            return states if len(states) == len(CLIPS) and min(states) >= 2 else None

        ready = wait_for("every video to have data", ready_states, timeout=60)
        assert ready and min(ready) >= 2
        edges = frame.locator("#chain g.edge").evaluate_all(
            "gs => gs.map(g => [g.dataset.from, g.dataset.to, g.dataset.kind])"
        )
        assert {tuple(e) for e in edges} == CHAIN
        # Cards in the chain's order; each player in its clip's shape (the 9:16 reframe upright); the chain box
        # keeps its distance from the grid.
        order = [k for k in keys_in_page(frame) if k in {"master", "extend", "reframe", "edit"}]
        assert order == ["master", "extend", "reframe", "edit"]
        box = frame.locator('article[data-key="reframe"] video').bounding_box()
        wide = frame.locator('article[data-key="master"] video').bounding_box()
        assert box and wide and box["height"] > box["width"] and wide["width"] > wide["height"]
        chain, grid = frame.locator("#chain").bounding_box(), frame.locator("#clips").bounding_box()
        assert chain and grid and grid["y"] - (chain["y"] + chain["height"]) >= 12
        # Prompts are user text: shown literally, never run.
        prompt = frame.locator('article[data-key="variants[0]"] .prompt').inner_text()
        assert prompt.startswith("<script>window.pwned=1</script>")
        assert frame.locator("script").count() == 2 and not dialogs  # common.js and gallery.js
        assert page.evaluate("() => window.frames[0].pwned") is None
        # The tracked picture changes only on request (LUMA_UPDATE_SCREENSHOT=1): tests never write tracked files.
        shot = cluster.log_dir / "gallery.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("LUMA_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, SCREENSHOT)

        # The extra link opens the standalone page at the clip.
        page.goto(link)
        page.locator("article.clip.target[data-key='master']").wait_for()
        html = page.content()
        cookies = {c["name"]: c["value"] for c in context.cookies()}

    data = httpx.get(api_url, cookies=cookies).json()
    clips = {c["key"]: c for c in data["clips"]}
    assert clips["master"]["stored"] and not clips["variants[0]"]["stored"]
    assert clips["master"]["estimated_cost_usd"] and data["total_estimated_cost_usd"] > 0
    runs = httpx.get(f"{cluster.api_url}/luma/api/runs", cookies=cookies).json()["runs"]
    assert {"dag_id": DAG_ID, "run_id": run_id, "renders": len(CLIPS)}.items() <= runs[0].items()

    # Seeking: a stored copy answers byte ranges; a presigned-only clip redirects to a freshly minted URL.
    video = f"{cluster.api_url}/luma/{clips['master']['video']}"
    part = httpx.get(video, cookies=cookies, headers={"Range": "bytes=100-199"})
    assert (
        part.status_code == 206
        and len(part.content) == 100
        and part.headers["content-range"].startswith("bytes 100-199/")
    )
    fresh = httpx.get(f"{cluster.api_url}/luma/{clips['variants[1]']['video']}", cookies=cookies)
    assert fresh.status_code == 307 and fresh.headers["location"].startswith(sim.root_url)

    # The API key never reaches the browser.
    bodies = [html, str(data), str(runs), part.headers, fresh.headers]
    assert all(sim.api_key not in str(b) for b in bodies)

    # Access control on every route, the video stream included.
    routes = [page_url, api_url, video, f"{cluster.api_url}/luma/runs", f"{cluster.api_url}/luma/api/runs",
              f"{cluster.api_url}/luma/static/gallery.js"]  # fmt: skip
    assert {r: httpx.get(r).status_code for r in routes} == dict.fromkeys(routes, 401)
    viewer = {"Authorization": f"Bearer {cluster.user_token('viewer')}"}
    assert {r: httpx.get(r, headers=viewer).status_code for r in routes[:3]} == dict.fromkeys(routes[:3], 403)
    # The session cluster holds other tests' runs, which the viewer may see; the denied DAG's are not listed.
    listed = {r["dag_id"] for r in httpx.get(routes[4], headers=viewer).json()["runs"]}
    assert DAG_ID not in listed, "the denied DAG is not listed"
    assert httpx.get(f"{cluster.api_url}/api/v2/dags/{DAG_ID}", headers=viewer).status_code == 403
