"""The run budget's queue (Lamport's bakery over registers): one decision at a time, every render that fits is
bought, a silent register does not hold the queue forever, and what is read back from XCom is checked.

The registers here live in memory and are shared by real threads, with random pauses inside every read and write
so the interleavings vary; on a real Airflow the same queue runs over XCom (tests/e2e/test_luma_run_budget.py).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_luma.runtime.money import RunSpend, refusal, verdict
from airflow_provider_luma.runtime.turns import Queue, Turn, TurnTimeout

LOG = logging.getLogger("test_turns")


class MemoryRegisters:
    """Atomic registers, one per task instance; reading them all is one read per register (not a snapshot),
    like one ``XCom.get_all`` per task id."""

    def __init__(self, board: dict[tuple[str, int], Turn], lock: threading.Lock, who: tuple[str, int], seed: int):
        self.board, self.lock, self.who, self.random = board, lock, who, random.Random(seed)

    def _pause(self) -> None:
        time.sleep(self.random.choice([0, 0, 0.0005, 0.002]))

    def write(self, turn: Turn) -> None:
        self._pause()
        with self.lock:
            self.board[turn.who] = turn
        self._pause()

    def read_others(self) -> list[Turn]:
        turns = []
        for who in sorted(self.board):
            self._pause()
            with self.lock:
                turn = self.board.get(who)
            if turn is not None and who != self.who:
                turns.append(turn)
        return turns


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_twenty_tasks_deciding_at_once_buy_exactly_the_ten_that_fit_one_decision_at_a_time(seed: int) -> None:
    board: dict[tuple[str, int], Turn] = {}
    lock = threading.Lock()
    bought: list[int] = []
    inside, most_inside = [0], [0]
    start = threading.Barrier(20)

    def task(index: int) -> None:
        me = Turn("render", index, usd=0.15)
        queue = Queue(MemoryRegisters(board, lock, me.who, seed * 100 + index), me, LOG)
        start.wait()
        queue.enter()
        with lock:
            inside[0] += 1
            most_inside[0] = max(most_inside[0], inside[0])
        fits = Decimal("0.15") * (len(bought) + 1) <= Decimal("1.50")
        time.sleep(0.001)  # the decision takes a moment: another task inside now would be seen
        if fits:
            bought.append(index)
        with lock:
            inside[0] -= 1
        queue.leave("submitting" if fits else "left")

    threads = [threading.Thread(target=task, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert most_inside[0] == 1, "two tasks decided at the same time"
    assert len(bought) == 10, bought
    assert all(turn.ticket == 0 and not turn.choosing for turn in board.values()), "everyone left the queue"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    "silent",
    [
        Turn("render", 0, choosing=True, usd=0.15),  # killed while picking a ticket
        Turn("render", 0, ticket=1, usd=0.15),  # killed while queued ahead
    ],
    ids=["choosing", "queued-ahead"],
)
def test_a_register_that_stops_changing_holds_the_queue_for_stale_after_seconds_then_counts_as_held(
    silent: Turn, caplog: pytest.LogCaptureFixture
) -> None:
    board = {silent.who: silent}
    clock = FakeClock()
    me = Turn("render", 1, usd=0.15)
    queue = Queue(MemoryRegisters(board, threading.Lock(), me.who, 0), me, LOG, stale_after=60, clock=clock,
                  sleep=clock.sleep)  # fmt: skip
    with caplog.at_level(logging.INFO):
        queue.enter()

    assert 60 <= clock.now < 61
    assert queue.silent == {silent.who: silent}
    assert "render[0] has not changed its place in the queue for 60 s" in caplog.text
    assert board[me.who].beat >= 5, "a waiting task rewrites its register, so it never looks silent itself"


def test_a_register_that_keeps_beating_is_waited_for() -> None:
    board: dict[tuple[str, int], Turn] = {}
    clock = FakeClock()
    ahead = Turn("render", 0, ticket=1, usd=0.15)
    board[ahead.who] = ahead

    def sleep(seconds: float) -> None:  # the task ahead beats every 10 s and leaves after 150 s
        before = clock.now
        clock.sleep(seconds)
        if clock.now >= 150:
            board[ahead.who] = Turn("render", 0, phase="submitting", usd=0.15)
        elif int(clock.now // 10) > int(before // 10):
            turn = board[ahead.who]
            board[ahead.who] = Turn("render", 0, ticket=1, usd=0.15, beat=turn.beat + 1)

    me = Turn("render", 1, usd=0.15)
    queue = Queue(MemoryRegisters(board, threading.Lock(), me.who, 0), me, LOG, stale_after=60, clock=clock,
                  sleep=sleep)  # fmt: skip
    queue.enter()

    assert clock.now >= 150 and not queue.silent


@pytest.mark.parametrize(
    "value",
    [
        "ticket 1",
        {"task_id": "render", "map_index": 0, "ticket": 1, "phase": "granted"},
        {"task_id": "render", "map_index": 0, "ticket": 1, "api_key": "x"},
        {"task_id": 7, "map_index": 0},
        {"task_id": "render", "map_index": "0", "ticket": 1},
        {"task_id": "render", "map_index": 0, "ticket": "1"},
        {"map_index": 0, "ticket": 1},
        {"task_id": "render", "map_index": 0, "phase": "submitting", "usd": -100.0},  # would loosen the cap
        {"task_id": "render", "map_index": 0, "phase": "submitting", "usd": float("nan")},
        {"task_id": "render", "map_index": 0, "phase": "submitting", "usd": True},
    ],
)
def test_a_register_read_back_from_xcom_that_is_not_ours_is_ignored(value: Any) -> None:
    assert Turn.from_xcom(value) is None


def test_a_register_round_trips_through_xcom() -> None:
    turn = Turn("render", 3, choosing=False, ticket=4, usd=0.15, phase="queued", beat=2)
    assert Turn.from_xcom(turn.to_xcom()) == turn


D = Decimal
# (bought, pending, silent, this render, cap, timed out) -> decision
VERDICTS = [
    ("1.35", "0", "0", "0.15", "1.50", False, "accept"),  # fits exactly
    ("1.50", "0", "0", "0.15", "1.50", False, "refuse"),  # over with what is bought alone
    ("1.35", "0.15", "0", "0.15", "1.50", False, "wait"),  # fits only if the pending render is refused
    ("1.35", "0.15", "0", "0.15", "1.50", True, "refuse"),  # ... and its answer never came
    ("1.20", "0.15", "0", "0.15", "1.50", False, "accept"),  # fits even if the pending render is bought
    ("1.35", "0", "0.15", "0.15", "1.50", False, "wait"),  # a silent queued render might still buy
    ("1.35", "0.30", "0", "0.15", "1.50", False, "wait"),
]


@pytest.mark.parametrize(("bought", "pending", "silent", "cost", "cap", "timed_out", "expected"), VERDICTS)
def test_the_budget_waits_only_when_pending_renders_decide(
    bought: str, pending: str, silent: str, cost: str, cap: str, timed_out: bool, expected: str
) -> None:
    spend = RunSpend(bought=D(bought), pending=D(pending), silent=D(silent))
    assert verdict(spend, D(cost), D(cap), timed_out=timed_out) == expected


def test_a_refusal_tells_bought_spend_and_pending_holds_apart() -> None:
    spend = RunSpend(bought=D("1.20"), bought_n=8, pending=D("0.30"), pending_n=2)
    assert refusal(D("0.15"), D("1.50"), spend) == (
        "This render's estimate $0.15 would bring the run's estimated spend to $1.65, above max_run_cost_usd=$1.50: "
        "this run's other renders hold $1.50: 8 bought ($1.20), 2 pending ($0.30: accepted, create request not "
        "answered yet). Nothing was submitted."
    )


def test_a_register_that_keeps_changing_holds_the_queue_at_most_max_wait_then_the_task_gives_up() -> None:
    """A forged register rewritten more often than ``stale_after`` never looks silent: the wait still ends."""
    board: dict[tuple[str, int], Turn] = {}
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        board[("render", 0)] = Turn("render", 0, choosing=True, beat=int(clock.now))  # changes every second

    board[("render", 0)] = Turn("render", 0, choosing=True)
    me = Turn("render", 1, usd=0.15)
    queue = Queue(MemoryRegisters(board, threading.Lock(), me.who, 0), me, LOG, stale_after=60, max_wait=300,
                  clock=clock, sleep=sleep)  # fmt: skip
    with pytest.raises(
        TurnTimeout, match=r"within 300 s: 1 other render\(s\) of this run stayed ahead \(render\[0\]\)"
    ):
        queue.enter()
    assert 300 <= clock.now < 301


def test_every_render_task_queues_for_the_budget_users_subclasses_and_mapped_ones_included() -> None:
    import pendulum
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from airflow_provider_luma.operators import LumaGenerateVideoOperator
    from airflow_provider_luma.runtime.money import luma_task_ids

    class HouseStyle(LumaGenerateVideoOperator):  # a user's subclass, defined in a DAG file
        pass

    with DAG("queue", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        HouseStyle(task_id="styled", prompt="a fox")
        LumaGenerateVideoOperator.partial(task_id="mapped").expand(prompt=["a", "b"])
        EmptyOperator(task_id="other")
    assert sorted(luma_task_ids(dag)) == ["mapped", "styled"]
