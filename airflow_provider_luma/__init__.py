"""Apache Airflow provider for Luma Ray 3.2 video rendering (generate, edit, reframe), on GMI Cloud's request queue
or Luma's own Agents API.

The package reads in one direction, and ``tests/test_layout.py`` keeps it so (no import cycle; the core imports no
Airflow; the runtime imports no operator):

* ``core``: Airflow-free. One spec module per model, one wire module per API (``core/backends``), the HTTP client,
  retries, the poll schedule, prices, media downloads, the exception tree.
* ``runtime``: the worker- and triggerer-side life of one render: its plan, its durable record, the submit / wait /
  finish flow, result payloads, money (run budget and cost scan), delivery and storage, progress lines, lineage.
* The Airflow surface: ``operators`` (build the plan and hand themselves to the runtime as a small protocol),
  ``hooks`` (connection -> client), ``triggers``, ``sensors``, and ``cost`` (the cost-report task callable).
* ``plugins``: the "Luma renders" gallery in the Airflow UI. ``testing``: the simulator and its pytest fixtures.

This module imports nothing heavy, and :func:`get_provider_info` imports nothing at all: Airflow calls it during
provider discovery, which runs inside ``import airflow.sdk`` in every Airflow process. So it names no model (the
model registry, :mod:`airflow_provider_luma.core.specs.registry`, would cost every process the specs' import); the
``api`` choices are :data:`airflow_provider_luma.core.backends.BACKEND_NAMES` (a test keeps them equal).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-luma",
        "name": "Luma AI",
        "description": "Render videos with the Luma Ray 3.2 models on GMI Cloud or the Luma Agents API.",
        "integrations": [
            {
                "integration-name": "Luma AI",
                "external-doc-url": "https://docs.gmicloud.ai/inference-engine/api-reference/video-api-reference",
                "tags": ["software"],
            }
        ],
        "operators": [
            {"integration-name": "Luma AI", "python-modules": ["airflow_provider_luma.operators"]},
        ],
        "sensors": [
            {"integration-name": "Luma AI", "python-modules": ["airflow_provider_luma.sensors"]},
        ],
        "hooks": [
            {"integration-name": "Luma AI", "python-modules": ["airflow_provider_luma.hooks"]},
        ],
        "triggers": [
            {"integration-name": "Luma AI", "python-modules": ["airflow_provider_luma.triggers"]},
        ],
        "extra-links": ["airflow_provider_luma.operators.LumaVideoLink"],
        # Also an ``airflow.plugins`` entry point (pyproject.toml), as first-party providers do: the entry point is
        # read whatever ``[core] lazy_discover_providers`` says, this list only when providers load eagerly.
        "plugins": [
            {"name": "luma_gallery", "plugin-class": "airflow_provider_luma.plugins.gallery.LumaGalleryPlugin"}
        ],
        "connection-types": [
            {
                "connection-type": "luma",
                "hook-class-name": "airflow_provider_luma.hooks.LumaHook",
                "hook-name": "Luma AI (GMI Cloud / Luma Agents API)",
                "conn-fields": {
                    "api": {
                        "label": "API",
                        "description": "gmi (GMI Cloud's request queue, the default) or luma_agents (Luma's own API).",
                        "schema": {"type": ["string", "null"], "enum": ["gmi", "luma_agents", None]},
                    },
                    "organization_id": {
                        "label": "Organization ID",
                        "description": "Sent as X-Organization-ID for multi-organization accounts (optional).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "Base URL", "password": "API Key"},
                    "placeholders": {
                        "host": "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey",
                        "password": "GMI Cloud API key, or a Luma key (luma-api-...) with API luma_agents",
                        "api": "gmi",
                    },
                },
            }
        ],
    }
