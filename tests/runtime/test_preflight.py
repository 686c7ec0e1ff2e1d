"""The run pre-flight (issue 20): what literals across tasks decide fails the DAG's import, and at run start the
first Luma task refuses a run that cannot succeed, before any spend. Each case: zero requests reach the
simulator, and one message lists every problem, each naming its task and field."""

from __future__ import annotations

import json
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred
from airflow.sdk import DAG

from airflow_provider_luma.core.errors import LumaValidationError
from airflow_provider_luma.operators import (
    LumaEditVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaReframeVideoOperator,
)
from airflow_provider_luma.testing import LumaSimulatorServer
from tests._helpers import MemoryStateStore

START = pendulum.datetime(2026, 1, 1, tz="UTC")
UNKNOWN_REFRAME = "max_run_cost_usd=$2.00 is set but the cost of this luma-ray-3-2-reframe render is unknown"


def _with_prices(server: LumaSimulatorServer, monkeypatch: pytest.MonkeyPatch, prices: dict[str, Any]) -> None:
    conn = {**json.loads(server.airflow_conn_json()), "extra": {"prices": prices}}
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", json.dumps(conn))


# -- at DAG import ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("master_ratio", "extend", "reframe_to"),
    # An extend's clip has its own literal ratio or the model's default 16:9, as the task reports when it runs.
    [("9:16", False, "9:16"), (None, False, "16:9"), (None, True, "16:9"), ("9:16", True, "16:9")],
)
def test_reframe_to_the_ratio_the_upstream_literals_give_fails_the_import(
    luma_conn_env: LumaSimulatorServer, master_ratio: str | None, extend: bool, reframe_to: str
) -> None:
    with DAG("reframe_same", schedule=None, start_date=START):
        master = LumaGenerateVideoOperator(task_id="master", prompt="p", aspect_ratio=master_ratio)
        source = master
        if extend:  # the chain is followed through the extend
            source = LumaExtendVideoOperator(task_id="longer", generation_id=master.output["generation_id"], prompt="q")
        with pytest.raises(LumaValidationError, match=f"aspect_ratio: the source is already {reframe_to}"):
            LumaReframeVideoOperator(
                task_id="vertical", source_generation_id=source.output["generation_id"], prompt="r",
                aspect_ratio=reframe_to,
            )  # fmt: skip
        # Another ratio is fine; so is an upstream whose ratio is templated (checked after templating).
        LumaReframeVideoOperator(
            task_id="other", source_generation_id=source.output["generation_id"], prompt="r", aspect_ratio="4:3"
        )
        templated = LumaGenerateVideoOperator(task_id="templated", prompt="p", aspect_ratio="{{ params.r }}")
        LumaReframeVideoOperator(
            task_id="from_templated", source_generation_id=templated.output["generation_id"], prompt="r",
            aspect_ratio=reframe_to,
        )  # fmt: skip
    assert luma_conn_env.simulator.request_log == []


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("clips/out.mp4", "a local path must be absolute"),
        ("/data/{shot}.mp4", "unknown placeholder"),
        ("/data/{map_index:03d}.mp4", "format specs and conversions"),
    ],
)
def test_literal_output_path_mistakes_fail_the_import(luma_conn_env: LumaSimulatorServer, path: str, rule: str) -> None:
    with pytest.raises(LumaValidationError, match=f"output_path: got '{path}'.*{rule}"):
        LumaGenerateVideoOperator(task_id="render", prompt="p", output_path=path)
    LumaGenerateVideoOperator(task_id="templated", prompt="p", output_path="{{ var.value.clips }}/out.mp4")
    assert luma_conn_env.simulator.request_log == []


def test_literal_renders_over_a_run_cap_import_and_fail_at_run_start_before_any_request(
    luma_conn_env: LumaSimulatorServer,
) -> None:
    # Prices live in the connection (an account's own may be lower than the built-in table): a DAG file is never
    # refused for them. The run refuses at its first task instead, before any request.
    with DAG("over_cap", schedule=None, start_date=START, default_args={"max_run_cost_usd": 0.30}) as dag:
        first = LumaGenerateVideoOperator(task_id="a", prompt="p", resolution="540p")
        for name in "bc":
            LumaGenerateVideoOperator(task_id=name, prompt="p", resolution="540p")
    assert sorted(dag.task_dict) == ["a", "b", "c"]
    with pytest.raises(AirflowFailException, match="Run pre-flight") as raised:
        first.execute({"dag": dag, "task_state_store": MemoryStateStore()})
    assert "$0.45" in str(raised.value) and "max_run_cost_usd=$0.30" in str(raised.value)
    assert luma_conn_env.simulator.request_log == []


# -- at run start ------------------------------------------------------------------------------------------------


def social_cut(cap: Any = 2.00) -> tuple[DAG, LumaGenerateVideoOperator]:
    """The issue's run: master + extend ($0.60) then a reframe and an edit, which have no built-in price."""
    with DAG("social_cut", schedule=None, start_date=START, default_args={"max_run_cost_usd": cap}) as dag:
        master = LumaGenerateVideoOperator(task_id="master", prompt="a neon market")
        longer = LumaExtendVideoOperator(task_id="longer", generation_id=master.output["generation_id"], prompt="q")
        vertical = LumaReframeVideoOperator(
            task_id="vertical", source_generation_id=longer.output["generation_id"], prompt="r", aspect_ratio="9:16"
        )
        LumaEditVideoOperator(task_id="film", source_generation_id=vertical.output["generation_id"], prompt="film")
    return dag, master


