"""Makespan: 20 mapped 60-s renders on a real Airflow with ``[core] parallelism=2``, deferrable (the default).

``LocalAirflowCluster`` (scheduler with LocalExecutor, dag-processor, triggerer, api-server) runs one DAG:
``LumaGenerateVideoOperator.partial(task_id="render").expand(prompt=[20 prompts])`` at 720p/5s against the
simulator at ``time_factor=1`` (a 60-s render), default ``poll_interval`` (10 s) and the default poll schedule.
The makespan is the DAG run's ``end_date - start_date`` from the REST API. Without deferral two worker slots can
hold only two renders at a time, so ``deferrable=False`` needs at least 20 / 2 × 60 s = 600 s (the lower bound;
not run, it would take 10 minutes). Also printed: the most renders deferred at the same moment, the worker-slot
seconds summed over all renders (method of ``worker_slots.py``), and how many "blocked the main thread" warnings
the triggerer logged.

    python benchmarks/makespan.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _airflow_bench import dags_folder, parse_ts, wait_counting_deferred, worker_log, worker_runs  # noqa: E402

from airflow_provider_luma.testing import LumaSimulatorServer  # noqa: E402
from tests.harness.cluster import LocalAirflowCluster  # noqa: E402

DAG_ID = "bench_makespan"
RENDERS, RENDER_SECONDS, SLOTS = 20, 60, 2
TARGET = 120.0
DAG = f'''
from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    LumaGenerateVideoOperator.partial(task_id="render", resolution="720p", duration="5s").expand(
        prompt=["makespan shot %d" % i for i in range({RENDERS})]
    )
'''


def main() -> int:
    folder = dags_folder(DAG_ID, DAG)
    with LumaSimulatorServer(time_factor=RENDER_SECONDS / 60.0) as sim:
        cluster = LocalAirflowCluster(
            folder,
            env={"AIRFLOW_CONN_LUMA_DEFAULT": sim.airflow_conn_json()},
            parallelism=SLOTS,
            extra_config={"core.max_active_tasks_per_dag": "64"},
        )
        try:
            cluster.start(timeout=240)
            run_id = cluster.trigger_dag(DAG_ID)
            state, most_deferred = wait_counting_deferred(cluster, DAG_ID, run_id, interval=1.0, timeout=900)
            run = cluster.dag_run(DAG_ID, run_id)
            makespan = parse_ts(run["end_date"]) - parse_ts(run["start_date"])
            slot_seconds = 0.0
            for i in range(RENDERS):
                runs = worker_runs(worker_log(cluster.log_dir, DAG_ID, run_id, "render", i))
                slot_seconds += sum(end - start for start, end in runs)
            blocked = cluster.component_logs().get("triggerer", "").count("was blocked for")
            bound = RENDERS / SLOTS * RENDER_SECONDS
            print(f"{RENDERS} mapped {RENDER_SECONDS}-s renders, [core] parallelism={SLOTS}: run {state}")
            print(f"makespan deferrable: {makespan:.0f} s   target <= {TARGET:.0f} s")
            print(f"deferrable=False lower bound: {RENDERS} / {SLOTS} x {RENDER_SECONDS} s = {bound:.0f} s")
            print(f"ratio lower bound / deferrable makespan: {bound / makespan:.1f}x")
            print(f"most renders deferred at once: {most_deferred}; slot seconds (all): {slot_seconds:.0f}")
            print(f"triggerer 'blocked' warnings: {blocked}")
            ok = state == "success" and makespan <= TARGET
            print("RESULT:", "PASS" if ok else "MISS")
            return 0 if ok else 1
        finally:
            cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
