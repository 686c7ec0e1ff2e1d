"""Gallery benchmark: a run with 100 renders, seeded straight into a migrated SQLite metadata database.

Serves Airflow's real api-server app (``create_app``, plugins mounted) with uvicorn in-process, then prints

* the server time of ``GET /luma/api/runs/{dag}/{run}`` (the page's only data request): cold and warm median/max,
* Chromium's first contentful paint and the time until every clip card is on screen (``luma-gallery-rendered``
  mark), both measured from navigation start, headless Debian Chromium via playwright.

Run: ``.venv/bin/python benchmarks/gallery.py`` (about 20 s; ``--renders N`` to change the size).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAG_ID, RUN_ID = "luma_bench_gallery", "manual__2026-01-01T00:00:00+00:00"


def configure(home: Path, port: int) -> dict[str, str]:
    """Environment of an in-process Airflow on a private SQLite database (everyone admin, no login)."""
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": "bench-" + "x" * 64,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return env


def seed(db: Path, renders: int, video: Path) -> None:
    """One DAG run with ``renders`` successful Luma task instances (a mapped extend chain), their XComs and
    rendered fields, straight into the tables the gallery reads."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO dag_run (id, dag_id, run_id, run_type, run_after, state, start_date, clear_number, span_status)"
        " VALUES (1, ?, ?, 'manual', ?, 'success', ?, 0, 'ended')",
        (DAG_ID, RUN_ID, start, start),
    )
    for i in range(renders):
        gid = f"gen-{i:04d}"
        began = start + timedelta(seconds=i)
        con.execute(
            "INSERT INTO task_instance (id, task_id, dag_id, run_id, map_index, start_date, end_date, state,"
            " try_number, max_tries, pool, pool_slots, operator, span_status)"
            " VALUES (?, 'render', ?, ?, ?, ?, ?, 'success', 1, 0, 'default_pool', 1, ?, 'ended')",
            (uuid.uuid4().hex, DAG_ID, RUN_ID, i, began, began + timedelta(seconds=40), "LumaExtendVideoOperator"),
        )
        fields = {
            "prompt": f"Clip {i}: the camera drifts on <over> the bay",
            "luma_conn_id": "luma_default",
            # What the worker records (luma_delivery): the only thing the video route opens.
            "luma_delivery": {
                "request_id": f"req-{i:04d}", "generation_id": gid, "model": "luma-ray-3-2-generate",
                "backend": "gmi", "video_path": f"file://{video}", "exr_path": None,
            },
        }  # fmt: skip
        con.execute(
            "INSERT INTO rendered_task_instance_fields (dag_id, task_id, run_id, map_index, rendered_fields)"
            " VALUES (?, 'render', ?, ?, ?)",
            (DAG_ID, RUN_ID, i, json.dumps(fields)),
        )
        result = {
            "generation_id": gid,
            "request_id": f"req-{i:04d}",
            "model": "luma-ray-3-2-generate",
            "backend": "gmi",
            "mode": "extend_forward" if i else "text_to_video",
            "source_generation_ids": [f"gen-{i - 1:04d}"] if i else [],
            "video_url": None,
            "video_path": f"file://{video}",
            "estimated_cost_usd": 0.36,
            "billed_blocks": 1,
            "resolution": "720p",
            "duration": "5s",
            "aspect_ratio": "16:9",
            "hdr": False,
            "video_bytes": video.stat().st_size,
        }
        for key, value in {**result, "return_value": result}.items():
            con.execute(
                "INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp)"
                " VALUES (1, 'render', ?, ?, ?, ?, ?, ?)",
                (i, key, DAG_ID, RUN_ID, json.dumps(value), began),
            )
    con.commit()
    con.close()


def serve(port: int) -> Any:
    """Airflow's api-server app (core API + plugins) on uvicorn in a thread; returns the server."""
    import uvicorn
    from airflow.api_fastapi.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(apps="core"), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def server_times(url: str, repeat: int) -> tuple[float, list[float], int]:
    import httpx

    with httpx.Client(timeout=30) as client:
        started = time.perf_counter()
        first = client.get(url)
        cold = time.perf_counter() - started
        first.raise_for_status()
        warm = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            warm.append(time.perf_counter() - started)
    return cold, warm, len(first.json()["clips"])


def paint_times(page_url: str, repeat: int) -> list[tuple[float, float, int]]:
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from _browser import chromium

    out = []
    with chromium() as browser:
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            data_requests: list[str] = []
            page.on("request", lambda r, seen=data_requests: seen.append(r.url) if "/luma/api/" in r.url else None)
            page.goto(page_url)
            page.wait_for_selector("body[data-loaded='1']")  # no wait_for_function: the page's CSP forbids eval
            fcp, rendered = page.evaluate(
                "() => [performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,"
                " performance.getEntriesByName('luma-gallery-rendered')[0].startTime]"
            )
            out.append((fcp / 1000, rendered / 1000, len(data_requests)))
            page.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the test harness is test-side code, importable from the checkout
    from airflow_provider_luma.testing._media import sample_mp4
    from tests.harness import _cluster_env as ce

    home = Path(tempfile.mkdtemp(prefix="luma-bench-gallery-"))
    (port,) = ce.free_ports(1)
    env = configure(home, port)
    ce.prepare_database(home / "airflow.db", {**os.environ, **env}, home / "migrate.log", timeout=300,
                        cache_key_items={"bench": "gallery"})  # fmt: skip
    video = home / "clip.mp4"
    video.write_bytes(sample_mp4())
    seed(home / "airflow.db", args.renders, video)
    server = serve(port)
    base = f"http://127.0.0.1:{port}/luma"
    cold, warm, clips = server_times(f"{base}/api/runs/{DAG_ID}/{RUN_ID}", args.repeat)
    median = statistics.median(warm)
    print(f"{clips} renders, GET /luma/api/runs/...: cold {cold * 1000:.0f} ms, warm median {median * 1000:.0f} ms, "
          f"max {max(warm) * 1000:.0f} ms ({args.repeat} requests)")  # fmt: skip
    paints = paint_times(f"{base}/runs/{DAG_ID}/{RUN_ID}", 5)
    fcps, rendered, requests = zip(*paints, strict=True)
    print(f"Chromium (5 page loads): first contentful paint median {statistics.median(fcps) * 1000:.0f} ms "
          f"(max {max(fcps) * 1000:.0f}); all {clips} cards rendered median {statistics.median(rendered) * 1000:.0f} "
          f"ms (max {max(rendered) * 1000:.0f}); data requests per load: {max(requests)}")  # fmt: skip
    server.should_exit = True
    ok = max(warm) <= 0.3 and max(fcps) <= 1.0 and max(requests) <= 2
    print("within budget (server <= 300 ms, first paint <= 1 s, <= 2 data requests)" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
