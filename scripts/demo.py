"""`make demo`: the social-cut DAG end to end on a real local Airflow, against the embedded simulator.

Starts the Luma simulator on 127.0.0.1, a scheduler + dag-processor + triggerer + api-server (LocalExecutor,
SQLite) in ``.demo/airflow-home``, runs ``example_luma_social_cut`` (a 16:9 master → extend → reframe to 9:16 →
edit to a film look: the whole Ray 3.2 family, chained by XCom), which stores every clip under
``./output/<run id>/`` (or ``$LUMA_DEMO_OUTPUT``), and prints each task's model, mode, status, estimated cost and
stored MP4, and the run's estimated total (from the DAG's ``cost_report`` task), then the run's gallery URL (the
"Luma renders" page: every clip playing, its prompt, cost and the chain). Run from a terminal, Airflow stays up until
Ctrl-C so the page can be opened (no login: the demo's Airflow makes everyone admin); otherwise everything is
stopped at the end. The Airflow logs stay in ``.demo/``. ``LUMA_DEMO_DAG=example_luma_content_pipeline`` runs the
five-clip generate pipeline instead; ``LUMA_DEMO_API=luma_agents`` runs it against the simulator's native Luma
Agents API front (the connection then carries ``{"api": "luma_agents"}``).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the cluster harness is test-side code (tests/harness), importable from the checkout

from airflow_provider_luma.plugins import gallery_url  # noqa: E402
from airflow_provider_luma.testing import LumaSimulatorServer  # noqa: E402
from airflow_provider_luma.version_compat import AIRFLOW_V_3_1_PLUS  # noqa: E402
from tests.harness.cluster import LocalAirflowCluster  # noqa: E402

DEMO = ROOT / ".demo"
OUTPUT = Path(os.environ.get("LUMA_DEMO_OUTPUT", ROOT / "output")).resolve()
DAGS = {
    "example_luma_social_cut": ["master", "extend", "reframe_9x16", "edit_film_look"],
    "example_luma_content_pipeline": [
        "opening_shot",
        "closing_shot",
        "extend_forward",
        "extend_backward",
        "interpolate",
    ],
}
DAG_ID = os.environ.get("LUMA_DEMO_DAG", "example_luma_social_cut")
API = os.environ.get("LUMA_DEMO_API", "gmi")
TASKS = DAGS[DAG_ID]


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    dags = DEMO / "dags"
    dags.mkdir(parents=True)
    shutil.copy(ROOT / "example_dags" / f"{DAG_ID}.py", dags)

    # 0.15: a 5-s 720p render takes 9 s. Much shorter renders run into an Airflow 3.3.2 executor-event race
    # (see tests/e2e/conftest.py) that costs a task retry (which re-attaches for free, but slows the demo).
    with LumaSimulatorServer(time_factor=0.15, api=API) as sim:
        print(f"Luma simulator ({API}): {sim.base_url} (renders about 7x faster than real)")
        env = {
            "AIRFLOW_CONN_LUMA_DEFAULT": sim.airflow_conn_json(),
            "LUMA_EXAMPLE_POLL_INTERVAL": "1",
            "LUMA_EXAMPLE_OUTPUT": str(OUTPUT),
        }
        with LocalAirflowCluster(dags, home=DEMO / "airflow-home", env=env) as cluster:
            print(f"Airflow started in {cluster.startup_seconds:.1f} s: scheduler, dag-processor, triggerer, "
                  f"api-server at {cluster.api_url}")  # fmt: skip
            cluster.wait_for_dag(DAG_ID)
            started = time.monotonic()
            run_id = cluster.trigger_dag(DAG_ID)
            print(f"Triggered {DAG_ID} run {run_id}; waiting (each task defers while Luma renders) ...")
            state = cluster.wait_for_run(DAG_ID, run_id, timeout=300)
            elapsed = time.monotonic() - started
            states = {ti["task_id"]: ti["state"] for ti in cluster.task_instances(DAG_ID, run_id)}
            rows = []
            for task in TASKS:
                result = cluster.xcom(DAG_ID, run_id, task) if states.get(task) == "success" else None
                rows.append((task, result or {}, states.get(task) or "-"))
            report = cluster.xcom(DAG_ID, run_id, "cost_report") if states.get("cost_report") == "success" else {}
            print_table(state, elapsed, rows, report, run_id)
            print(f"\nGallery: {gallery_url(cluster.api_url, DAG_ID, run_id)}")
            if AIRFLOW_V_3_1_PLUS:  # Airflow 3.0 has no plugin tabs: the gallery's pages only
                print(f"  (also the 'Luma renders' tab of the run's page in Airflow at {cluster.api_url})")
            if sys.stdin.isatty() and sys.stdout.isatty():
                print("Airflow keeps running so you can open it; press Ctrl-C to stop.")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    print("\nStopping Airflow ...")
    return 0 if state == "success" else 1


def print_table(
    state: str, elapsed: float, rows: list[tuple[str, dict[str, Any], str]], report: Any, run_id: str
) -> None:
    """The per-task table and the estimated total."""
    print(f"\nDAG run {state} in {elapsed:.0f} s\n")
    header = f"{'task':<16} {'model':<22} {'mode':<16} {'status':<8} {'est. cost':>9}  stored MP4"
    print(header)
    print("-" * len(header))
    for task, result, status in rows:
        cost = result.get("estimated_cost_usd")
        price = f"${float(cost):.2f}" if cost is not None else "unknown"
        path = str(result.get("video_path") or "-").removeprefix("file://")
        size = f" ({Path(path).stat().st_size:,} bytes)" if Path(path).is_file() else ""
        model = result.get("model", "-")
        print(f"{task:<16} {model:<22} {result.get('mode', '-'):<16} {status:<8} {price:>9}  {path}{size}")
    total = report.get("total_estimated_cost_usd")
    total_text = f"${total:.2f}" if total is not None else "n/a"
    unpriced = report.get("unpriced_renders") or 0
    note = f", plus {unpriced} with no published price (edit/reframe)" if unpriced else ""
    print(f"{'':<65}{total_text:>9}  estimated total of {report.get('renders', 0)} render(s){note}")
    print(f"\nClips: {OUTPUT / run_id}  (play one with any video player, e.g. ffplay or VLC)")
    print(f"Airflow logs: {DEMO / 'airflow-home' / 'logs'}")


if __name__ == "__main__":
    sys.exit(main())
