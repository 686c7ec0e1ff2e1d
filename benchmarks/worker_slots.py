"""Worker-slot seconds per render: deferrable vs ``deferrable=False``, on a real Airflow, in one DAG run.

A real scheduler (LocalExecutor), dag-processor, triggerer and api-server (``LocalAirflowCluster``) run one DAG
with six tasks against the simulator at ``time_factor=0.5`` (720p/5s = 30 s, 1080p/5s = 60 s, 1080p/10s = 120 s):
a deferrable and a ``deferrable=False`` render of each length, default ``poll_interval`` (10 s).

**Method.** A deferral splits one task try into two worker runs (execute → defer; resume → execute_complete);
``end_date - start_date`` of the task instance spans the whole wait, so it is not the slot time. Instead the worker's
log file of the try (``attempt=1.log``; the triggerer writes its own ``.trigger.*`` files) is read: Airflow 3.3
writes JSON lines with timestamps, and every worker run starts with a ``::group::Pre Execute`` line. A run lasts
from that line to its last line (``Pausing task as DEFERRED`` / the post-execute lines); the slot seconds of a
render are the sum over its runs. This slightly undercounts the slot (the executor forks the task process a moment
before the first line and reaps it after the last) by the same small amount in both modes.

    python benchmarks/worker_slots.py
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _airflow_bench import dags_folder, worker_log, worker_runs  # noqa: E402

from airflow_provider_luma.testing import LumaSimulatorServer  # noqa: E402
from tests.harness.cluster import LocalAirflowCluster  # noqa: E402

DAG_ID = "bench_worker_slots"
LENGTHS = {"r30": ("720p", "5s", 30), "r60": ("1080p", "5s", 60), "r120": ("1080p", "10s", 120)}
TARGET = 3.0
DAG = f'''
from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    for label, (resolution, duration, _) in {LENGTHS!r}.items():
        for deferrable in (True, False):
            LumaGenerateVideoOperator(
                task_id=("deferrable_" if deferrable else "blocking_") + label,
                prompt="worker-slot benchmark " + label,
                resolution=resolution,
                duration=duration,
                deferrable=deferrable,
            )
'''


def main() -> int:
    keep = "--keep" in sys.argv
    folder = dags_folder(DAG_ID, DAG)
    with LumaSimulatorServer(time_factor=0.5) as sim:
        cluster = LocalAirflowCluster(folder, env={"AIRFLOW_CONN_LUMA_DEFAULT": sim.airflow_conn_json()}, parallelism=6)
        try:
            cluster.start(timeout=240)
            started = time.monotonic()
            run_id = cluster.trigger_dag(DAG_ID)
            state = cluster.wait_for_run(DAG_ID, run_id, timeout=600)
            took, ready = time.monotonic() - started, cluster.startup_seconds or 0.0
            print(f"DAG run {state} in {took:.0f} s (cluster ready in {ready:.0f} s)")
            rows = []
            for label, (resolution, duration, seconds) in LENGTHS.items():
                for mode in ("deferrable", "blocking"):
                    task_id = f"{mode}_{label}"
                    runs = worker_runs(worker_log(cluster.log_dir, DAG_ID, run_id, task_id))
                    slot = sum(end - start for start, end in runs)
                    rows.append((mode, seconds, resolution, duration, [end - start for start, end in runs], slot))
            print(f"{'mode':<11} {'render':>6} {'worker runs':>11} {'slot seconds':>12}")
            for mode, seconds, resolution, duration, runs_s, slot in rows:
                each = " + ".join(f"{r:.2f}" for r in runs_s)
                print(f"{mode:<11} {seconds:>5}s {len(runs_s):>11} {slot:>12.2f}   ({resolution}/{duration}: {each} s)")
            deferrable = [r[5] for r in rows if r[0] == "deferrable"]
            blocking = [r[5] for r in rows if r[0] == "blocking"]
            print(
                f"target: deferrable <= {TARGET:.0f} s per render, same for 30/60/120-s renders -> "
                f"{', '.join(f'{s:.2f}' for s in deferrable)} s (spread {max(deferrable) - min(deferrable):.2f} s); "
                f"deferrable=False: {', '.join(f'{s:.0f}' for s in blocking)} s"
            )
            ratio = sum(blocking) / sum(deferrable) if sum(deferrable) else float("nan")
            print(f"ratio blocking / deferrable slot seconds: {ratio:.0f}x")
            ok = state == "success" and max(deferrable) <= TARGET
            if keep:
                print(f"kept {cluster.home}")
            print("RESULT:", "PASS" if ok else "MISS")
            return 0 if ok else 1
        finally:
            if keep:
                cluster._owns_home = False
            cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
