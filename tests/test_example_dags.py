"""Every example DAG imports cleanly (no import errors, no warnings) and has the expected shape."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from airflow_provider_luma.version_compat import AIRFLOW_V_3_2_PLUS

# Airflow 3.2 moved the file-parsing DagBag to airflow.dag_processing.dagbag (3.0 and 3.1: airflow.models.dagbag,
# which in 3.2+ holds only the database-backed DBDagBag).
if AIRFLOW_V_3_2_PLUS:
    from airflow.dag_processing.dagbag import DagBag
else:  # pragma: no cover - Airflow 3.0 and 3.1
    from airflow.models.dagbag import DagBag  # type: ignore[attr-defined,no-redef,unused-ignore]

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
        "example_luma_social_cut",
        "example_luma_submit_then_store",
    }


def test_social_cut_chains_the_family(dagbag: DagBag) -> None:
    dag = dagbag.dags["example_luma_social_cut"]
    upstream = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks if t.task_id != "cost_report"}
    assert upstream == {
        "master": [],
        "extend": ["master"],
        "reframe_9x16": ["extend"],
        "edit_film_look": ["reframe_9x16"],
    }
    assert [dag.get_task(t).MODEL_ID for t in upstream] == [  # type: ignore[attr-defined]
        "luma-ray-3-2-generate", "luma-ray-3-2-generate", "luma-ray-3-2-reframe", "luma-ray-3-2-edit",
    ]  # fmt: skip


BROKEN_DAGS = [
    ("hdr-540p", 'LumaGenerateVideoOperator(task_id="t", prompt="p", hdr=True, resolution="540p")',
     "hdr=true is not available at resolution=540p"),
    ("reframe-image-ratio", 'LumaReframeVideoOperator(task_id="t", prompt="p", source_generation_id="g", '
     'aspect_ratio="2:1")', "aspect_ratio '2:1' is image-only"),
    ("edit-two-controls", 'LumaEditVideoOperator(task_id="t", prompt="p", source_generation_id="g", '
     'edit_auto_controls=True, edit_strength="flex_1")', "mutually exclusive"),
    ("extend-from-xcom-bad-ratio", 'LumaExtendVideoOperator(task_id="t", prompt="p", '
     'generation_id=up.output["generation_id"], aspect_ratio="1:3")', "aspect_ratio '1:3' is image-only"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "rule"), [(b, r) for _, b, r in BROKEN_DAGS], ids=[i for i, _, _ in BROKEN_DAGS])
def test_literal_rule_breaks_are_dag_import_errors(tmp_path: Path, body: str, rule: str) -> None:
    (tmp_path / "broken.py").write_text(
        "import pendulum\n"
        "from airflow.sdk import DAG\n"
        "from airflow_provider_luma.operators import *\n"
        "with DAG('broken', schedule=None, start_date=pendulum.datetime(2026, 1, 1)):\n"
        "    up = LumaGenerateVideoOperator(task_id='up', prompt='p')\n"
        f"    {body}\n"
    )
    bag = DagBag(dag_folder=str(tmp_path))
    (error,) = bag.import_errors.values()
    assert rule in error


def test_templated_values_are_left_for_after_templating(tmp_path: Path) -> None:
    (tmp_path / "templated.py").write_text(
        "import pendulum\n"
        "from airflow.sdk import DAG\n"
        "from airflow_provider_luma.operators import LumaGenerateVideoOperator\n"
        "with DAG('templated', schedule=None, start_date=pendulum.datetime(2026, 1, 1)):\n"
        "    LumaGenerateVideoOperator(\n"
        "        task_id='t', prompt='{{ params.p }}', hdr='{{ params.hdr }}', resolution='540p'\n"
        "    )\n"
    )
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {} and "templated" in bag.dag_ids


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
