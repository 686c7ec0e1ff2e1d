"""The ``luma_airflow`` fixture's promises: the README example is the tested file, the schedule follows the
simulator's clock, and a DAG built inside a test runs through ``luma_airflow.run``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred
from airflow.sdk import DAG

from airflow_provider_luma.core import schedule
from airflow_provider_luma.operators import LumaGenerateVideoOperator
from airflow_provider_luma.testing import LumaSimulatorServer

ROOT = Path(__file__).resolve().parents[2]


def test_readme_shows_the_tested_example_verbatim() -> None:
    example = (ROOT / "tests" / "user_example" / "test_weekly_social_cut.py").read_text()
    assert example.strip() in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    ("factor", "expected", "poll"),
    [(1.0, 60.0, 10.0), (0.01, 0.6, 0.1), (0.001, 0.06, schedule.MIN_SCALED_POLL_INTERVAL), (0.0, 0.0, 0.05)],
)
def test_scaled_schedule_follows_the_clock(factor: float, expected: float, poll: float) -> None:
    assert schedule.scaled_schedule(60.0, 10.0, factor) == pytest.approx((expected, poll))


@pytest.mark.parametrize("raw", ["fast", -0.5, 2, True])
def test_bad_schedule_time_factor_fails_naming_the_extra_before_the_wait(
    raw: Any, luma_simulator: LumaSimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {**json.loads(luma_simulator.airflow_conn_json()), "extra": {"schedule_time_factor": raw}}
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", json.dumps(conn))
    op = LumaGenerateVideoOperator(task_id="render", prompt="p")
    with pytest.raises(AirflowFailException, match="schedule_time_factor: got .*must be a number from 0 to 1"):
        op.execute({})


# 5s/720p: expected 60 s, first poll at 60 % of it; on the simulator's clock (x0.01) 0.36 s.
@pytest.mark.parametrize(("follow_speed", "first_poll", "poll"), [(True, 0.36, 0.1), (False, 36.0, 10.0)])
@pytest.mark.luma_simulator(time_factor=0.01)
def test_first_poll_follows_the_simulators_clock_when_the_connection_says_so(
    luma_simulator: LumaSimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    follow_speed: bool,
    first_poll: float,
    poll: float,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", luma_simulator.airflow_conn_json(follow_speed=follow_speed))
    with pytest.raises(TaskDeferred) as deferred:
        LumaGenerateVideoOperator(task_id="render", prompt="p").execute({})
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["first_poll_at"] - kwargs["submitted_at"] == pytest.approx(first_poll)
    assert kwargs["poll_interval"] == pytest.approx(poll)


def test_a_dag_built_inside_the_test_runs_with_luma_airflow_run(luma_airflow: Any) -> None:
    with DAG("built_in_test", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        LumaGenerateVideoOperator(task_id="only", prompt="one clip", resolution="540p")
    # The run's connection carries the simulator's speed, so its first poll and poll gap follow the simulator's
    # clock (test_first_poll_follows_the_simulators_clock_when_the_connection_says_so pins what that does).
    extra = json.loads(os.environ["AIRFLOW_CONN_LUMA_DEFAULT"])["extra"]
    assert extra["schedule_time_factor"] == luma_airflow.server.schedule_time_factor
    run = luma_airflow.run(dag)
    assert run.state == "success"
    assert [r.payload["payload"]["prompt"] for r in luma_airflow.simulator.create_requests()] == ["one clip"]
    log = luma_airflow.simulator.request_log
    assert log[0].method == "POST" and log[-1].method == "GET" and log[-1].status == 200
    assert all(e.method == "GET" for e in log[1:]), "submitted once, then only polled"
