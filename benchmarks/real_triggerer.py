"""200 renders deferred at once into one real triggerer: no "blocked the main thread" warnings.

``LocalAirflowCluster`` (scheduler with LocalExecutor ``parallelism=4``, dag-processor, triggerer, api-server) runs
``LumaGenerateVideoOperator.partial(task_id="render").expand(prompt=[200 prompts])`` at 720p/5s against the
simulator at ``time_factor=1`` (60-s renders), default ``poll_interval`` and schedule. Counted afterwards: the
triggerer's "Triggerer's async thread was blocked for … seconds" warnings (``[triggerer]
blocked_main_thread_warning_threshold``, default 0.2 s), the most renders deferred at once and the run's wall time.

    python benchmarks/real_triggerer.py [--renders 200]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _airflow_bench import dags_folder, wait_counting_deferred  # noqa: E402

from airflow_provider_luma.testing import LumaSimulatorServer  # noqa: E402
from tests.harness.cluster import LocalAirflowCluster  # noqa: E402

DAG_ID = "bench_real_triggerer"
DAG = """
from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    LumaGenerateVideoOperator.partial(task_id="render", resolution="720p", duration="5s").expand(
        prompt=["triggerer load %d" % i for i in range({renders})]
    )
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=200)
    args = parser.parse_args()
    folder = dags_folder(DAG_ID, DAG.format(dag_id=DAG_ID, renders=args.renders))
    with LumaSimulatorServer(time_factor=1.0) as sim:
        cluster = LocalAirflowCluster(
            folder,
            env={"AIRFLOW_CONN_LUMA_DEFAULT": sim.airflow_conn_json()},
            parallelism=4,
            extra_config={"core.max_active_tasks_per_dag": "1024"},
        )
        try:
            cluster.start(timeout=240)
            started = time.monotonic()
            run_id = cluster.trigger_dag(DAG_ID)
            state, most_deferred = wait_counting_deferred(cluster, DAG_ID, run_id, interval=2.0, timeout=1200)
            triggerer_log = cluster.component_logs().get("triggerer", "")
            blocked = triggerer_log.count("was blocked for")
            failed = sum(t["state"] != "success" for t in cluster.task_instances(DAG_ID, run_id))
            took = time.monotonic() - started
            print(f"{args.renders} mapped 60-s renders, parallelism=4: run {state} in {took:.0f} s")
            print(f"most renders deferred at once: {most_deferred}; task instances not successful: {failed}")
            print(f"triggerer 'blocked the main thread' warnings: {blocked}   target 0")
            lines = triggerer_log.splitlines()
            for number in (n for n, line in enumerate(lines) if "was blocked for" in line):
                for line in lines[max(0, number - 6) : number + 1]:  # what the triggerer did just before
                    print("   ", line.strip()[:240])
            ok = state == "success" and blocked == 0
            print("RESULT:", "PASS" if ok else "MISS")
            return 0 if ok else 1
        finally:
            cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
