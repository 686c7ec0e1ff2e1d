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
from airflow_provider_luma.version_compat import AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS

# The Airflow CLI commands the tests below read, run in one interpreter (each `airflow` start costs seconds of
# CPU): the real parser and command functions, as `airflow <args>` runs them; a marker line separates outputs.
CLI_COMMANDS = {
    "providers": ["providers", "list", "-o", "json"],
    "hooks": ["providers", "hooks", "-o", "json"],
    "triggers": ["providers", "triggers", "-o", "json"],
    "links": ["providers", "links", "-o", "json"],
    "plugins": ["plugins", "-o", "json"],
    "plugins_table": ["plugins"],
}
MARKER = "----luma-cli-output----"
CLI_SCRIPT = """
import json, sys
from airflow.__main__ import main
commands, marker = json.loads(sys.argv[1]), sys.argv[2]
for argv in commands:
    sys.argv = ["airflow", *argv]
    main()
    print(marker, flush=True)
    print(marker, file=sys.stderr, flush=True)
"""


@pytest.fixture(scope="module")
def airflow_cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Each command's (stdout, stderr), by the names of :data:`CLI_COMMANDS`."""
    home = tmp_path_factory.mktemp("cli-home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    argv = json.dumps(list(CLI_COMMANDS.values()))
    done = subprocess.run(
        [sys.executable, "-c", CLI_SCRIPT, argv, MARKER], env=env, capture_output=True, text=True, check=True
    )
    outs, errs = done.stdout.split(MARKER + "\n"), done.stderr.split(MARKER + "\n")
    return {name: (outs[i], errs[i]) for i, name in enumerate(CLI_COMMANDS)}


def cli_json(airflow_cli: dict[str, tuple[str, str]], name: str) -> list[dict[str, object]]:
    out = airflow_cli[name][0]
    # The JSON list starts a line; Airflow 3.0 prints its start-up log lines ("[2026-…] {…} INFO - …") before it.
    start = next(i for i, line in enumerate(out.splitlines()) if line.startswith(("[{", "[]")))
    return json.loads("\n".join(out.splitlines()[start:]))


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
    if not AIRFLOW_V_3_2_PLUS:  # 3.0 and 3.1 describe no connection form fields: the hook's method does
        assert "conn-fields" not in json.dumps(strict)
        return
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


def test_airflow_cli_lists_provider_hook_and_trigger(airflow_cli: dict[str, tuple[str, str]]) -> None:
    providers = cli_json(airflow_cli, "providers")
    assert {"package_name": "airflow-provider-luma", "version": airflow_provider_luma.__version__}.items() <= next(
        p for p in providers if p["package_name"] == "airflow-provider-luma"
    ).items()
    hooks = cli_json(airflow_cli, "hooks")
    luma = next(h for h in hooks if h["connection_type"] == "luma")
    assert luma["class"] == "airflow_provider_luma.hooks.LumaHook"
    assert luma["conn_id_attribute_name"] == "luma_conn_id"
    triggers = cli_json(airflow_cli, "triggers")
    assert any(t["class"] == "airflow_provider_luma.triggers" for t in triggers)
    links = cli_json(airflow_cli, "links")
    assert any(link["extra_link_class_name"] == "airflow_provider_luma.operators.LumaVideoLink" for link in links)


def test_airflow_cli_lists_the_gallery_plugin_without_import_errors(airflow_cli: dict[str, tuple[str, str]]) -> None:
    plugins = cli_json(airflow_cli, "plugins")
    (gallery,) = [p for p in plugins if p["name"] == "luma_gallery"]
    assert "/luma" in json.dumps(gallery["fastapi_apps"])
    # The nav entry and the task-instance tab are external views, which Airflow has from 3.1 (3.0: pages by URL).
    assert ("Luma renders" in json.dumps(gallery.get("external_views"))) is AIRFLOW_V_3_1_PLUS
    assert "import error" not in "".join(airflow_cli["plugins_table"]).lower()


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
        or m.split(".")[0] in {"fastapi", "uvicorn", "httpx", "openlineage", "av"}
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


def test_the_hook_describes_the_connection_form_for_airflow_before_3_2() -> None:
    """Airflow 3.0 and 3.1 take the form's labels from the hook; with no form fields there, ``api`` and
    ``organization_id`` are set in Extra, so Extra is shown."""
    from airflow_provider_luma.hooks import LumaHook

    behaviour = LumaHook.get_ui_field_behaviour()
    declared = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
    assert behaviour["relabeling"] == declared["relabeling"] == {"host": "Base URL", "password": "API Key"}
    assert "extra" not in behaviour["hidden_fields"] and "extra" in declared["hidden-fields"]
    assert json.loads(behaviour["placeholders"]["extra"]) == {"api": "gmi", "organization_id": None}
