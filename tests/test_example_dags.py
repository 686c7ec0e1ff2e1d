"""Every example DAG imports cleanly (no import errors, no warnings) and has the expected shape."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

EXAMPLES = Path(__file__).parents[1] / "example_dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(EXAMPLES))
    ours = [w for w in caught if "example_dags" in str(w.filename) or "airflow_provider_luma" in str(w.filename)]
    assert ours == [], [str(w.message) for w in ours]
    return bag


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {
        "example_luma_asset_consumer",
        "example_luma_asset_producer",
        "example_luma_content_pipeline",
        "example_luma_fanout",
        "example_luma_image_to_video",
        "example_luma_scheduled",
    }


def test_content_pipeline_is_chained_by_xcom(dagbag: DagBag) -> None:
    dag = dagbag.dags.get("example_luma_content_pipeline")
    assert dag is not None
    upstream = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
    assert upstream == {
        "opening_shot": [],
        "closing_shot": [],
        "extend_forward": ["opening_shot"],
        "extend_backward": ["closing_shot"],
        "interpolate": ["extend_backward", "extend_forward"],
        "cost_report": ["closing_shot", "extend_backward", "extend_forward", "interpolate", "opening_shot"],
    }
    render = dag.get_task("extend_forward")
    assert render.max_cost_usd == 2.0 and "{generation_id}" in render.output_path  # type: ignore[attr-defined]


def test_asset_consumer_is_scheduled_on_the_producers_alias(dagbag: DagBag) -> None:
    from airflow.sdk import AssetAlias

    producer = dagbag.dags["example_luma_asset_producer"].get_task("render_clip")
    consumer = dagbag.dags["example_luma_asset_consumer"]
    assert AssetAlias("example_luma_clips") in producer.outlets
    assert "example_luma_clips" in str(consumer.timetable.asset_condition)


def test_scheduled_example_is_daily(dagbag: DagBag) -> None:
    dag = dagbag.dags.get("example_luma_scheduled")
    assert dag is not None and "data_interval_start" in dag.get_task("daily_clip").prompt  # type: ignore[attr-defined]
