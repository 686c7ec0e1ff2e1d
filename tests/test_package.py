"""Packaging contract: provider discovery by the real Airflow CLI, light DAG-parse imports, public names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_luma
from airflow_provider_luma import get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_json(tmp_path: Path, *args: str) -> list[dict[str, object]]:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([AIRFLOW, *args, "-o", "json"], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("[") :])


def test_provider_info_shape() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-luma"
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "luma" and conn["hook-class-name"] == "airflow_provider_luma.hooks.LumaHook"
    assert "conn-fields" in conn and "ui-field-behaviour" in conn
    assert conn["ui-field-behaviour"]["relabeling"]["password"] == "API Key"
    assert info["sensors"] == [{"integration-name": "Luma AI", "python-modules": ["airflow_provider_luma.sensors"]}]


def test_provider_info_validates_against_airflows_schemas() -> None:
    """Airflow's own schemas: the one ProvidersManager checks provider info with at discovery, and the stricter
    one every first-party provider.yaml is held to, whose ``connection-types`` describe the form fields."""
    import airflow
    import jsonschema

    root = Path(airflow.__file__).parent
    runtime = json.loads((root / "provider_info.schema.json").read_text())
    strict = json.loads((root / "provider.yaml.schema.json").read_text())["properties"]["connection-types"]
    info = get_provider_info()
    jsonschema.validate(info, runtime)
    jsonschema.validate(info["connection-types"], strict)
    # The strict schema is not vacuous for us: a form field without its label, or an unknown UI option, fails.
    (conn,) = info["connection-types"]
    unlabelled = {**conn, "conn-fields": {"api": {"schema": {"type": "string"}}}}
    unknown_option = {**conn, "ui-field-behaviour": {**conn["ui-field-behaviour"], "hidden": ["port"]}}
    for broken in (unlabelled, unknown_option):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate([broken], strict)


def test_provider_info_plugin_matches_the_entry_point() -> None:
    import importlib
    from importlib.metadata import entry_points

    (plugin,) = get_provider_info()["plugins"]
    module, _, name = plugin["plugin-class"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "luma_gallery"]
    assert cls is entry.load() and cls.name == plugin["name"] == "luma_gallery"


def test_airflow_cli_lists_provider_hook_and_trigger(tmp_path: Path) -> None:
    providers = airflow_json(tmp_path, "providers", "list")
    assert {"package_name": "airflow-provider-luma", "version": airflow_provider_luma.__version__}.items() <= next(
        p for p in providers if p["package_name"] == "airflow-provider-luma"
    ).items()
    hooks = airflow_json(tmp_path, "providers", "hooks")
    luma = next(h for h in hooks if h["connection_type"] == "luma")
    assert luma["class"] == "airflow_provider_luma.hooks.LumaHook"
    assert luma["conn_id_attribute_name"] == "luma_conn_id"
    triggers = airflow_json(tmp_path, "providers", "triggers")
    assert any(t["class"] == "airflow_provider_luma.triggers" for t in triggers)
    links = airflow_json(tmp_path, "providers", "links")
    assert any(link["extra_link_class_name"] == "airflow_provider_luma.operators.LumaVideoLink" for link in links)


def test_airflow_cli_lists_the_gallery_plugin_without_import_errors(tmp_path: Path) -> None:
    plugins = airflow_json(tmp_path, "plugins")
    (gallery,) = [p for p in plugins if p["name"] == "luma_gallery"]
    assert "/luma" in json.dumps(gallery["fastapi_apps"]) and "Luma renders" in json.dumps(gallery["external_views"])
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([AIRFLOW, "plugins"], env=env, capture_output=True, text=True, check=True)
    assert "import error" not in (out.stdout + out.stderr).lower()


@pytest.mark.parametrize("module", ["airflow_provider_luma.operators", "airflow_provider_luma.sensors"])
def test_importing_operators_stays_light(module: str) -> None:
    code = (
        f"import airflow.sdk, sys; before = set(sys.modules); import {module}; "
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    added = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    forbidden = [
        m
        for m in added
        if m.startswith(
            ("airflow_provider_luma.core.http", "airflow_provider_luma.hooks", "airflow_provider_luma.testing")
        )
        or m.startswith(("airflow_provider_luma.runtime.lineage", "airflow.providers.openlineage"))
        or m.split(".")[0] in {"fastapi", "uvicorn", "httpx", "openlineage"}
    ]
    assert forbidden == []
    assert module in added


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("airflow_provider_luma.hooks", ["LumaHook"]),
        ("airflow_provider_luma.triggers", ["LumaGenerationTrigger"]),
        ("airflow_provider_luma.sensors", ["LumaGenerationSensor"]),
        (
            "airflow_provider_luma.operators",
            [
                "LumaGenerateVideoOperator",
                "LumaExtendVideoOperator",
                "LumaInterpolateVideoOperator",
                "LumaDownloadVideoOperator",
                "LumaVideoLink",
            ],
        ),
        ("airflow_provider_luma.cost", ["luma_cost_report", "summarize_costs"]),
        ("airflow_provider_luma.testing", ["LumaSimulator", "LumaSimulatorServer", "Fault"]),
    ],
)
def test_public_names(module: str, names: list[str]) -> None:
    mod = __import__(module, fromlist=names)
    for name in names:
        assert getattr(mod, name).__module__.startswith(module)


def test_py_typed_is_shipped() -> None:
    assert (Path(airflow_provider_luma.__file__).parent / "py.typed").exists()
