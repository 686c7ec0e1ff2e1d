"""Progress lines of a waiting render: a steady cadence (not every poll), elapsed and expected time left, and a
warning far past the expected time; quiet by default for short renders."""

from __future__ import annotations

import re
import time

import pytest

from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.runtime.progress import duration, progress_interval
from airflow_provider_luma.testing import LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger


def progress_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The trigger's progress lines as the triggerer's log shows them (Airflow's structlog writes to stdout)."""
    return [line for line in capsys.readouterr().out.splitlines() if " elapsed" in line]


async def wait_for_render(expected: float, interval: float | None) -> float:
    request_id = LumaHook().submit_generation(GenerateRequest.validate_params({"prompt": "p"})).request_id
    now = time.time()
    trigger = LumaGenerationTrigger(
        request_id=request_id, deadline=now + 30, poll_interval=0.1, submitted_at=now,
        expected_seconds=expected, render_label="720p 5s 16:9", progress_interval=interval,
    )  # fmt: skip
    events = [e.payload async for e in trigger.run()]
    assert events[0]["status"] == "success"
    return time.time() - now


@pytest.mark.luma_simulator(render_seconds=2.6)
async def test_progress_comes_at_a_steady_cadence_and_warns_far_past_the_expected_time(
    luma_conn_env: LumaSimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    elapsed = await wait_for_render(expected=1.0, interval=0.5)
    lines = progress_lines(capsys)
    # One line per interval, although the trigger polled every 0.1 s (~25 polls).
    assert elapsed / 0.5 - 2 <= len(lines) <= elapsed / 0.5
    first, late, far = lines[0], lines[1], lines[-1]
    assert "processing, 1 s elapsed, about 0 s left (a 720p 5s 16:9 render takes about 1 s)" in first
    assert "a little past the 1 s a 720p 5s 16:9 render usually takes; still waiting (deadline in" in late
    assert "far past" in far and re.search(r"\[warning|WARNING", far)  # structlog (3.3) or logging (older)


@pytest.mark.luma_simulator(render_seconds=2.0)
async def test_by_default_a_render_logs_at_most_one_progress_line_a_minute(
    luma_conn_env: LumaSimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await wait_for_render(expected=60.0, interval=None)
    assert progress_lines(capsys) == []
    assert progress_interval(1.0) == 60.0 and progress_interval(0.01) == 1.0  # the simulator's clock: floored


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0 s"), (45, "45 s"), (190, "3 min 10 s"), (3900, "1 h 05 min"), (-3, "0 s")]
)
def test_durations_read_like_a_person_would_write_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text
