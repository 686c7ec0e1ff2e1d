"""The gallery's pure parts: which tasks are renders, clip fields, the chain, byte ranges, the plugin's surfaces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_luma.plugins import gallery_url
from airflow_provider_luma.plugins._media import ByteRange, RangeNotSatisfiable, parse_range
from airflow_provider_luma.plugins._model import TaskRow, assemble

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def result(gid: str, mode: str, sources: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "return_value": {
            "generation_id": gid,
            "request_id": f"req-{gid}",
            "model": "luma-ray-3-2-generate",
            "mode": mode,
            "source_generation_ids": sources,
            "video_path": f"file:///clips/{gid}.mp4",
            "estimated_cost_usd": 0.5,
            "resolution": "720p",
            "duration": "5s",
            "aspect_ratio": "16:9",
            "hdr": False,
            **extra,
        }
    }


def row(task_id: str, state: str, operator: str = "LumaGenerateVideoOperator", **kw: Any) -> TaskRow:
    return TaskRow(task_id=task_id, map_index=kw.pop("map_index", -1), state=state, operator=operator, **kw)


def test_clips_chain_costs_and_states() -> None:
    rows = [
        row("a", "success", rendered_fields={"prompt": "<b>dawn</b>"}),
        row("b", "success", "LumaInterpolateVideoOperator"),
        row(
            "c",
            "deferred",
            "LumaEditVideoOperator",
            start_date=NOW - timedelta(seconds=75),
            rendered_fields={"source_generation_id": "gb", "prompt": "film"},
        ),  # fmt: skip
        row("d", "failed", reason="content moderated"),
        row("report", "success", "PythonOperator"),
        row("m", "success", "MyRender", map_index=2),
    ]
    xcoms = {
        ("a", -1): result("ga", "text_to_video", []),
        ("b", -1): result("gb", "interpolation", ["ga", "gx"]),
        ("c", -1): {"estimated_cost_usd": None},
        ("report", -1): {"return_value": {"total_estimated_cost_usd": 1.0}},
        ("m", 2): {"model": "luma-ray-3-2-reframe", **result("gm", "reframe", ["ga"], video_path=None)},
    }
    data = assemble("dag", "run", "running", rows, xcoms, NOW).to_json()  # started ones first, by start
    clips = {c["key"]: c for c in data["clips"]}
    assert list(clips) == ["c", "a", "b", "d", "m[2]"], "PythonOperator is not a render; a subclass with a model is"
    assert clips["a"]["prompt"] == "<b>dawn</b>" and clips["a"]["stored"] and clips["a"]["status"] == "done"
    assert clips["a"]["video"] == "video/dag/run/a/-1"
    assert clips["m[2]"]["video"] == "video/dag/run/m/2" and not clips["m[2]"]["stored"], "presigned path"
    assert clips["c"]["status"] == "rendering" and clips["c"]["elapsed_seconds"] == 75.0 and clips["c"]["video"] is None
    assert clips["d"]["status"] == "failed" and clips["d"]["reason"] == "content moderated"
    assert {(e["from"], e["to"], e["kind"]) for e in data["edges"]} == {
        ("a", "b", "interpolated"),
        ("b", "c", "edited"),  # from the rendered fields while the edit is still rendering
        ("a", "m[2]", "reframed"),
    }
    assert data["total_estimated_cost_usd"] == 1.5 and data["unpriced_renders"] == 2 and data["in_flight"]


def test_a_hundred_mapped_renders_make_one_chain() -> None:
    # Speed is measured in benchmarks/gallery.py; this pins what the page is told about a large fan-out.
    rows = [row("r", "success", map_index=i) for i in range(100)]
    xcoms = {("r", i): result(f"g{i}", "extend_forward", [f"g{i - 1}"] if i else []) for i in range(100)}
    data = assemble("dag", "run", "success", rows, xcoms, NOW).to_json()
    assert len(data["clips"]) == 100 and len(data["edges"]) == 99 and not data["in_flight"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", ByteRange(0, 99, 1000)),
        ("bytes=900-", ByteRange(900, 999, 1000)),
        ("bytes=-100", ByteRange(900, 999, 1000)),
        ("bytes=990-5000", ByteRange(990, 999, 1000)),
        ("bytes=0-1,5-9", None),  # multi-range: the whole file
        ("items=0-1", None),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=-0"])
def test_unsatisfiable_range(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_gallery_url_and_plugin_surfaces() -> None:
    from airflow_provider_luma.plugins.gallery import LumaGalleryPlugin

    assert gallery_url("http://h:8080/", "d", "r+1", "t", 0) == "http://h:8080/luma/runs/d/r%2B1#clip=t%5B0%5D"
    (app,) = LumaGalleryPlugin.fastapi_apps
    assert app["url_prefix"] == "/luma"
    tab = next(v for v in LumaGalleryPlugin.external_views if v["destination"] == "dag_run")
    assert tab["href"] == "luma/runs/{DAG_ID}/{RUN_ID}" and tab["url_route"]


def test_static_page_sets_text_only() -> None:
    from pathlib import Path

    import airflow_provider_luma.plugins as plugins

    static = Path(plugins.__file__).parent / "static"
    for name in ("gallery.js", "runs.js"):
        code = (static / name).read_text()
        assert "innerHTML" not in code and "insertAdjacentHTML" not in code and "eval(" not in code
    html = (static / "gallery.html").read_text() + (static / "runs.html").read_text()
    assert "http://" not in html and "https://" not in html, "no CDN: everything is served by the plugin"
