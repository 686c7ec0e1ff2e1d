"""``max_run_cost_usd`` under ``dag.test()`` (a real Airflow run, tasks one at a time): the run's renders never
cost more than the cap, mapped elements included; a refused render sends nothing and says why. The race with
parallel submitters runs on a real scheduler in tests/e2e/test_luma_run_budget.py."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaGenerateVideoOperator
from airflow_provider_luma.version_compat import AIRFLOW_V_3_1_PLUS

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PROMPTS = ["one", "two", "three", "four"]


def states(run: Any) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}


# (how the four 540p renders at $0.15 are laid out, cap) -> renders bought. Four literal tasks over the cap are
# refused by the run pre-flight before any of them buys (tests/runtime/test_preflight.py); a mapped fan-out's
# elements only exist at run time, so its renders are bought until the run's reservations reach the cap.
LAYOUTS = [("tasks", "0.30", 0), ("mapped", "0.30", 2), ("mapped", "0.45", 3), ("mapped", "0.10", 0)]


@pytest.mark.parametrize(("layout", "cap", "bought"), LAYOUTS)
def test_the_runs_renders_never_cost_more_than_the_cap(
    luma_airflow: Any, capfd: pytest.CaptureFixture[str], layout: str, cap: str, bought: int
) -> None:
    with DAG("run_budget", schedule=None, start_date=START, default_args={"max_run_cost_usd": cap}) as dag:
        if layout == "tasks":
            for prompt in PROMPTS:
                LumaGenerateVideoOperator(task_id=f"render_{prompt}", prompt=prompt, resolution="540p")
        else:
            LumaGenerateVideoOperator.partial(task_id="render", resolution="540p").expand(prompt=PROMPTS)
    run = luma_airflow.run(dag)

    assert len(luma_airflow.simulator.create_requests()) == bought
    assert sorted(states(run).values()) == ["failed"] * (4 - bought) + ["success"] * bought
    out = capfd.readouterr().out
    if layout == "tasks":  # the whole run is refused before its first render, naming the sum and the cap
        assert "Run pre-flight: this DAG run cannot succeed" in out and "max_run_cost_usd=$0.30" in out
    elif bought:  # each refusal: what the run spent, this render's estimate, the cap; once per refused task
        if not AIRFLOW_V_3_1_PLUS:
            return  # Airflow 3.0's dag.test() prints no failed task's exception: the states above are what shows
        refusal = (
            f"This render's estimate $0.15 would bring the run's estimated spend to ${0.15 * (bought + 1):.2f}, "
            f"above max_run_cost_usd=${cap}: this run's other renders hold ${0.15 * bought:.2f}: {bought} bought "
            f"(${0.15 * bought:.2f}), none pending. Nothing was submitted."
        )
        assert out.count(refusal) == 4 - bought, "a failure reads once in the log, not twice"
        assert "pool" not in out, "no pool is needed for an exact cap, and none is suggested"
    else:  # one render alone is over the run's cap
        assert "Estimated cost $0.15 is above max_run_cost_usd=$0.10" in out


@pytest.mark.parametrize("forged", [-100.0, "-100", {"usd": 0}, True])
def test_a_forged_estimate_in_xcom_never_loosens_the_cap(luma_airflow: Any, forged: Any) -> None:
    """A REST User may write any XCom: an ``estimated_cost_usd`` that is not an amount counts as unpriced, so the
    capped renders refuse (nothing bought) instead of buying past the cap."""
    from airflow.providers.standard.operators.python import PythonOperator

    def forge(ti: Any) -> None:
        ti.xcom_push(key="estimated_cost_usd", value=forged)

    with DAG("run_budget_forged", schedule=None, start_date=START, default_args={"max_run_cost_usd": "0.30"}) as dag:
        renders = LumaGenerateVideoOperator.partial(task_id="render", resolution="540p").expand(prompt=PROMPTS)
        PythonOperator(task_id="forger", python_callable=forge) >> renders
    run = luma_airflow.run(dag)

    assert luma_airflow.simulator.create_requests() == []
    assert [s for (task, _), s in states(run).items() if task == "render"] == ["failed"] * 4
