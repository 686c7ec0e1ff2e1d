"""OpenLineage mapping of the render, download and sensor operators (unit level; tests/e2e/test_lineage_chain.py runs
them through Airflow's real listener), the outcome recorder they read, and the house ``default_deferrable``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_luma.operators import (
    LumaDownloadVideoOperator,
    LumaEditVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
)
from airflow_provider_luma.runtime.lineage import location_dataset, render_lineage, sensor_lineage, url_dataset
from airflow_provider_luma.runtime.outcome import last_error, last_result, records_outcome
from airflow_provider_luma.sensors import LumaGenerationSensor

CONN = {"conn_type": "luma", "host": "http://127.0.0.1:8765/api/v1/ie/requestqueue/apikey", "password": "k"}
NAMESPACE = "luma-gmi://127.0.0.1:8765"


@pytest.fixture(autouse=True)
def luma_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", json.dumps(CONN))


def finished(op: Any, result: dict[str, Any]) -> Any:
    """Run a recorded method on ``op`` that returns ``result``, as ``execute_complete`` would."""
    records_outcome(lambda self: result)(op)
    return op


def pairs(datasets: list[Any]) -> set[tuple[str, str]]:
    return {(d.namespace, d.name) for d in datasets}


class Boom(RuntimeError):
    pass


def test_records_outcome_keeps_the_result_and_the_error_but_not_a_deferral() -> None:
    class Op:
        @records_outcome
        def ok(self) -> int:
            return 7

        @records_outcome
        def defer(self) -> None:
            raise TaskDeferred(trigger=None, method_name="x")  # type: ignore[arg-type]

        @records_outcome
        def fail(self) -> None:
            raise Boom("no")

    op = Op()
    assert last_result(op) is None and last_error(op) is None
    assert op.ok() == 7 and last_result(op) == 7
    with pytest.raises(TaskDeferred):
        op.defer()
    assert last_error(op) is None
    with pytest.raises(Boom):
        op.fail()
    assert isinstance(last_error(op), Boom)


def test_a_chain_shares_one_generation_dataset_between_output_and_next_input() -> None:
    master = finished(
        LumaGenerateVideoOperator(task_id="master", prompt="p", start_frame_url="https://img.example.com/a.png?X-Sig=s"),
        {"generation_id": "g1", "request_id": "r1", "backend": "gmi", "model": "luma-ray-3-2-generate",
         "source_generation_ids": [], "video_path": "file:///data/clips/master-g1.mp4", "exr_path": None},
    )  # fmt: skip
    extend = finished(
        LumaExtendVideoOperator(task_id="extend", generation_id="g1", prompt="p"),
        {"generation_id": "g2", "request_id": "r2", "backend": "gmi", "source_generation_ids": ["g1"],
         "video_path": "s3://aws_default@media/luma/extend-g2.mp4"},
    )  # fmt: skip
    first, second = render_lineage(master), render_lineage(extend)
    # The frame URL is an input without its query string (a presigned URL's credential).
    assert pairs(first.inputs) == {("https://img.example.com", "/a.png")}
    assert pairs(first.outputs) == {(NAMESPACE, "generations/g1"), ("file", "/data/clips/master-g1.mp4")}
    assert pairs(second.inputs) == {(NAMESPACE, "generations/g1")}
    assert pairs(second.outputs) == {(NAMESPACE, "generations/g2"), ("s3://media", "luma/extend-g2.mp4")}
    facets = second.run_facets
    assert facets["externalQuery"].externalQueryId == "r2" and facets["externalQuery"].source == NAMESPACE
    assert (facets["lumaRender"].request_id, facets["lumaRender"].generation_id) == ("r2", "g2")
    assert "errorMessage" not in facets


def test_a_failed_edit_names_its_source_video_and_carries_the_error() -> None:
    edit = LumaEditVideoOperator(task_id="edit", source_video="/in/clip.mp4", prompt="p", edit_strength="flex_1")
    with pytest.raises(Boom):
        records_outcome(lambda self: (_ for _ in ()).throw(Boom("refused: 400")))(edit)
    lineage = render_lineage(edit, failed=True)
    assert pairs(lineage.inputs) == {("file", "/in/clip.mp4")} and lineage.outputs == []
    error = lineage.run_facets["errorMessage"]
    assert error.message == "Boom: refused: 400" and "Traceback" in error.stackTrace


def test_the_native_backend_has_its_own_namespace_and_a_missing_connection_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sensor = finished(
        LumaGenerationSensor(task_id="wait", request_id="r9"),
        {"generation_id": "g9", "request_id": "r9", "backend": "luma_agents"},
    )
    monkeypatch.delenv("AIRFLOW_CONN_LUMA_DEFAULT")
    lineage = sensor_lineage(sensor)
    assert pairs(lineage.outputs) == {("luma-agents://agents.lumalabs.ai", "generations/g9")}
    assert lineage.run_facets["externalQuery"].externalQueryId == "r9"


def test_download_lineage_reads_the_generation_and_writes_the_files() -> None:
    op = finished(
        LumaDownloadVideoOperator(task_id="store", request_id="r1", output_path="/data/out/"),
        {"generation_id": "g1", "request_id": "r1", "video_path": "file:///data/out/store-g1.mp4",
         "exr_path": "file:///data/out/store-g1.exr"},
    )  # fmt: skip
    lineage = op.get_openlineage_facets_on_complete(None)
    assert pairs(lineage.inputs) == {(NAMESPACE, "generations/g1")}
    assert pairs(lineage.outputs) == {("file", "/data/out/store-g1.mp4"), ("file", "/data/out/store-g1.exr")}


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/abs/clip.mp4", ("file", "/abs/clip.mp4")),
        ("file:///abs/clip.mp4", ("file", "/abs/clip.mp4")),
        ("s3://conn@bucket/k/clip.mp4", ("s3://bucket", "k/clip.mp4")),
        ("gs://bucket/clip.mp4", ("gs://bucket", "clip.mp4")),
        ("relative/clip.mp4", None),
        ("", None),
    ],
)
def test_location_dataset(location: str, expected: tuple[str, str] | None) -> None:
    ds = location_dataset(location)
    assert (None if ds is None else (ds.namespace, ds.name)) == expected


def test_url_dataset_refuses_what_is_not_http() -> None:
    assert url_dataset("ftp://host/a.png") is None
    ds = url_dataset("https://user:pw@img.example.com:8443/f.png#x")
    assert ds is not None and (ds.namespace, ds.name) == ("https://img.example.com:8443", "/f.png")


# Unset, Airflow's own default for the option (false) applies: `fallback` only serves a config without the option.
@pytest.mark.parametrize(
    ("setting", "expected"), [(None, "False False"), ("False", "False False"), ("True", "True True")]
)
def test_deferrable_follows_operators_default_deferrable(setting: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"}
    if setting is not None:
        env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = setting
    code = (
        "from airflow_provider_luma.operators import LumaReframeVideoOperator as R; "
        "from airflow_provider_luma.sensors import LumaGenerationSensor as S; "
        "print(R(task_id='r', prompt='p', source_generation_id='g', aspect_ratio='9:16').deferrable, "
        "S(task_id='s', request_id='r').deferrable)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == expected  # Airflow 3.0 logs its start-up to stdout first
