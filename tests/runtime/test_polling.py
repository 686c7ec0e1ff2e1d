"""The one poll loop (airflow_provider_luma.runtime.polling): a table of status-answer sequences, each run through the
worker's sync driver and the trigger's async driver against the simulator, on a clock that moves only when the
wait sleeps (no real sleeps, nothing that depends on the machine's load)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_luma.core.jobs import Job, JobStatus
from airflow_provider_luma.core.retry import RetryPolicy
from airflow_provider_luma.core.specs.generate import GenerateRequest
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.runtime.polling import (
    PollMachine,
    Schedule,
    apoll_until_done,
    poll_until_done,
    state_label,
    submitted_at,
)
from airflow_provider_luma.testing import Fault, LumaSimulatorServer
from tests.conftest import SimulatedTime

ONE_TRY = RetryPolicy(max_attempts=1)  # one status call = one answer of the table (no retries inside the client)
LABEL = "720p 5s 16:9"


class Midpoint(random.Random):
    """The spread of a resumed wait's first poll, pinned to the middle of its range."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


@dataclass
class Lines:
    """A logger that keeps each line as the log would show it."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def info(self, message: str, *args: object) -> None:
        self.lines.append(("info", message % args))

    def warning(self, message: str, *args: object) -> None:
        self.lines.append(("warning", message % args))


@dataclass(frozen=True)
class Case:
    """A render of 9 s (queued for its first 1.35 s) with ``faults`` answered to its polls; expected 2 s, polled
    with ``p = 2``: the first poll at 1.2 s (60 %), then every 1 s until 3 s (1.5 × expected), then every 2 s."""

    faults: tuple[Fault, ...] = ()
    on_submit: tuple[Fault, ...] = ()
    progress: float = 60.0
    budget: float = 60.0
    resumed_after: float = 0.0  # a wait that starts this long after the submission (a retry re-attaching)
    lines: tuple[tuple[str, str], ...] = ()
    sleeps: tuple[float, ...] = (1.2, 1, 1, 2, 2, 2)  # the polls of a render that ends at 9 s
    event: tuple[tuple[str, Any], ...] = (("status", "success"),)


R = "{rid}"  # the request id, filled in per run
SUCCESS = ("info", f"Luma request {R}: processing -> success after 9 s")
CASES = {
    "queued, processing, success": Case(
        lines=(("info", f"Luma request {R}: submitted -> queued after 1 s"),
               ("info", f"Luma request {R}: queued -> processing after 2 s"),
               SUCCESS),
        event=(("status", "success"), ("elapsed_seconds", 9.2), ("retryable", False), ("video_url", None)),
    ),
    "progress lines at their cadence, not every poll; a warning far past the expected time": Case(
        progress=1.5,
        lines=(("info", f"Luma request {R}: submitted -> queued after 1 s"),
               ("info", f"Luma request {R}: queued -> processing after 2 s"),
               ("info", f"Luma request {R}: processing, 3 s elapsed: a little past the 2 s a {LABEL} render "
                        "usually takes; still waiting (deadline in 57 s)"),
               ("warning", f"Luma request {R}: processing, 5 s elapsed: far past the 2 s a {LABEL} render usually "
                           "takes; still waiting (deadline in 55 s)"),
               ("warning", f"Luma request {R}: processing, 7 s elapsed: far past the 2 s a {LABEL} render usually "
                           "takes; still waiting (deadline in 53 s)"),
               SUCCESS),
        event=(("status", "success"), ("elapsed_seconds", 9.2)),
    ),
    "the service's own word in brackets, one vocabulary on both sides": Case(
        faults=(Fault.malformed('{"status": "dispatched"}', on="poll"),),
        lines=(("info", f"Luma request {R}: submitted -> queued (dispatched) after 1 s"),
               ("info", f"Luma request {R}: queued (dispatched) -> processing after 2 s"),
               SUCCESS),
    ),
    "an unknown status is warned about and waited on": Case(
        faults=(Fault.malformed('{"status": "rendering"}', on="poll"),),
        lines=(("info", f"Luma request {R}: submitted -> unknown (rendering) after 1 s"),
               ("warning", f"Luma request {R}: unknown status 'rendering'; treating it as still running"),
               ("info", f"Luma request {R}: unknown (rendering) -> processing after 2 s"),
               SUCCESS),
    ),
    "a transient failure keeps polling": Case(
        faults=(Fault.http_error(503, on="poll"),),
        lines=(("warning", f"Luma request {R}: status check failed (*); still polling until the deadline"),
               ("info", f"Luma request {R}: submitted -> processing after 2 s"),
               SUCCESS),
    ),
    "a permanent failure stops at the first answer": Case(
        faults=(Fault.http_error(402, "Insufficient credits", on="poll"),),
        sleeps=(1.2,),
        event=(("status", "error"), ("retryable", False), ("message", "LumaInsufficientCreditsError: *credits*")),
    ),
    "unusable answers in a row end the wait": Case(
        faults=(Fault.malformed(on="poll", times=5),),
        lines=tuple(("warning", f"Luma request {R}: status check failed (*); still polling until the deadline")
                    for _ in range(4)),
        sleeps=(1.2, 1, 1, 2, 2),
        event=(("status", "error"), ("retryable", True),
               ("message", f"Luma request {R}: 5 status answers in a row could not be used (*")),
    ),
    "the deadline ends the wait with the last state": Case(
        budget=3.0,
        lines=(("info", f"Luma request {R}: submitted -> queued after 1 s"),
               ("info", f"Luma request {R}: queued -> processing after 2 s")),
        sleeps=(1.2, 1, 0.8),
        event=(("status", "timeout"), ("retryable", True), ("elapsed_seconds", 3.0),
               ("message", f"Luma request {R} was still processing at its deadline. The render may still finish*")),
    ),
    "a failed render": Case(
        on_submit=(Fault.fail_generation("content moderated", failure_code="content_moderated"),),
        lines=(("info", f"Luma request {R}: submitted -> queued after 1 s"),
               ("info", f"Luma request {R}: queued -> processing after 2 s"),
               ("info", f"Luma request {R}: processing -> failed after 9 s")),
        event=(("status", "failed"), ("failure_code", "content_moderated"), ("retryable", False)),
    ),
    "a re-attached wait keeps the submission's clock and spreads its overdue first poll": Case(
        resumed_after=30.0,
        lines=(("info", f"Luma request {R}: submitted -> success after 31 s"),),
        sleeps=(1.0,),  # half a gap (2 s this late), not a new 60 % of the expected time
        event=(("status", "success"), ("elapsed_seconds", 31.0)),
    ),
}  # fmt: skip


@dataclass
class Outcome:
    lines: list[tuple[str, str]]
    sleeps: list[float]
    event: dict[str, Any]


def start(case: Case, server: LumaSimulatorServer, clock: SimulatedTime) -> tuple[str, PollMachine]:
    server.simulator.configure(render_seconds=9.0)
    server.simulator.inject(*case.on_submit)
    request_id = LumaHook().submit_generation(GenerateRequest.validate_params({"prompt": "p"})).request_id
    server.simulator.inject(*case.faults)
    submitted = clock.time()
    clock.manual.advance(case.resumed_after)
    schedule = Schedule.starting(clock.time(), case.budget, poll_interval=2.0, expected_seconds=2.0, since=submitted)
    machine = PollMachine(request_id, schedule, label=LABEL, progress_interval=case.progress, rng=Midpoint())
    return request_id, machine


def sync_driver(case: Case, server: LumaSimulatorServer, clock: SimulatedTime) -> Outcome:
    request_id, machine = start(case, server, clock)
    log, hook = Lines(), LumaHook(retry_policy=ONE_TRY)
    event = poll_until_done(machine, lambda: hook.get_generation(request_id), log, clock)
    return Outcome(log.lines, clock.slept, {**event, "rid": request_id})


async def async_driver(case: Case, server: LumaSimulatorServer, clock: SimulatedTime) -> Outcome:
    request_id, machine = start(case, server, clock)
    log = Lines()
    async with LumaHook(retry_policy=ONE_TRY).ashared_client() as client:
        event = await apoll_until_done(machine, lambda: client.aget_generation(request_id), log, clock)
    return Outcome(log.lines, clock.slept, {**event, "rid": request_id})


def matches(text: str, pattern: str) -> bool:
    """``*`` stands for any text (the exception texts of the client are not this table's business)."""
    import fnmatch

    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))


