"""A render without ``output_path`` ends in the triggerer (``TaskSuccessEvent``), with the XComs a resumed worker
would push; every render whose finish needs a worker still resumes there (see
:mod:`airflow_provider_luma.runtime.end_in_trigger`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

from airflow_provider_luma.operators import LumaGenerateVideoOperator
from airflow_provider_luma.runtime.record import STATE_KEY
from airflow_provider_luma.runtime.results import RenderResult
from airflow_provider_luma.testing import LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger

pytestmark = pytest.mark.luma_simulator(render_seconds=0.2)

RESULT_KEYS = set(RenderResult.__annotations__)


def generate(**kwargs: Any) -> LumaGenerateVideoOperator:
    kwargs.setdefault("task_id", "render")
    return LumaGenerateVideoOperator(prompt="a fox", poll_interval=0.05, **kwargs)


def defer(op: LumaGenerateVideoOperator, context: dict[str, Any]) -> LumaGenerationTrigger:
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, LumaGenerationTrigger)
    return trigger


class SupervisorChannel:
    """Stands in for the triggerer's Execution-API channel (``task_runner.SUPERVISOR_COMMS``): the XComs written
    through it, as the API server would store them (``key -> value``)."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}
        self.fail = False

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import GetConnection, SetXCom

        if isinstance(msg, GetConnection):  # Airflow < 3.3 asks the channel for connections too
            return connection_result(msg.conn_id)
        if type(msg).__name__ == "MaskSecret":  # Airflow < 3.3 masks through the channel as well
            return None
        assert isinstance(msg, SetXCom) and (msg.dag_id, msg.task_id, msg.run_id, msg.map_index) == TI
        if self.fail:
            raise ConnectionError("the API server is away")
        self.xcoms[msg.key] = msg.value


TI = ("d", "render", "manual__1", 3)


def connection_result(conn_id: str) -> Any:
    """What the supervisor answers for ``conn_id``: the connection the test environment defines."""
    from airflow.models.connection import Connection  # the SDK's has no from_json before 3.1
    from airflow.sdk.execution_time.comms import ConnectionResult

    conn = Connection.from_json(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"], conn_id=conn_id)
    fields = ("conn_id", "conn_type", "host", "schema", "login", "password", "port", "extra")
    return ConnectionResult(**{name: getattr(conn, name) for name in fields})


@pytest.fixture
def channel(monkeypatch: pytest.MonkeyPatch) -> SupervisorChannel:
    from airflow.sdk.execution_time import task_runner

    fake = SupervisorChannel()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", fake, raising=False)
    return fake


async def only_event(trigger: LumaGenerationTrigger) -> TriggerEvent:
    # Serialized and rebuilt with its task instance, as the triggerer runs it.
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_luma.triggers.LumaGenerationTrigger"
    rebuilt = LumaGenerationTrigger(**kwargs)
    rebuilt.task_instance = SimpleNamespace(**dict(zip(("dag_id", "task_id", "run_id", "map_index"), TI, strict=True)))
    events = [event async for event in rebuilt.run()]
    assert len(events) == 1
    return events[0]


async def ended_in_trigger(
    op: LumaGenerateVideoOperator, context: dict[str, Any], channel: SupervisorChannel
) -> dict[str, Any]:
    """Defer ``op``, run its trigger, check it ended the task; return the XComs it wrote."""
    event = await only_event(defer(op, context))
    # Airflow 3.3.2 would store an event's own xcoms JSON-encoded twice: the trigger writes them itself.
    assert isinstance(event, TaskSuccessEvent) and event.xcoms is None
    return dict(channel.xcoms)


async def resumed_with(op: LumaGenerateVideoOperator, context: dict[str, Any]) -> dict[str, Any]:
    """Defer ``op``, run its trigger, check it resumes the worker (a plain event); return the event's payload."""
    event = await only_event(defer(op, context))
    assert type(event) is TriggerEvent
    assert event.payload["video_url"] is None  # the worker fetches (and masks) fresh URLs
    return dict(event.payload)


def create_requests(server: LumaSimulatorServer) -> int:
    return len([e for e in server.simulator.request_log if e.method == "POST"])


async def resumed_result(make: Callable[[], LumaGenerateVideoOperator], context: dict[str, Any]) -> dict[str, Any]:
    """What the same render returns when a worker resumes it (reuse_existing=False keeps the resume)."""
    trigger = defer(make(), context)
    event = await only_event(trigger)
    assert type(event) is TriggerEvent
    return make().execute_complete(context, event=event.payload)


@pytest.fixture
def no_listeners() -> Iterator[None]:
    from airflow.providers.common.compat.sdk import get_listener_manager

    manager = get_listener_manager()
    manager.clear()
    yield
    manager.clear()


@pytest.mark.usefixtures("no_listeners")
async def test_a_render_without_output_path_ends_in_the_triggerer_with_every_key_a_worker_pushes(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], channel: SupervisorChannel
) -> None:
    op = generate(hdr=True, exr_export=True)
    event = await only_event(defer(op, context))
    assert isinstance(event, TaskSuccessEvent) and event.xcoms is None
    xcoms = channel.xcoms
    result = xcoms["return_value"]
    assert isinstance(result, dict) and set(result) == RESULT_KEYS - {"video_bytes", "exr_bytes"}  # none stored
    # Every key is its own XCom (multiple_outputs), so op.output["generation_id"] resolves downstream.
    assert {key: xcoms[key] for key in result} == result
    for key in ("generation_id", "request_id", "video_url", "estimated_cost_usd"):
        assert op.output[key].key in xcoms
    generation = luma_conn_env.simulator.generation(str(result["request_id"]))
    assert result["generation_id"] == generation.generation_id
    assert str(result["video_url"]).startswith(luma_conn_env.root_url) and result["exr_url"]
    # The same values a resumed worker returns for the same render (ids and URLs aside).
    again = await resumed_result(lambda: generate(task_id="other", hdr=True, exr_export=True, reuse_existing=False), {})
    differ = {"generation_id", "request_id", "video_url", "exr_url"}
    assert set(again) == set(result)
    assert {k: v for k, v in result.items() if k not in differ} == {k: v for k, v in again.items() if k not in differ}
    # The triggerer logs the event ("Trigger fired event", rendered with repr()): its state, never the presigned URL.
    assert repr(event) == "TriggerEvent<'success'>"


