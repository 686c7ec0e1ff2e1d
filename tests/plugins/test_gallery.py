"""The gallery's pure parts: which tasks are renders, clip fields, the chain, byte ranges, the plugin's surfaces."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from airflow_provider_luma.plugins import gallery_url
from airflow_provider_luma.plugins._media import ByteRange, RangeNotSatisfiable, parse_range
from airflow_provider_luma.plugins._model import TaskRow, assemble

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


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
        row("a", "success", rendered_fields={"prompt": "<b>dawn</b>", **record(video_path="file:///clips/ga.mp4")}),
        row("b", "success", "LumaInterpolateVideoOperator", rendered_fields=record(video_path="file:///c/gb.mp4")),
        row(
            "c",
            "deferred",
            "LumaEditVideoOperator",
            start_date=NOW - timedelta(seconds=75),
            rendered_fields={"source_generation_id": "gb", "prompt": "film"},
        ),  # fmt: skip
        row("d", "failed", reason="content moderated"),
        row("report", "success", "PythonOperator"),
        row("m", "success", "MyRender", map_index=2, rendered_fields=record(request_id="req-gm")),
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
    # c started first but is made from b, made from a: the chain's order; PythonOperator is not a render, a
    # subclass with a model is.
    assert list(clips) == ["a", "b", "c", "d", "m[2]"]
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
    # c was bought without a price; d failed before buying (no cost XCom): not an unpriced render.
    assert data["total_estimated_cost_usd"] == 1.5 and data["unpriced_renders"] == 1 and data["in_flight"]
    assert clips["c"]["bought"] and not clips["d"]["bought"]


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
    for name in ("gallery.js", "runs.js", "review.js", "common.js"):
        code = (static / name).read_text()
        assert "innerHTML" not in code and "insertAdjacentHTML" not in code and "eval(" not in code
    html = "".join((static / name).read_text() for name in ("gallery.html", "runs.html", "review.html"))
    assert "http://" not in html and "https://" not in html, "no CDN: everything is served by the plugin"


# -- the video route trusts only the delivery record (rendered template fields), never an XCom ------------------

FORGED = {"return_value": {"video_path": "/etc/hostname", "request_id": "someone-elses-request"}}


def record(**values: Any) -> dict[str, Any]:
    base = dict.fromkeys(("request_id", "generation_id", "model", "backend", "video_path", "exr_path"))
    return {"luma_conn_id": "luma_default", "luma_delivery": {**base, **values}}


@pytest.fixture
def video_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """The real gallery app without auth and database: the test sets the task instance the route sees."""
    from airflow.api_fastapi.common.db.common import _get_session

    from airflow_provider_luma.plugins import _app, _db, _media

    ti: dict[str, Any] = {"found": True, "state": "success", "fields": {}, "minted": []}

    def no_xcoms(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the video route read an XCom")

    def mint(conn_id: str, request_id: str, model: str | None, backend: str | None = None) -> str:
        ti["minted"].append((conn_id, request_id))
        return f"https://cdn.example/{request_id}.mp4?sig=1"

    monkeypatch.setattr(_db, "delivery_fields", lambda *a: (ti["found"], ti["state"], ti["fields"]))
    monkeypatch.setattr(_db, "xcom_values", no_xcoms)
    monkeypatch.setattr(_media, "fresh_video_url", mint)
    app = _app.create_app()
    app.dependency_overrides[_app.ReadXcoms.dependency] = lambda: None
    app.dependency_overrides[_get_session] = lambda: None
    with TestClient(app, follow_redirects=False) as client:
        yield client, ti


def test_stored_copy_streams_with_ranges(video_client: tuple[TestClient, dict[str, Any]], tmp_path: Path) -> None:
    client, ti = video_client
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(bytes(range(256)) * 40)
    ti["fields"] = record(request_id="r1", video_path=f"file://{clip}")
    whole = client.get("/video/d/r/t/-1")
    assert whole.status_code == 200 and whole.content == clip.read_bytes()
    part = client.get("/video/d/r/t/-1", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == clip.read_bytes()[100:200]
    assert client.get("/video/d/r/t/-1", headers={"Range": "bytes=99999-"}).status_code == 416
    assert ti["minted"] == []


@pytest.mark.parametrize(
    ("state", "fields", "status", "says"),
    [
        ("success", {"luma_conn_id": "luma_default"}, 404, "no delivery record"),  # rendered by an older release
        ("failed", {"luma_conn_id": "luma_default", "luma_delivery": None}, 404, "not recorded a Luma render"),
        ("failed", record(request_id="r1"), 404, "is failed"),  # a failed task's own request: no fresh URL
        ("running", record(request_id="r1"), 404, "is running"),
        ("success", record(video_path="http://169.254.169.254/latest"), 422, "http://"),
        ("success", record(video_path="***"), 422, "not an absolute storage path"),
        ("success", record(video_path="clips/a.mp4"), 422, "not an absolute storage path"),
        ("success", record(video_path="nosuchproto://bucket/a.mp4"), 422, "cannot be opened here"),
        ("failed", record(video_path="file:///nonexistent/luma/a.mp4"), 404, "gone"),
        ("success", {"luma_delivery": {"request_id": "r1"}}, 404, "no connection"),
    ],
)
def test_nothing_but_the_record_is_opened(
    video_client: tuple[TestClient, dict[str, Any]], state: str, fields: dict[str, Any], status: int, says: str
) -> None:
    client, ti = video_client
    ti.update(state=state, fields=fields)
    response = client.get("/video/d/r/t/-1")
    assert (response.status_code, ti["minted"]) == (status, [])
    assert says in response.json()["detail"]


def test_a_directory_is_not_a_stored_copy(video_client: tuple[TestClient, dict[str, Any]], tmp_path: Path) -> None:
    client, ti = video_client
    ti["fields"] = record(video_path=str(tmp_path))
    assert client.get("/video/d/r/t/-1").status_code == 404


def test_fresh_url_only_for_the_recorded_request_of_a_successful_task(
    video_client: tuple[TestClient, dict[str, Any]],
) -> None:
    client, ti = video_client
    ti["fields"] = {**record(request_id="own-request"), "luma_conn_id": "luma_other"}
    response = client.get("/video/d/r/t/-1")
    assert response.status_code == 307 and response.headers["location"].startswith("https://cdn.example/own-request")
    # A stored copy that is gone falls back to the recorded request, minted with the task's rendered connection.
    ti["fields"] = {**record(request_id="own-2", video_path="file:///nonexistent/a.mp4"), "luma_conn_id": "luma_x"}
    assert client.get("/video/d/r/t/-1").status_code == 307
    assert ti["minted"] == [("luma_other", "own-request"), ("luma_x", "own-2")]
    ti["found"] = False
    assert client.get("/video/d/r/t/-1").status_code == 404


def test_the_player_comes_from_the_record_not_the_xcom() -> None:
    from airflow_provider_luma.operators._base import DELIVERY_FIELD
    from airflow_provider_luma.plugins._model import DELIVERY_FIELD as MODEL_FIELD
    from airflow_provider_luma.runtime.delivery_record import FIELD

    assert FIELD == DELIVERY_FIELD == MODEL_FIELD == "luma_delivery"
    rows = [
        row("forged", "failed"),
        row("old", "success"),  # a release before the record: its XCom names a file, the page offers no player
        row("mine", "success", rendered_fields=record(request_id="r", video_path="file:///c/a.mp4")),
        row("presigned", "success", rendered_fields=record(request_id="r2")),
    ]
    xcoms = {(t, -1): FORGED for t in ("forged", "old", "mine", "presigned")}
    clips = {c["key"]: c for c in assemble("dag", "run", "failed", rows, xcoms, NOW).to_json()["clips"]}
    assert clips["forged"]["video"] is None and clips["old"]["video"] is None and not clips["old"]["stored"]
    assert clips["mine"]["video"] == "video/dag/run/mine/-1" and clips["mine"]["stored"]
    assert clips["presigned"]["video"] and not clips["presigned"]["stored"]


@pytest.mark.parametrize(
    ("fields", "ended_ago", "status", "in_flight"),
    [
        # Success is reported before the task runner re-sends the record: the page keeps refreshing until it lands.
        ({"luma_conn_id": "c", "luma_delivery": None}, 2.0, "finishing", True),
        ({"luma_conn_id": "c", "luma_delivery": None}, None, "done", False),  # no end date: 90 s since its start
        ({"luma_conn_id": "c", "luma_delivery": None}, 61.0, "done", False),  # a record that never lands
        (record(request_id="r", video_path="file:///c/a.mp4"), 2.0, "done", False),
        (None, 2.0, "done", False),  # a release before the record has no field to wait for
    ],
)
def test_a_success_whose_record_is_on_its_way_is_finishing(
    fields: dict[str, Any] | None, ended_ago: float | None, status: str, in_flight: bool
) -> None:
    end = None if ended_ago is None else NOW - timedelta(seconds=ended_ago)
    rows = [row("r", "success", rendered_fields=fields, start_date=NOW - timedelta(seconds=90), end_date=end)]
    data = assemble("dag", "run", "running", rows, {("r", -1): result("g", "text_to_video", [])}, NOW).to_json()
    assert data["clips"][0]["status"] == status and data["in_flight"] is in_flight


def test_cards_follow_the_chain_then_start_time() -> None:
    t = [NOW - timedelta(minutes=10 - i) for i in range(6)]
    rows = [
        row("edit", "success", start_date=t[0]),  # cleared and re-run: its sources started after it
        row("other", "success", start_date=t[1]),
        row("extend", "success", start_date=t[2]),
        row("master", "success", start_date=t[3]),
        row("late", "success", start_date=t[4]),
        row("queued", None),
    ]
    xcoms = {
        ("master", -1): result("gm", "text_to_video", []),
        ("extend", -1): result("ge", "extend_forward", ["gm"]),
        ("edit", -1): result("gd", "edit", ["ge"]),
        ("other", -1): result("go", "text_to_video", []),
        ("late", -1): result("gl", "text_to_video", []),
    }
    clips = assemble("dag", "run", "running", rows, xcoms, NOW).to_json()["clips"]
    assert [c["key"] for c in clips] == ["other", "master", "extend", "edit", "late", "queued"]


def test_unpriced_counts_only_renders_bought_without_a_price() -> None:
    rows = [
        row(t, s) for t, s in (("bought", "success"), ("refused", "failed"), ("waiting", None), ("priced", "running"))
    ]
    xcoms = {("bought", -1): {"estimated_cost_usd": None}, ("priced", -1): {"estimated_cost_usd": 0.4}}
    data = assemble("dag", "run", "running", rows, xcoms, NOW).to_json()
    assert data["unpriced_renders"] == 1 and data["total_estimated_cost_usd"] == 0.4


REFUSAL = "Estimated cost $4.80 is above max_cost_usd=$0.01. Nothing was submitted."


def failure_record(exc_type: str, exc_value: str) -> dict[str, Any]:
    """The record Airflow 3.3.2's task runner logs for a failed try (trimmed from a real task log)."""
    return {
        "timestamp": "2026-12-06T04:49:52.773722Z",
        "level": "error",
        "event": "Task failed with exception",
        "logger": "task",
        "error_detail": [
            {"exc_type": exc_type, "exc_value": exc_value, "exc_notes": [], "is_cause": False, "frames": []}
        ],
    }


def test_last_error_is_the_operators_message() -> None:
    from airflow.utils.log.file_task_handler import StructuredLogMessage

    from airflow_provider_luma.plugins._db import last_error

    info = {"level": "info", "event": "Luma generate render: 1080p"}
    lines = [info, failure_record("AirflowFailException", REFUSAL), {"level": "info", "event": "Marking failed"}]
    assert last_error(lines) == REFUSAL
    # As the log reader hands them over (pydantic models keeping the extra keys).
    assert last_error([StructuredLogMessage.model_validate(r) for r in lines]) == REFUSAL
    assert last_error([failure_record("KeyError", "'prompt'")]) == "KeyError: 'prompt'", "a bare value is named"
    plain = [
        {"level": "error", "event": "Luma request r1 failed: moderated"},
        {"level": "error", "event": "Task failed with exception"},
    ]
    assert last_error(plain) == "Luma request r1 failed: moderated", "no error_detail: the operator's own line"
    assert last_error([{"level": "error", "event": "Task failed with exception"}]) == "Task failed with exception"
    assert last_error([info, "not json"]) is None