def test_a_run_that_cannot_price_a_capped_render_fails_at_its_first_task_before_any_request(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    dag, master = social_cut()
    with pytest.raises(AirflowFailException) as raised:
        master.execute({**context, "dag": dag})
    message = str(raised.value)
    assert message.startswith("Run pre-flight: this DAG run cannot succeed (2 problem(s)); nothing was submitted")
    assert f"- task 'vertical', max_run_cost_usd: {UNKNOWN_REFRAME}" in message
    assert "- task 'film', max_run_cost_usd: max_run_cost_usd=$2.00 is set but the cost of this luma-ray-3-2-edit" in (
        message
    )
    assert luma_conn_env.simulator.request_log == [], "a failing pre-flight sends nothing, not even a status check"


def test_connection_prices_let_the_run_start_and_price_the_chain(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reframe and the edit follow the extend's 5 s (one block) through the chain's literals.
    prices = {"luma-ray-3-2-reframe": {"SDR": {"720p": 0.50}}, "luma-ray-3-2-edit": {"SDR": {"720p": 0.40}}}
    _with_prices(luma_conn_env, monkeypatch, prices)
    dag, master = social_cut(cap=1.50)  # 0.30 + 0.30 + 0.50 + 0.40 = 1.50
    with pytest.raises(TaskDeferred):
        master.execute({**context, "dag": dag})
    assert len(luma_conn_env.simulator.create_requests()) == 1

    dag, master = social_cut(cap=1.49)  # a fresh task instance (its own state store): nothing to re-attach to
    with pytest.raises(AirflowFailException, match=r"estimated at \$1.50 together .*film \$0.40.*vertical \$0.50"):
        master.execute({"task_state_store": MemoryStateStore(), "dag": dag})
    assert len(luma_conn_env.simulator.create_requests()) == 1, "the refused run sent nothing"


def test_a_connection_dearer_than_the_built_in_table_fails_the_run_at_start(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_prices(luma_conn_env, monkeypatch, {"luma-ray-3-2-generate": {"SDR": {"540p": 0.20}}})
    with DAG("dear", schedule=None, start_date=START, default_args={"max_run_cost_usd": 0.45}) as dag:
        first, *_ = [LumaGenerateVideoOperator(task_id=n, prompt="p", resolution="540p") for n in "abc"]
    with pytest.raises(AirflowFailException) as raised:
        first.execute({**context, "dag": dag})
    expected = "tasks 'a', 'b', 'c', max_run_cost_usd=$0.45: the renders of the 3 task(s) it covers are estimated at "
    assert expected + "$0.60 together" in str(raised.value)
    assert luma_conn_env.simulator.request_log == []


def test_templated_caps_and_values_are_left_to_their_own_task(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any]
) -> None:
    with DAG("templated", schedule=None, start_date=START) as dag:
        master = LumaGenerateVideoOperator(task_id="master", prompt="p", resolution="540p")
        LumaReframeVideoOperator(  # its cap is templated: checked after templating, when it runs
            task_id="vertical", source_generation_id=master.output["generation_id"], prompt="r",
            aspect_ratio="9:16", max_run_cost_usd="{{ params.cap }}",
        )  # fmt: skip
    with pytest.raises(TaskDeferred):
        master.execute({**context, "dag": dag})
    assert len(luma_conn_env.simulator.create_requests()) == 1


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ({"source_generation_id": "g-from-another-run"}, True),  # its length stays unknown when it runs too
        ({"source_video": "/data/in.mp4"}, False),  # the file's length is read by that task before its request
        ({"source_generation_id": "{{ params.gid }}"}, False),  # templated: checked after templating
    ],
)
def test_an_edit_whose_length_stays_unknown_is_refused_at_run_start_others_wait_for_their_own_check(
    luma_conn_env: LumaSimulatorServer,
    context: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    source: dict[str, Any],
    refused: bool,
) -> None:
    _with_prices(luma_conn_env, monkeypatch, {"luma-ray-3-2-edit": {"SDR": {"720p": 0.40}}})
    with DAG("edits", schedule=None, start_date=START, default_args={"max_run_cost_usd": 5}) as dag:
        master = LumaGenerateVideoOperator(task_id="master", prompt="p")
        LumaEditVideoOperator(task_id="film", prompt="film", **source)
    if refused:
        with pytest.raises(AirflowFailException, match=r"- task 'film', max_run_cost_usd: .*duration is unknown"):
            master.execute({**context, "dag": dag})
        assert luma_conn_env.simulator.request_log == []
    else:
        with pytest.raises(TaskDeferred):
            master.execute({**context, "dag": dag})
        assert len(luma_conn_env.simulator.create_requests()) == 1


# -- a real Airflow run (dag.test): context["dag"] is the run's DAG -----------------------------------------------


def test_the_issues_run_buys_nothing_and_fails_at_its_first_task(luma_airflow: Any) -> None:
    dag, _ = social_cut()  # max_run_cost_usd=2.00; today it bought the master and the extend, then failed
    run = luma_airflow.run(dag)

    assert luma_airflow.simulator.request_log == []
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {
        "master": "failed",
        "longer": "upstream_failed",
        "vertical": "upstream_failed",
        "film": ("upstream_failed"),
    }
