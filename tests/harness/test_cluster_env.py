"""The harness's process environment: Airflow components can import the test-side modules named by dotted path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness._cluster_env import CHECKOUT, process_environment
from tests.harness.distributed import DISTRIBUTED_CONFIG

# What the components load by dotted path from the harness (the e2e gallery test configures the auth manager).
CONFIGURED_MODULES = [
    DISTRIBUTED_CONFIG["celery.celery_config_options"].rpartition(".")[0],
    "tests.harness._auth",
]


def test_the_checkout_goes_first_on_pythonpath_and_airflow_variables_stay_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")

    env = process_environment(tmp_path, {"core.parallelism": "3"}, {"EXTRA": "1"})

    assert env["PYTHONPATH"].split(os.pathsep) == [str(CHECKOUT), "/somewhere/else"]
    assert (CHECKOUT / "tests" / "harness" / "__init__.py").is_file()
    assert "AIRFLOW__CORE__EXECUTOR" not in env
    assert env["AIRFLOW__CORE__PARALLELISM"] == "3" and env["EXTRA"] == "1"


def test_a_component_finds_the_harness_modules_without_the_editable_install(tmp_path: Path) -> None:
    env = process_environment(tmp_path, {}, {})
    # -S: no site-packages, so no .pth of an editable install; only PYTHONPATH can make tests.harness importable.
    # find_spec imports the parent packages only, not the modules (which import Airflow).
    code = "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in sys.argv[1:]) else 3)"
    done = subprocess.run([sys.executable, "-S", "-c", code, *CONFIGURED_MODULES], cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0

    without = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, *CONFIGURED_MODULES],
        cwd=tmp_path,
        env=without,
        check=False,
        stderr=subprocess.DEVNULL,
    )
    assert done.returncode != 0  # the check can fail: without the variable the modules are not found