@pytest.mark.usefixtures("no_listeners")
async def test_without_multiple_outputs_only_the_return_value_is_pushed(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], channel: SupervisorChannel
) -> None:
    assert list(await ended_in_trigger(generate(multiple_outputs=False), context, channel)) == ["return_value"]


@pytest.mark.usefixtures("no_listeners")
async def test_a_retry_after_the_triggerer_ended_the_task_buys_nothing(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], channel: SupervisorChannel
) -> None:
    xcoms = await ended_in_trigger(generate(), context, channel)
    assert context["task_state_store"].get(STATE_KEY)["phase"] == "submitted"  # only a worker writes "succeeded"
    # The task is cleared: the next try finds the render done and returns it without a create request.
    result = generate().execute(context)
    assert create_requests(luma_conn_env) == 1
    assert result["generation_id"] == xcoms["generation_id"]
    assert result["video_url"], "fresh URLs are fetched for the new try"


@pytest.mark.usefixtures("no_listeners")
async def test_a_runner_that_resumes_anyway_finishes_from_the_durable_record(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], channel: SupervisorChannel
) -> None:
    # dag.test() runs the trigger inline and resumes the task with the event's payload: the state name.
    xcoms = await ended_in_trigger(generate(), context, channel)
    assert TaskSuccessEvent(xcoms=xcoms).payload == "success"
    result = generate().execute_complete(context, event="success")
    assert result["generation_id"] == xcoms["generation_id"] and result["video_url"]
    assert context["task_state_store"].get(STATE_KEY)["phase"] == "succeeded"
    assert create_requests(luma_conn_env) == 1


@pytest.mark.usefixtures("luma_conn_env")
async def test_without_a_durable_record_the_resumed_success_payload_is_refused(context: dict[str, Any]) -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(AirflowException, match="no usable event"):
        generate().execute_complete(context, event="success")


def _mapped_downstream(dag_id: str) -> LumaGenerateVideoOperator:
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        op = generate()
        PythonOperator.partial(task_id="each", python_callable=print).expand(op_args=op.output.map(lambda item: [item]))
    return op


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda tmp: generate(output_path=str(tmp)), id="output_path: files are stored by a worker"),
        pytest.param(lambda tmp: generate(reuse_existing=False), id="reuse_existing=False needs the succeeded phase"),
        pytest.param(lambda tmp: generate(outlets=[Asset("clips")]), id="outlets: asset events come from a worker"),
        pytest.param(lambda tmp: generate(on_success_callback=print), id="on_success_callback runs on the worker"),
        pytest.param(lambda tmp: generate(do_xcom_push=False), id="do_xcom_push=False"),
        pytest.param(lambda tmp: _mapped_downstream("mapped_dependant"), id="a mapped task depends on it"),
    ],
)
@pytest.mark.usefixtures("no_listeners")
async def test_renders_whose_finish_needs_a_worker_resume_there(
    make: Callable[[Path], LumaGenerateVideoOperator],
    tmp_path: Path,
    luma_conn_env: LumaSimulatorServer,
    context: dict[str, Any],
    channel: SupervisorChannel,
) -> None:
    assert (await resumed_with(make(tmp_path), context))["status"] == "success"
    assert channel.xcoms == {}


async def test_a_registered_listener_keeps_the_resume_on_the_worker(
    no_listeners: None, luma_conn_env: LumaSimulatorServer, context: dict[str, Any], channel: SupervisorChannel
) -> None:
    from airflow.providers.common.compat.sdk import get_listener_manager

    class Listener:  # e.g. OpenLineage's: it hears on_task_instance_success where the task succeeds
        pass

    get_listener_manager().add_listener(Listener())
    assert (await resumed_with(generate(), context))["status"] == "success"
    assert channel.xcoms == {}


@pytest.mark.usefixtures("no_listeners")
async def test_a_failed_render_still_resumes_the_worker_to_fail_or_retry(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], channel: SupervisorChannel
) -> None:
    from airflow_provider_luma.testing import Fault

    luma_conn_env.simulator.inject(Fault.fail_generation(reason="GPU fell over", failure_code="generation_failed"))
    assert (await resumed_with(generate(), context))["status"] == "failed"


@pytest.mark.usefixtures("no_listeners")
async def test_xcoms_that_cannot_be_written_leave_the_finish_to_the_worker(
    luma_conn_env: LumaSimulatorServer, context: dict[str, Any], channel: SupervisorChannel
) -> None:
    channel.fail = True
    payload = await resumed_with(generate(), context)
    assert payload["status"] == "success"
    result = generate().execute_complete(context, event=payload)
    assert result["video_url"] and create_requests(luma_conn_env) == 1
