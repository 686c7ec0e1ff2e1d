"""DAGs for the durability tests: crashes, clears, faults, kills. Parsed by the e2e cluster only."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")


class CrashBeforeDeferOperator(LumaGenerateVideoOperator):
    """Dies with SIGKILL on its first try right after the render was submitted, before it could defer."""

    def execute(self, context: Any) -> Any:
        self._try_number = context["ti"].try_number
        return super().execute(context)

    def defer(self, **kwargs: Any) -> Any:
        if getattr(self, "_try_number", 1) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().defer(**kwargs)


with DAG("luma_crash_before_defer", schedule=None, start_date=START, catchup=False):
    CrashBeforeDeferOperator(
        task_id="render",
        prompt="crash-before-defer: a kite over dunes",
        poll_interval=0.5,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

with DAG("luma_clear_reuse", schedule=None, start_date=START, catchup=False):
    LumaGenerateVideoOperator(task_id="reuse_on", prompt="clear-reuse: on", poll_interval=0.5)
    LumaGenerateVideoOperator(task_id="reuse_off", prompt="clear-reuse: off", poll_interval=0.5, reuse_existing=False)

# One retry: with 20 tasks enqueued at once, Airflow 3.0's LocalExecutor can start a task before the scheduler
# committed it as queued ("TI was not in a state where it could be marked as running"), which fails that try before
# any of our code runs. The tests accept a retry only after such a try (its log is empty).
with DAG("luma_fault_fanout", schedule=None, start_date=START, catchup=False, max_active_tasks=20):
    LumaGenerateVideoOperator.partial(
        task_id="render", resolution="540p", poll_interval=0.5, retries=1, retry_delay=timedelta(seconds=1)
    ).expand(prompt=[f"fault-fanout: clip {i}" for i in range(20)])

with DAG("luma_long_renders", schedule=None, start_date=START, catchup=False):
    LumaGenerateVideoOperator.partial(task_id="render", poll_interval=0.5).expand(
        prompt=[f"long-render: take {i}" for i in range(3)]
    )

with DAG("luma_kill_me", schedule=None, start_date=START, catchup=False):
    LumaGenerateVideoOperator(task_id="render", prompt="kill-me: a very long take", poll_interval=0.5)

with DAG("luma_concurrency_fanout", schedule=None, start_date=START, catchup=False, max_active_tasks=50):
    LumaGenerateVideoOperator.partial(  # one retry: see luma_fault_fanout
        task_id="render", resolution="540p", poll_interval=0.5, retries=1, retry_delay=timedelta(seconds=1)
    ).expand(prompt=[f"concurrency-fanout: clip {i}" for i in range(50)])
