"""The gallery's side of the review (``review=LumaReview``): takes shown as display data, and a finished take
awaiting review plays (minted from the worker-written delivery record only)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_luma.plugins import _media
from airflow_provider_luma.plugins._review import awaiting_review, summarize

RECORD = {"request_id": "req-2", "generation_id": "gen-2", "model": "luma-ray-3-2-generate", "backend": "gmi"}
FIELDS = {"luma_delivery": RECORD, "luma_conn_id": "luma_default"}


@pytest.mark.parametrize(
    ("state", "record", "mints"),
    [
        ("awaiting_input", RECORD, True),  # 3.3: the task waits for the answer
        ("deferred", RECORD, True),  # 3.1-3.2: it waits in the HITL trigger
        ("deferred", {**RECORD, "generation_id": None}, False),  # a take still rendering
        ("running", RECORD, False),
        ("success", RECORD, True),
    ],
)
def test_a_take_awaiting_review_plays_from_its_delivery_record(state: str, record: dict[str, Any], mints: bool) -> None:
    fields = {**FIELDS, "luma_delivery": record}
    assert awaiting_review(state, record) is (mints and state != "success")
    if mints:
        assert _media.plan_video(fields, state).request_id == "req-2"
    else:
        with pytest.raises(_media.VideoRefused):
            _media.plan_video(fields, state)


def test_takes_are_display_text_only() -> None:
    stored = {
        "version": 1,
        "takes": [
            {"number": 1, "edits": {}, "result": {"generation_id": "gen-1", "estimated_cost_usd": 0.15,
                                                  "video_path": "/etc/passwd"},
             "decision": "re-render", "by": "Alice (alice)", "at": "2026-12-06T12:00:00+00:00", "note": None},
            {"number": 2, "edits": {"prompt": "<img src=x onerror=alert(1)>" + "x" * 400}, "result": None,
             "decision": None, "by": None, "at": None, "note": None},
        ],
    }  # fmt: skip
    first, second = summarize(stored)
    assert first == {"number": 1, "decision": "re-render", "by": "Alice (alice)", "at": "2026-12-06T12:00:00+00:00",
                     "generation_id": "gen-1", "estimated_cost_usd": 0.15, "edits": {}, "note": None}  # fmt: skip
    assert second["decision"] == "rendering" and len(second["edits"]["prompt"]) == 300
    assert "video_path" not in str(first)
    assert summarize("not json") == [] and summarize({"version": 9, "takes": []}) == []
