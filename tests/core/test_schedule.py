"""The default poll schedule (airflow_provider_luma.core.schedule): the table, the rule, and its wiring."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_luma.core import schedule as s
from airflow_provider_luma.triggers import LumaGenerationTrigger


def test_table_is_pinned() -> None:
    assert s.EXPECTED_RENDER_SECONDS == {
        ("540p", "5s", "sdr"): 40.0,
        ("540p", "10s", "sdr"): 80.0,
        ("720p", "5s", "sdr"): 60.0,
        ("720p", "10s", "sdr"): 120.0,
        ("720p", "5s", "hdr"): 150.0,
        ("720p", "5s", "hdr+exr"): 180.0,
        ("1080p", "5s", "sdr"): 120.0,
        ("1080p", "10s", "sdr"): 240.0,
        ("1080p", "5s", "hdr"): 300.0,
        ("1080p", "5s", "hdr+exr"): 360.0,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (("720p", "5s", False, False), 60.0),
        (("1080p", "10s", False, False), 240.0),
        (("1080p", "5s", True, False), 300.0),
        (("720p", "5s", True, True), 180.0),
        (("540p", "10s", True, False), s.DEFAULT_EXPECTED_SECONDS),  # not a valid combination: the fallback
    ],
)
def test_expected_render_seconds(params: tuple[str, str, bool, bool], expected: float) -> None:
    assert s.expected_render_seconds(*params) == expected


def test_first_poll_is_a_fraction_of_the_expected_time_capped_by_poll_intervals() -> None:
    assert s.first_poll_delay(60.0, 10.0) == pytest.approx(36.0)
    assert s.first_poll_delay(240.0, 10.0) == pytest.approx(144.0)
    assert s.first_poll_delay(360.0, 10.0) == pytest.approx(150.0)  # 15 intervals
    assert s.first_poll_delay(60.0, 1.0) == pytest.approx(15.0)  # a short poll_interval shortens the wait
    assert s.first_poll_delay(60.0, 0.05) == pytest.approx(0.75)


def test_gap_is_half_the_interval_near_the_expected_finish_then_the_interval() -> None:
    assert s.poll_gap(40.0, 60.0, 10.0) == 5.0
    assert s.poll_gap(89.9, 60.0, 10.0) == 5.0
    assert s.poll_gap(90.0, 60.0, 10.0) == 10.0
    assert s.poll_gap(40.0, None, 10.0) == 10.0  # triggers serialized without an expected time
    assert s.poll_gap(40.0, 60.0, 30.0) == 15.0  # poll_interval stays the knob


def test_poll_times_for_a_default_720p_render() -> None:
    times = s.poll_times(60.0, 10.0, until=100.0)
    assert times[:3] == [36.0, 41.0, 46.0]
    assert times[-3:] == [86.0, 91.0, 101.0]


def test_module_is_pure() -> None:
    tree = ast.parse(Path(s.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {m for m in imported if m.split(".")[0] in {"airflow", "httpx", "pydantic", "airflow_provider_luma"}}


def test_trigger_kwargs_stay_json_and_old_kwargs_still_load() -> None:
    old = {"request_id": "r", "deadline": 2e9, "luma_conn_id": "c", "poll_interval": 10.0,
           "first_poll_at": None, "submitted_at": None}  # fmt: skip
    trigger = LumaGenerationTrigger(**old)
    assert trigger.expected_seconds is None and trigger._next_gap() == 10.0
    new = LumaGenerationTrigger(**old | {"submitted_at": time.time(), "expected_seconds": 60})
    assert new.serialize()[1]["expected_seconds"] == 60.0
    assert new._next_gap() == 5.0


@pytest.mark.luma_simulator(render_seconds=60)
def test_operator_defers_with_the_schedule(luma_conn_env: object, context: dict[str, Any]) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_provider_luma.operators import LumaGenerateVideoOperator

    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        LumaGenerateVideoOperator(task_id="t", prompt="p", resolution="1080p", duration="10s").execute(context)
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["poll_interval"] == 10.0 and kwargs["expected_seconds"] == 240.0
    assert before + 144.0 <= kwargs["first_poll_at"] <= time.time() + 144.0
