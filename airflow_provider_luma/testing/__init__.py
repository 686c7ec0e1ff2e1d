"""A local simulator of GMI Cloud's request queue for the Luma Ray 3.2 family, for tests and demos.

It serves ``luma-ray-3-2-generate``, ``luma-ray-3-2-edit`` and ``luma-ray-3-2-reframe`` and checks payloads with
its own rule tables (``_rules``), never with the provider's models, so one wrong rule cannot pass on both sides.
``LumaSimulatorServer(api="luma_agents")`` speaks the native Luma Agents API instead (``POST /v1/generations``,
``GET /v1/generations/{id}``, tables in ``_native_rules``) over the same state: a server per API may share one
:class:`LumaSimulator`, and a generation made on either front is a source on the other.

:class:`LumaSimulatorServer` serves a :class:`LumaSimulator` over real HTTP on ``127.0.0.1`` (stdlib only: no
Airflow, httpx or web framework), so DAGs, hooks and triggers run against it exactly as against the real API::

    from airflow_provider_luma.testing import Fault, LumaSimulatorServer

    with LumaSimulatorServer(time_factor=0.01) as server:
        server.simulator.inject(Fault.http_error(503, on="poll"))
        os.environ["AIRFLOW_CONN_LUMA_DEFAULT"] = server.airflow_conn_json()
        ...

The pytest plugin (:mod:`airflow_provider_luma.testing.pytest_plugin`, installed with the provider) offers the
same as the ``luma_simulator`` and ``luma_conn_env`` fixtures; ``python -m airflow_provider_luma.testing`` runs
a server from the command line.

Names are imported on first use, so importing this package (as the pytest plugin does) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_luma.testing._faults import Fault, FaultKind, FaultTarget, LoggedRequest
    from airflow_provider_luma.testing._media import sample_mp4
    from airflow_provider_luma.testing._server import BASE_PATH, NATIVE_BASE_PATH, LumaSimulatorServer
    from airflow_provider_luma.testing._state import LumaSimulator
    from airflow_provider_luma.testing._types import (
        DEFAULT_TEST_API_KEY,
        Api,
        GenerationRecord,
        ManualClock,
        ResponseStyle,
        SimulatorConfig,
    )

__all__ = [
    "Api",
    "BASE_PATH",
    "DEFAULT_TEST_API_KEY",
    "Fault",
    "FaultKind",
    "FaultTarget",
    "GenerationRecord",
    "LoggedRequest",
    "LumaSimulator",
    "LumaSimulatorServer",
    "ManualClock",
    "NATIVE_BASE_PATH",
    "ResponseStyle",
    "SimulatorConfig",
    "sample_mp4",
]

_MODULE_OF: dict[str, str] = {
    "Api": "_types",
    "BASE_PATH": "_server",
    "DEFAULT_TEST_API_KEY": "_types",
    "Fault": "_faults",
    "FaultKind": "_faults",
    "FaultTarget": "_faults",
    "GenerationRecord": "_types",
    "LoggedRequest": "_faults",
    "LumaSimulator": "_state",
    "LumaSimulatorServer": "_server",
    "ManualClock": "_types",
    "NATIVE_BASE_PATH": "_server",
    "ResponseStyle": "_types",
    "SimulatorConfig": "_types",
    "sample_mp4": "_media",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