@pytest.mark.parametrize("driver", ["sync (worker)", "async (trigger)"])
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_a_sequence_of_answers_gives_the_same_lines_sleeps_and_event_in_both_drivers(
    luma_conn_env: LumaSimulatorServer, simulated_time: SimulatedTime, case: Case, driver: str
) -> None:
    if driver.startswith("sync"):
        outcome = sync_driver(case, luma_conn_env, simulated_time)
    else:
        outcome = await async_driver(case, luma_conn_env, simulated_time)
    rid = outcome.event["rid"]
    expected_lines = [(level, text.replace(R, rid)) for level, text in case.lines]
    assert len(outcome.lines) == len(expected_lines), outcome.lines
    for (level, text), (want_level, pattern) in zip(outcome.lines, expected_lines, strict=True):
        assert level == want_level and matches(text, pattern), (text, pattern)
    assert outcome.sleeps == pytest.approx(list(case.sleeps))
    for key, want in case.event:
        got = outcome.event[key]
        if isinstance(want, str) and "*" in want:
            assert matches(str(got), want.replace(R, rid)), (key, got)
        else:
            assert got == pytest.approx(want) if isinstance(want, float) else got == want, (key, got)
    assert outcome.event["request_id"] == rid


def test_the_worker_loop_keeps_the_presigned_urls_the_trigger_leaves_out(
    luma_conn_env: LumaSimulatorServer, simulated_time: SimulatedTime
) -> None:
    clock = simulated_time
    request_id, _ = start(Case(), luma_conn_env, clock)
    schedule = Schedule.starting(clock.time(), 60.0, poll_interval=2.0, expected_seconds=2.0)
    machine = PollMachine(request_id, schedule, with_urls=True)
    event = poll_until_done(machine, lambda: LumaHook().get_generation(request_id), Lines(), clock)
    assert event["status"] == "success" and str(event["video_url"]).startswith(luma_conn_env.root_url)


