"""Worker-slot seconds per task: a deferrable render against ``DateTimeSensorAsync``, side by side, warm Celery.

A real ``DistributedAirflowCluster`` (PostgreSQL, Redis, CeleryExecutor with 2 workers x 2 slots, 2 triggerers,
scheduler, dag-processor, api-server) runs one DAG file with two DAGs of ``--tasks`` tasks each, at most 2 running
at a time (``max_active_tasks=2``):

* ``bench_slots_render``: ``LumaGenerateVideoOperator`` 540p renders against the simulator (3-s renders, 1-s polls),
  no ``output_path``;
* ``bench_slots_sensor``: ``DateTimeSensorAsync`` waiting 3 s: Airflow's floor for a task that defers once and
  resumes once.

After a warm-up run of each, the two DAGs run in alternating rounds (render first in odd rounds, sensor first in
even ones), so both see the same machine load on average.

**Method.** Celery logs how long each workload held its slot (``Task execute_workload[<id>] succeeded in <s>s``,
stamped with the time it finished); the ``[<id>] Executing workload`` line names the task instance. The task's own
log (``attempt=1.log``) has one run per workload (each starts with ``::group::Pre Execute``). The time from a run's
last task-log line to Celery's "succeeded" is bimodal: tens of ms (the last state call, the process exit), or about
``[workers] min_heartbeat_interval`` when Airflow's task supervisor sleeps in ``select()`` after the task process
exited (see docs/performance.md), whatever the task ran. A tail of ``STALL_FROM`` (0.5 s) or more is that **exit
stall**: reported apart; **slot seconds** are Celery's time minus it. Per task, the
workloads are summed; per kind, the figure is the median over tasks (the mean is printed too).

    python benchmarks/worker_slots.py [--rounds 4] [--tasks 12] [--keep]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _airflow_bench import dags_folder, worker_log, worker_runs  # noqa: E402

from airflow_provider_luma.testing import LumaSimulatorServer  # noqa: E402
from tests.harness.distributed import WORKERS, DistributedAirflowCluster  # noqa: E402

TARGET = 1.5  # render slot seconds / sensor slot seconds
KINDS = {"render": "bench_slots_render", "sensor": "bench_slots_sensor"}
DAG = """
from __future__ import annotations

import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
TASKS = {tasks}
with DAG("bench_slots_render", schedule=None, start_date=START, catchup=False, max_active_tasks=2):
    for i in range(TASKS):
        LumaGenerateVideoOperator(
            task_id=f"task_{{i:02d}}", prompt=f"slot bench {{i}}", resolution="540p", poll_interval=1.0,
            deferrable=True,
        )
with DAG("bench_slots_sensor", schedule=None, start_date=START, catchup=False, max_active_tasks=2):
    for i in range(TASKS):
        DateTimeSensorAsync(
            task_id=f"task_{{i:02d}}", target_time="{{{{ macros.datetime.utcnow() + macros.timedelta(seconds=3) }}}}"
        )
