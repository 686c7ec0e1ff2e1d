"""DAGs for the distributed e2e tests (PostgreSQL + CeleryExecutor + two triggerers); clips go to S3 (moto)."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
S3_ROOT = os.getenv("LUMA_EXAMPLE_OUTPUT", "/tmp/luma-dist")


class HoldBeforeDeferOperator(LumaGenerateVideoOperator):
    """On its first try, stops between the accepted create request and defer(), so a test can kill its worker."""

    def execute(self, context: Any) -> Any:
        self._try_number = context["ti"].try_number
        return super().execute(context)

    def defer(self, **kwargs: Any) -> Any:
        if getattr(self, "_try_number", 1) == 1:
            self.log.info("Holding before defer() so that the test can kill this worker")
            time.sleep(600)
        return super().defer(**kwargs)


with DAG("dist_fanout", schedule=None, start_date=START, catchup=False, max_active_tasks=30):
    LumaGenerateVideoOperator.partial(
        task_id="render", resolution="540p", poll_interval=0.5, output_path=S3_ROOT + "/fanout/{run_id}/{map_index}.mp4"
    ).expand(prompt=[f"dist-fanout: clip {i}" for i in range(30)])

with DAG("dist_failover", schedule=None, start_date=START, catchup=False, max_active_tasks=8):
    LumaGenerateVideoOperator.partial(task_id="render", resolution="540p", poll_interval=0.5).expand(
        prompt=[f"dist-failover: take {i}" for i in range(6)]
    )

with DAG("dist_graceful", schedule=None, start_date=START, catchup=False, max_active_tasks=8):
    LumaGenerateVideoOperator.partial(
        task_id="render", resolution="540p", poll_interval=0.5, output_path=S3_ROOT + "/graceful/{map_index}.mp4"
    ).expand(prompt=[f"dist-graceful: take {i}" for i in range(4)])

with DAG("dist_worker_crash", schedule=None, start_date=START, catchup=False):
    HoldBeforeDeferOperator(
        task_id="render",
        prompt="dist-worker-crash: a lighthouse in fog",
        poll_interval=0.5,
        output_path=S3_ROOT + "/crash/{run_id}.mp4",
        retries=1,
        retry_delay=timedelta(seconds=1),
    )
