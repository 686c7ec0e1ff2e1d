"""The exact run budget without serialising the run: a capped fan-out against the same fan-out uncapped.

One real Airflow (``LocalAirflowCluster``: scheduler with LocalExecutor at ``[core] parallelism=8``,
dag-processor, triggerer, api-server) and the simulator with 10-s renders. Three DAGs, triggered at the same
moment so they share the same slots and the same machine ("side by side in one run"): 20 mapped 540p renders
($0.15) each stored to a local ``output_path`` (a download per render), one with ``max_run_cost_usd=1.50`` (ten
renders: the issue's case), one with ``max_run_cost_usd=3.00`` (room for all twenty: what taking turns costs when
every render is bought) and one without. Each DAG run's makespan is its ``end_date - start_date`` (REST API).

Goal (issue 20): the capped makespan ≤ 1.3 × the uncapped one, and exactly 10 of 20 bought under the cap.
``--pool`` adds a round of the capped DAG in a one-slot pool that does not count deferred tasks (how the cap was
made exact before the budget queue) beside the uncapped one, for comparison.

    python benchmarks/run_budget.py [--rounds 2] [--pool]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _airflow_bench import dags_folder, parse_ts  # noqa: E402

from airflow_provider_luma.testing import LumaSimulatorServer  # noqa: E402
from tests.harness.cluster import LocalAirflowCluster  # noqa: E402

CAPPED, ROOMY, UNCAPPED = "bench_budget_capped", "bench_budget_roomy", "bench_budget_uncapped"
POOLED, POOL = "bench_budget_pooled", "bench_pool"
RENDERS, RENDER_SECONDS, SLOTS, RATIO_GOAL = 20, 10, 8, 1.3
DAGS = f'''
from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

OUT = os.environ["BENCH_OUTPUT_DIR"]
for dag_id, extra in [
    ("{CAPPED}", {{"max_run_cost_usd": 1.50}}),
    ("{ROOMY}", {{"max_run_cost_usd": 3.00}}),
    ("{UNCAPPED}", {{}}),
    ("{POOLED}", {{"max_run_cost_usd": 1.50, "pool": "{POOL}"}}),
]:
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
             max_active_tasks={RENDERS}, default_args={{"retries": 0, **extra}}):
        LumaGenerateVideoOperator.partial(
            task_id="render", resolution="540p", poll_interval=1.0,
            output_path=OUT + "/" + dag_id + "/{{{{ run_id }}}}/{{map_index}}.mp4",
        ).expand(prompt=["budget bench " + dag_id + " %d" % i for i in range({RENDERS})])
'''


def makespan(cluster: LocalAirflowCluster, dag_id: str, run_id: str) -> tuple[float, str]:
    run = cluster.dag_run(dag_id, run_id)
    return parse_ts(run["end_date"]) - parse_ts(run["start_date"]), str(run["state"])


def bought(sim: LumaSimulatorServer, dag_id: str, since: int) -> int:
    return sum(
        1
        for r in sim.simulator.create_requests()[since:]
        if f"budget bench {dag_id} " in str((r.payload or {}).get("payload", {}).get("prompt", ""))
    )


def _reason(log: str) -> str:
    if "above max_run_cost_usd" in log:
        return "budget"
    errors = [line for line in log.splitlines() if '"level":"error"' in line]
    return errors[-1][:600] if errors else "no error line; log ends: " + log[-800:]


def run_side_by_side(
    cluster: LocalAirflowCluster, sim: LumaSimulatorServer, output: Path, dag_ids: tuple[str, ...]
) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
    """Trigger ``dag_ids`` at once; per DAG: makespan, renders bought, files stored."""
    since = len(sim.simulator.create_requests())
    runs = {dag_id: cluster.trigger_dag(dag_id) for dag_id in dag_ids}
    for dag_id, run_id in runs.items():
        cluster.wait_for_run(dag_id, run_id, timeout=900)
    spans = {dag_id: makespan(cluster, dag_id, run_id)[0] for dag_id, run_id in runs.items()}
    for dag_id, run_id in runs.items():  # say why an element failed (beyond the cap's refusals)
        failed = [t["map_index"] for t in cluster.task_instances(dag_id, run_id) if t["state"] == "failed"]
        reasons = {_reason(cluster.task_log(dag_id, run_id, "render", map_index=i)) for i in failed}
        if reasons - {"budget"}:
            print(f"{dag_id}: {len(failed)} failed: {sorted(reasons)}")
    bought_n = {dag_id: bought(sim, dag_id, since) for dag_id in dag_ids}
    stored = {dag_id: len(list((output / dag_id / run_id).glob("*.mp4"))) for dag_id, run_id in runs.items()}
    return spans, bought_n, stored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pool", action="store_true")
    args = parser.parse_args()
    folder = dags_folder("bench_run_budget", DAGS)
    output = Path(tempfile.mkdtemp(prefix="luma-bench-budget-out-"))
    with LumaSimulatorServer(render_seconds=RENDER_SECONDS) as sim:
        cluster = LocalAirflowCluster(
            folder,
            env={
                "AIRFLOW_CONN_LUMA_DEFAULT": sim.airflow_conn_json(follow_speed=True),
                "BENCH_OUTPUT_DIR": str(output),
            },
            parallelism=SLOTS,
            extra_config={"core.max_active_tasks_per_dag": "64"},
        )
        ratios: list[float] = []
        roomy: list[float] = []
        ok = True
        try:
            cluster.start(timeout=240)
            for dag_id in (CAPPED, ROOMY, UNCAPPED, POOLED):
                cluster.wait_for_dag(dag_id)
            for n in range(1, args.rounds + 1):
                spans, bought_n, stored = run_side_by_side(cluster, sim, output, (CAPPED, ROOMY, UNCAPPED))
                ratios.append(spans[CAPPED] / spans[UNCAPPED])
                roomy.append(spans[ROOMY] / spans[UNCAPPED])
                ok &= bought_n[CAPPED] == 10 and stored[CAPPED] == 10
                ok &= bought_n[ROOMY] == bought_n[UNCAPPED] == stored[ROOMY] == stored[UNCAPPED] == RENDERS
                print(
                    f"round {n}: capped at 10 renders {spans[CAPPED]:.1f} s ({bought_n[CAPPED]} of {RENDERS} "
                    f"bought, {stored[CAPPED]} stored) | capped with room for 20 {spans[ROOMY]:.1f} s "
                    f"({bought_n[ROOMY]} bought) | uncapped {spans[UNCAPPED]:.1f} s ({bought_n[UNCAPPED]} bought) | "
                    f"ratios to uncapped {ratios[-1]:.2f} / {roomy[-1]:.2f}"
                )
            if args.pool:
                cluster.api("POST", "pools", json={"name": POOL, "slots": 1, "include_deferred": False})
                spans, bought_n, _ = run_side_by_side(cluster, sim, output, (POOLED, UNCAPPED))
                print(
                    f"for comparison, capped at 10 renders in a one-slot pool: {spans[POOLED]:.1f} s "
                    f"({bought_n[POOLED]} bought) | uncapped beside it {spans[UNCAPPED]:.1f} s | ratio "
                    f"{spans[POOLED] / spans[UNCAPPED]:.2f}"
                )
        finally:
            cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(output, ignore_errors=True)
    worst = max(ratios)
    met = ok and worst <= RATIO_GOAL
    print(
        f"capped / uncapped makespan: median {statistics.median(ratios):.2f}, worst {worst:.2f} "
        f"(goal <= {RATIO_GOAL}); with room for all 20: median {statistics.median(roomy):.2f}, worst "
        f"{max(roomy):.2f}; exactly 10 of {RENDERS} bought under the cap and every store done in every round: {ok}"
    )
    print("RESULT:", "PASS" if met else "MISS")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