@pytest.mark.parametrize(
    ("status", "raw", "label"),
    [
        (JobStatus.QUEUED, "queued", "queued"),
        (JobStatus.QUEUED, "dispatched", "queued (dispatched)"),
        (JobStatus.SUCCESS, "COMPLETED", "success (COMPLETED)"),
        (JobStatus.PROCESSING, "Processing", "processing"),
        (JobStatus.UNKNOWN, "", "unknown"),
    ],
)
def test_one_vocabulary_for_states(status: JobStatus, raw: str, label: str) -> None:
    assert state_label(Job(request_id="r", status=status, backend="gmi", raw_status=raw)) == label


FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (json.loads((FIXTURES / "v0_1_state.json").read_text())["records"][0]["record"], 1764620000.0),  # by 0.1
        ({"version": 2, "phase": "submitted", "request_id": "REPLACE_WITH_SIMULATOR_REQUEST_ID",
          "attempted_at": 1764620000.5}, 1764620000.5),
        ({"phase": "submitting", "request_id": None, "attempted_at": 1764620000.0}, None),  # never accepted
        ({"phase": "submitted", "request_id": "another", "attempted_at": 1764620000.0}, None),
        ({"phase": "submitted", "request_id": "REPLACE_WITH_SIMULATOR_REQUEST_ID", "attempted_at": "x"}, None),
        (None, None),
    ],
)  # fmt: skip
def test_the_submission_time_is_read_from_the_durable_record(record: dict[str, Any] | None, expected: float) -> None:
    assert submitted_at(record, "REPLACE_WITH_SIMULATOR_REQUEST_ID") == expected