"""
_STARTED = re.compile(
    r"\[(?P<id>[0-9a-f-]{36})\] Executing workload in Celery:.*?task_id='(?P<task>[^']+)'.*?run_id='(?P<run>[^']+)'"
)
_DONE = re.compile(r"execute_workload\[(?P<id>[0-9a-f-]{36})\] succeeded in (?P<s>[0-9.]+)s")
_STAMP = re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)")  # Airflow logs in UTC
# A tail this long is the supervisor's select() wait (bimodal: tens of ms, or ~[workers] min_heartbeat_interval);
# a shorter one is the task's last state call and process exit, and counts as slot time.
STALL_FROM = 0.5


@dataclass
class TaskSlots:
    """One task instance's workloads: Celery's seconds and the exit stall of each."""

    celery: list[float] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)

    @property
    def slot(self) -> float:
        return sum(self.celery) - sum(self.stalls)


def _stamp(line: str) -> float | None:
    found = _STAMP.search(line)
    if not found:
        return None
    return datetime.fromisoformat(found[1].replace(",", ".")).replace(tzinfo=timezone.utc).timestamp()


def celery_workloads(cluster: DistributedAirflowCluster, run_id: str) -> dict[str, list[tuple[float, float]]]:
    """``{task_id: [(finished at, seconds), ...]}`` for every workload of ``run_id`` Celery logged as done."""
    found: dict[str, list[tuple[float, float]]] = {}
    for worker in WORKERS:
        lines = (cluster.log_dir / f"{worker}.log").read_text(errors="replace").splitlines()
        tasks = {m["id"]: m["task"] for line in lines if (m := _STARTED.search(line)) and m["run"] == run_id}
        for line in lines:
            done = _DONE.search(line)
            if done and done["id"] in tasks and (at := _stamp(line)) is not None:
                found.setdefault(tasks[done["id"]], []).append((at, float(done["s"])))
    return found


def measure(cluster: DistributedAirflowCluster, dag_id: str, run_id: str, tasks: int) -> dict[str, TaskSlots]:
    """Slot seconds and exit stalls of every task of one finished run (waits for Celery to log each workload)."""
    # The run turns "success" when its last task's state call returns, before that task's supervisor exits and
    # Celery logs "succeeded": wait until every task has a workload and no new one came for 5 s (a task that ends
    # in the triggerer has one workload, a resumed one two).
    deadline, seen, quiet_since = time.monotonic() + 60, -1, time.monotonic()
    while True:
        workloads = celery_workloads(cluster, run_id)
        count = sum(map(len, workloads.values()))
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        if count >= 2 * tasks or time.monotonic() > deadline:
            break
        if len(workloads) >= tasks and time.monotonic() - quiet_since > 5:
            break
        time.sleep(0.5)
    result: dict[str, TaskSlots] = {}
    for task_id, done in workloads.items():
        runs = worker_runs(worker_log(cluster.log_dir, dag_id, run_id, task_id))
        slots = result.setdefault(task_id, TaskSlots())
        for finished, seconds in sorted(done):
            # The task-log run that ended last before Celery said "succeeded" is this workload's.
            ends = [end for _, end in runs if end <= finished + 0.05]
            tail = max(0.0, finished - max(ends)) if ends else 0.0
            slots.celery.append(seconds)
            slots.stalls.append(min(tail, seconds) if tail >= STALL_FROM else 0.0)
    return result


def run_round(cluster: DistributedAirflowCluster, kind: str, tasks: int) -> dict[str, TaskSlots]:
    dag_id = KINDS[kind]
    run_id = cluster.trigger_dag(dag_id)
    state = cluster.wait_for_run(dag_id, run_id, timeout=900)
    if state != "success":
        raise SystemExit(f"{dag_id} run {run_id} ended {state}; kept logs in {cluster.home}")
    return measure(cluster, dag_id, run_id, tasks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds of each DAG (default 4)")
    parser.add_argument("--tasks", type=int, default=12, help="tasks per DAG run (default 12)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's home (logs) after the run")
    args = parser.parse_args()
    folder = dags_folder("bench_worker_slots", DAG.format(tasks=args.tasks))
    per_kind: dict[str, list[TaskSlots]] = {kind: [] for kind in KINDS}
    with LumaSimulatorServer(time_factor=0.1) as sim:
        sim.simulator.configure(render_seconds=3)
        cluster = DistributedAirflowCluster(folder, env={"AIRFLOW_CONN_LUMA_DEFAULT": sim.airflow_conn_json()})
        try:
            cluster.start()
            print(f"deployment up in {cluster.startup_seconds:.0f} s; warm-up run of each DAG")
            for kind in KINDS:
                run_round(cluster, kind, args.tasks)
            for number in range(args.rounds):
                order = list(KINDS) if number % 2 == 0 else list(reversed(KINDS))
                for kind in order:
                    slots = run_round(cluster, kind, args.tasks)
                    per_kind[kind] += slots.values()
                    figures = [s.slot for s in slots.values()]
                    stalls = [sum(s.stalls) for s in slots.values()]
                    print(
                        f"  round {number + 1} {kind:<6}: {len(slots)} tasks, slot s median "
                        f"{statistics.median(figures):.2f}, exit stall median {statistics.median(stalls):.2f}"
                    )
        finally:
            if args.keep:
                cluster._owns_home = False
                print(f"kept {cluster.home}")
            cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)
    print(f"worker-slot seconds per task, {args.rounds} alternating rounds of {args.tasks} tasks each:")
    print(f"{'task':<8} {'tasks':>5} {'median':>7} {'mean':>6} {'1st wl':>7} {'2nd wl':>7} {'exit stall':>10}")
    medians = {}
    for kind, tasks in per_kind.items():
        slot = [t.slot for t in tasks]
        first = [t.celery[0] - t.stalls[0] for t in tasks if t.celery]
        second = [sum(t.celery[1:]) - sum(t.stalls[1:]) for t in tasks if len(t.celery) > 1]
        stalls = [sum(t.stalls) for t in tasks]
        medians[kind] = statistics.median(slot)
        print(
            f"{kind:<8} {len(tasks):>5} {medians[kind]:>7.2f} {statistics.mean(slot):>6.2f} "
            f"{statistics.median(first):>7.2f} {statistics.median(second) if second else 0.0:>7.2f} "
            f"{statistics.median(stalls):>10.2f}"
        )
    workloads = {kind: sum(len(t.celery) for t in tasks) for kind, tasks in per_kind.items()}
    print(f"workloads per task: render {workloads['render'] / len(per_kind['render']):.2f}, "
          f"sensor {workloads['sensor'] / len(per_kind['sensor']):.2f}")  # fmt: skip
    ratio = medians["render"] / medians["sensor"]
    print(f"ratio render / sensor (exit stalls set aside): {ratio:.2f}x (target <= {TARGET}x)")
    print("RESULT:", "PASS" if ratio <= TARGET else "MISS")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
