"""``luma_airflow.reviewer``: a user's ``dag.test()`` of a reviewed DAG answers its review steps (Airflow 3.3).

Scripted answers in order (re-render with a new prompt, then approve: two create requests, downstream gets the
second take), "Approve" when nothing is scripted, reject with ``on_reject="skip"``, and a bad script refused before
the run. Before 3.3 ``dag.test()`` cannot run Airflow's HITL trigger; scripting an answer there says so.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

from airflow_provider_luma.operators import LumaGenerateVideoOperator, LumaReview
from airflow_provider_luma.version_compat import AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_3_PLUS

START = pendulum.datetime(2026, 1, 1, tz="UTC")
needs_3_3 = pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="dag.test() waits for human input from Airflow 3.3")


def reviewed_dag(dag_id: str, on_reject: str = "fail") -> Any:
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        clip = LumaGenerateVideoOperator(
            task_id="clip",
            prompt="a red fox in fresh snow",
            resolution="540p",
            review=LumaReview(
                assigned_users=[{"id": "editor", "name": "editor"}],
                response_timeout=timedelta(hours=1),
                on_reject=on_reject,
            ),
        )

        @task
        def publish(generation_id: str) -> str:
            return generation_id

        publish(clip.output["generation_id"])
    return dag


def prompts(luma_airflow: Any) -> list[str]:
    return [r.payload["payload"]["prompt"] for r in luma_airflow.simulator.create_requests()]


@needs_3_3
def test_a_scripted_rerender_then_approve_buys_two_takes_and_downstream_gets_the_second(luma_airflow: Any) -> None:
    luma_airflow.reviewer.rerender(prompt="a red fox at dusk, slow pan").approve()
    run = luma_airflow.run(reviewed_dag("reviewed_rerender"))
    assert run.state == "success"
    assert prompts(luma_airflow) == ["a red fox in fresh snow", "a red fox at dusk, slow pan"]
    answers = [(a.task_id, a.option, a.params) for a in luma_airflow.reviewer.answers]
    assert answers == [("clip", "Re-render", {"prompt": "a red fox at dusk, slow pan"}), ("clip", "Approve", {})]
    second = [g.generation_id for g in luma_airflow.simulator.generations()][1]
    published = next(t for t in run.get_task_instances() if t.task_id == "publish").xcom_pull(task_ids="publish")
    assert second and published == second


@needs_3_3
def test_nothing_scripted_approves_the_first_take(luma_airflow: Any) -> None:
    run = luma_airflow.run(reviewed_dag("reviewed_default"))
    assert run.state == "success" and len(prompts(luma_airflow)) == 1
    assert [a.option for a in luma_airflow.reviewer.answers] == ["Approve"]


@needs_3_3
def test_a_scripted_reject_skips_downstream(luma_airflow: Any) -> None:
    luma_airflow.reviewer.reject()
    run = luma_airflow.run(reviewed_dag("reviewed_reject", on_reject="skip"))
    states = {t.task_id: t.state for t in run.get_task_instances()}
    assert states == {"clip": "skipped", "publish": "skipped"} and len(prompts(luma_airflow)) == 1


@needs_3_3
@pytest.mark.parametrize(
    ("option", "params", "message"),
    [
        ("Maybe", {}, r"option='Maybe': one of Approve, Re-render, Reject"),
        ("Approve", {"prompt": "x"}, r"params are edits for 'Re-render'; 'Approve' takes none"),
        ("Re-render", {"seed": "4"}, r"seed: not an editable parameter \(prompt, aspect_ratio, resolution"),
    ],
)
def test_a_bad_script_is_refused_before_any_run(
    luma_airflow: Any, option: str, params: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        luma_airflow.reviewer.answer(option, **params)
    assert not luma_airflow.simulator.create_requests()


def test_the_reviewer_offers_the_review_steps_options_and_edits() -> None:
    from airflow_provider_luma.runtime import review
    from airflow_provider_luma.testing import _reviewer

    assert _reviewer.OPTIONS == review.OPTIONS and _reviewer.EDITABLE == review.EDITABLE


@pytest.mark.skipif(AIRFLOW_V_3_3_PLUS or not AIRFLOW_V_3_1_PLUS, reason="what Airflow 3.1 and 3.2 do")
def test_before_3_3_scripting_an_answer_names_the_version(luma_airflow: Any) -> None:
    with pytest.raises(RuntimeError, match="on Airflow 3.3 or newer: before 3.3, dag.test\\(\\) cannot run"):
        luma_airflow.reviewer.approve()
