"""Plain helpers shared by the unit tests: drive an operator the way Airflow does, finish a render at once, store
it after its URL expired, and read what reached the simulator. Test modules import from here (never from one
another); fixtures live in ``conftest.py``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_luma.core.http import ClientSettings, LumaClient
from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.operators import LumaGenerateVideoOperator
from airflow_provider_luma.runtime import delivery as _deliver
from airflow_provider_luma.runtime.storage import parse_output_path
from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY, LoggedRequest, LumaSimulatorServer, ManualClock
from airflow_provider_luma.triggers import LumaGenerationTrigger

if TYPE_CHECKING:
    from airflow.sdk import Connection

log = logging.getLogger(__name__)


def logged_lines(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], text: str) -> list[str]:
    """The lines containing ``text`` that the code under test logged, counted once.

    Airflow 3.3 logs through structlog to stdout; older releases log through the standard library, which ``caplog``
    captures and Airflow's console handler also echoes to stdout. The source with the most matches is the log.
    """
    sources = (caplog.text.splitlines(), capsys.readouterr().out.splitlines())
    return max(([line for line in lines if text in line] for lines in sources), key=len)


class MemoryStateStore:
    """Same interface as Airflow 3.3's ``context["task_state_store"]`` accessor, kept in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes: list[tuple[str, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        assert value is not None
        self.values[key] = value
        self.writes.append((key, value))


def fresh_context() -> dict[str, Any]:
    """A task context with an empty durable store: a new task, never run before."""
    return {"task_state_store": MemoryStateStore()}


def make(cls: type[LumaGenerateVideoOperator] = LumaGenerateVideoOperator, **kwargs: Any) -> LumaGenerateVideoOperator:
    """An operator with ``task_id="render"`` and a 50-ms poll interval unless ``kwargs`` say otherwise."""
    kwargs.setdefault("task_id", "render")
    kwargs.setdefault("poll_interval", 0.05)
    return cls(**kwargs)


async def run_deferred(factory: Callable[[], LumaGenerateVideoOperator], context: dict[str, Any]) -> dict[str, Any]:
    """What Airflow does: execute defers, the triggerer runs the trigger, a fresh instance resumes."""
    with pytest.raises(TaskDeferred) as deferred:
        factory().execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, LumaGenerationTrigger)
    event = [e.payload async for e in trigger.run()][0]
    return getattr(factory(), deferred.value.method_name)(context, event=event)


def posts(server: LumaSimulatorServer) -> list[LoggedRequest]:
    """The create requests (every ``POST``) the simulator received, in order."""
    return [e for e in server.simulator.request_log if e.method == "POST"]


def media_requests(server: LumaSimulatorServer) -> list[int | None]:
    """The status of every media (``/files/``) request the simulator answered, in order."""
    return [e.status for e in server.simulator.request_log if e.path.startswith("/files/")]


def finished_render(server: LumaSimulatorServer, prompt: str = "a fox", **params: Any) -> dict[str, Any]:
    """Submit a render, finish it at once, and return its generation with (freshly minted) URLs."""
    settings = ClientSettings(base_url=server.base_url, api_key=DEFAULT_TEST_API_KEY)
    with LumaClient(settings) as client:
        created = client.submit(GenerateRequest.validate_params({"prompt": prompt, **params}))
        server.simulator.complete_now(created.request_id)
        done = client.get_generation(created.request_id)
    return {"request_id": done.request_id, "generation_id": done.generation_id, "video_url": done.video_url,
            "exr_url": done.exr_url}  # fmt: skip


def sim_connection(server: LumaSimulatorServer) -> Connection:
    """The ``luma_default`` connection to ``server``, for a hook whose ``get_connection`` a test replaces."""
    from airflow.sdk import Connection

    return Connection(conn_id="luma_default", conn_type="luma", host=server.base_url, password=DEFAULT_TEST_API_KEY)


def deliver_after_the_url_expired(server: LumaSimulatorServer, output_path: str) -> tuple[dict[str, Any], Any]:
    """A finished render whose presigned URL expired (2 h pass; they live 1 h), stored to ``output_path``."""
    clock = ManualClock()
    server.simulator.set_clock(clock)
    render = finished_render(server)
    clock.advance(2 * 3600)
    spec = parse_output_path(output_path)
    assert spec is not None
    hook = LumaHook()
    hook.get_connection = lambda conn_id: sim_connection(server)  # type: ignore[method-assign]
    return render, _deliver.store_outputs(hook, render, spec, {"generation_id": render["generation_id"]}, log)
