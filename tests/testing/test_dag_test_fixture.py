"""The ``luma_airflow`` fixture's promises: the README example is the tested file, the schedule follows the
simulator's clock, a DAG built inside a test runs through ``luma_airflow.run``, and the connection takes the
extras a test gives (``@pytest.mark.luma_connection``), such as the prices a capped edit/reframe pipeline needs."""

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
from airflow_provider_luma.operators import (
    LumaEditVideoOperator,
    LumaGenerateVideoOperator,
    LumaReframeVideoOperator,
)
from airflow_provider_luma.testing import LumaSimulatorServer

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
START = pendulum.datetime(2026, 1, 1, tz="UTC")


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


PRICES = {"luma-ray-3-2-reframe": {"SDR": {"540p": 0.20}}, "luma-ray-3-2-edit": {"SDR": {"540p": 0.25}}}
"""An account's prices for the models that have no built-in one (USD per 5-s block)."""


@pytest.mark.parametrize(
    "priced",
    [pytest.param(True, marks=pytest.mark.luma_connection(extra={"prices": PRICES}), id="prices"), False],
)
def test_a_capped_edit_reframe_pipeline_runs_with_the_prices_the_marker_gives_and_is_refused_without(
    luma_airflow: Any, priced: bool
) -> None:
    # generate $0.15 + reframe $0.20 + edit $0.25 (one 5-s block each, at 540p): exactly the cap.
    with DAG("capped_cut", schedule=None, start_date=START, default_args={"max_run_cost_usd": 0.60}) as dag:
        master = LumaGenerateVideoOperator(task_id="master", prompt="a neon market", resolution="540p")
        vertical = LumaReframeVideoOperator(
            task_id="vertical", source_generation_id=master.output["generation_id"], prompt="r",
            aspect_ratio="9:16", resolution="540p",
        )  # fmt: skip
        LumaEditVideoOperator(
            task_id="film", source_generation_id=vertical.output["generation_id"], prompt="film", resolution="540p"
        )
    run = luma_airflow.run(dag)

    if priced:
        assert run.state == "success"
        assert [r.payload["model"] for r in luma_airflow.simulator.create_requests()] == [
            "luma-ray-3-2-generate",
            "luma-ray-3-2-reframe",
            "luma-ray-3-2-edit",
        ]
        costs = {t: run.get_task_instance(t).xcom_pull(task_ids=t, key="estimated_cost_usd") for t in dag.task_ids}
        assert costs == {"master": 0.15, "vertical": 0.20, "film": 0.25}
    else:  # no price for reframe and edit: the run's first task refuses it before any request
        assert run.state == "failed"
        assert luma_airflow.simulator.request_log == []


@pytest.mark.luma_connection(extra={"organization_id": "org-far", "prices": PRICES})
class TestConnectionMarker:
    @pytest.mark.luma_connection(extra={"organization_id": "org-near"})
    def test_the_closest_marker_wins_key_by_key_over_the_fixtures_own_extras(self, luma_conn_env: Any) -> None:
        conn = json.loads(os.environ["AIRFLOW_CONN_LUMA_DEFAULT"])
        assert conn["extra"] == {"organization_id": "org-near", "prices": PRICES}
        assert conn["host"] == luma_conn_env.base_url

    @pytest.mark.luma_simulator(api="luma_agents")
    def test_the_servers_api_and_speed_stay_with_the_extras(self, luma_airflow: Any) -> None:
        extra = json.loads(os.environ["AIRFLOW_CONN_LUMA_DEFAULT"])["extra"]
        assert extra == {
            "api": "luma_agents",
            "schedule_time_factor": luma_airflow.server.schedule_time_factor,
            "organization_id": "org-far",
            "prices": PRICES,
        }


def test_an_extra_api_contradicting_the_server_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.luma_connection(extra={"api": "luma_agents"})
        def test_gmi_server(luma_conn_env):
            pass

        @pytest.mark.luma_connection({"prices": {}})
        def test_positional(luma_conn_env):
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*connection extra api='luma_agents' contradicts the simulator's api='gmi'*",
            "*luma_connection takes one keyword, extra={...}*",
        ]
    )
