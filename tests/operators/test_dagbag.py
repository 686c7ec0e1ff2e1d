"""The DagBag test the docs show (tests/user_example/test_dags_import.py) works on Airflow 3.3.2: it passes on the
example DAGs and fails, with the rule in the import error, on a DAG file whose literals break one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.user_example import test_dags_import

ROOT = Path(__file__).resolve().parents[2]

BROKEN = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_luma.operators import LumaGenerateVideoOperator, LumaReframeVideoOperator

with DAG("broken", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    master = LumaGenerateVideoOperator(task_id="master", prompt="p")  # 16:9 by default
    LumaReframeVideoOperator(
        task_id="wide", source_generation_id=master.output["generation_id"], prompt="r", aspect_ratio="16:9"
    )
"""


def test_the_shown_dagbag_test_passes_on_the_example_dags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(test_dags_import, "DAGS", ROOT / "example_dags")
    test_dags_import.test_every_dag_file_imports()


def test_the_shown_dagbag_test_fails_on_a_literal_mistake_with_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    monkeypatch.setattr(test_dags_import, "DAGS", tmp_path)
    with pytest.raises(AssertionError, match="aspect_ratio: the source is already 16:9; reframe must change the ratio"):
        test_dags_import.test_every_dag_file_imports()
