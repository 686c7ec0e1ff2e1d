"""Money on the Airflow side: the run budget (``max_run_cost_usd``) and the run-wide scan of render estimates.

The prices themselves are Airflow-free (:mod:`airflow_provider_luma.core.pricing`). Every render task writes its
estimate as XCom :data:`COST_KEY` as soon as the render is its own; :func:`run_costs` reads that key across a DAG
run, for the budget below and for the cost report (:func:`airflow_provider_luma.cost.luma_cost_report`), and
:func:`sum_costs` sums it (the report's table: :func:`airflow_provider_luma.cost.summarize_costs`).

``max_run_cost_usd`` caps the estimated cost of every render bought in one DAG run, and is exact: a render that
would fit is bought, unless a task of the run stops answering in its turn (below). Airflow gives a task no atomic
counter, so:

* **One decision at a time (:mod:`.turns`).** A capped task queues for its turn (Lamport's bakery over XCom
  registers), then alone reads the run's :data:`COST_KEY` values, decides, and on yes writes its own estimate
  *before* it leaves the queue. Only this decision is serialised, not the create request, the wait or the
  finishing step: no Airflow pool is needed, and none makes the cap more exact.
* **Bought apart from pending.** A render accepted whose create request has no answer yet is *pending* (its
  register says ``submitting``). When the decision depends on pending renders (over the cap if they are all bought,
  under it if the service refuses them) the task waits up to :data:`PENDING_WAIT_SECONDS` for their answers.
  A refusal names both sums.
* **Never over the cap**, even if a register goes silent (a task killed while queued): the silent task's estimate
  counts as held, and the task checks the run's sum again after writing its own (reserve, then read: of two
  tasks doing this at once, at least one sees the other).

A task instance holds one :data:`COST_KEY` value, so a render it re-attaches to or reuses counts once; Airflow
clears a task's XCom when a new try starts, and the try re-records its render before anything else. Renders of
tasks without a cap count as bought as soon as their estimate is written; they never wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_luma.core.errors import LumaBudgetExceeded
from airflow_provider_luma.runtime.task import context_get
from airflow_provider_luma.runtime.turns import TURN_KEY, Queue, Turn, TurnTimeout, is_usd

COST_KEY: Final = "estimated_cost_usd"
"""The XCom key of a render's estimate in USD (``None``: unpriced); also a key of the render's result."""
PENDING_WAIT_SECONDS: Final = 30.0
"""How long a decision that depends on pending renders waits for their create answers before refusing."""


class RunBudget:
    """This task instance's share of its DAG run's ``max_run_cost_usd``.

    :param context: the task's Airflow context (``ti`` and ``dag``); without a ``ti`` (an operator called
        directly in a test) nothing is recorded and only this render's own estimate is checked.
    :param log: where to say what was decided.
    """

    def __init__(self, context: Any, log: Any) -> None:
        self.ti, self.dag, self.log = context_get(context, "ti"), context_get(context, "dag"), log
        self.recorded = False
        self.queue: Queue | None = None
        self.own_before: Any = None
        self.held_before: Any = None
        """What this task instance held before this render (a reviewed task's earlier takes)."""

    def record(self, cost: float | None) -> None:
        """Write this task's estimate (its reservation; also what the cost report sums)."""
        if self.ti is None:
            return
        try:
            self.ti.xcom_push(key=COST_KEY, value=cost)
            self.recorded = True
        except Exception as exc:  # noqa: BLE001 - reporting must not fail a render that is already paid for
            self.log.warning("Could not push %s to XCom (%s)", COST_KEY, exc)

    def withdraw(self) -> None:
        """Remove the reservation of a render that was provably not accepted (a reviewed task's earlier takes,
        which were bought, keep counting)."""
        if self.ti is None or not self.recorded:
            return
        from airflow.sdk.execution_time.xcom import XCom

        ti = self.ti
        try:
            if is_usd(self.held_before):
                self.ti.xcom_push(key=COST_KEY, value=self.held_before)
            else:
                where = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": ti.map_index}
                XCom.delete(key=COST_KEY, **where)
            self.recorded = False
        except Exception as exc:  # noqa: BLE001 - a leftover reservation only makes the cap stricter
            self.log.warning("Could not withdraw %s from XCom (%s)", COST_KEY, exc)
        self._mark("withdrawn")

    def settle(self) -> None:
        """The create request was answered (or its answer lost: it may be billed): no longer pending."""
        self._mark("bought")

    def hold(self, cost: float | None, cap: Decimal | None) -> None:
        """Record this render's estimate before its create request; with ``max_run_cost_usd`` (``cap``), first
        take this task's turn and refuse the render if the run's renders would then cost more (:meth:`reserve`).

        :raises AirflowFailException: over the cap (a retry would be refused again).
        """
        if cap is None:
            self.record(cost)
            return
        try:
            self.reserve(Decimal(str(cost)), cap)
        except LumaBudgetExceeded as exc:
            raise AirflowFailException(str(exc)) from None

    def reserve(self, cost: Decimal, cap: Decimal) -> None:
        """Wait for this task's turn, then record ``cost`` if the run's renders stay within ``cap``.

        :raises LumaBudgetExceeded: with what the run bought, what is pending, this render's estimate and the cap.
        """
        if self.ti is None or self.dag is None:
            self.log.warning("No task instance in the context: only this render's own estimate is checked")
            if cost > cap:
                raise LumaBudgetExceeded(refusal(cost, cap, RunSpend()))
            return
        me = Turn(self.ti.task_id, int(self.ti.map_index if self.ti.map_index is not None else -1), usd=float(cost))
        queue = self.queue = Queue(XComRegisters(self.ti, self.dag), me, self.log)
        try:
            queue.enter()
            # What this task instance holds already (a reviewed task's earlier takes): ``cost`` replaces it.
            self.own_before = self.held_before = self._own_value()
            spend = self._decide(queue, cost, cap)
        except TurnTimeout as exc:
            queue.leave("left")
            raise LumaBudgetExceeded(f"max_run_cost_usd=${cap:.2f}: {exc}. Nothing was submitted.") from None
        except BaseException:
            queue.leave("left")  # a task that leaves on an error must not hold the queue
            raise
        queue.leave("submitting")
        self.log.info(
            "Run budget: %s; + $%.2f for this render = $%.2f of max_run_cost_usd=$%.2f",
            spend.describe(), cost, spend.total + cost, cap,
        )  # fmt: skip

    def _decide(self, queue: Queue, cost: Decimal, cap: Decimal) -> RunSpend:
        deadline = time.monotonic() + PENDING_WAIT_SECONDS
        while True:
            spend = self._spend(queue)
            if spend.unpriced:
                raise LumaBudgetExceeded(
                    f"max_run_cost_usd=${cap:.2f} is set but {spend.unpriced} render(s) of this run have no price, "
                    f"so what the run spent is unknown (priced ones: ${spend.total:.2f}). Nothing was submitted. "
                    "Supply prices for edit and reframe in the connection's 'prices' extra, or remove "
                    "max_run_cost_usd."
                )
            decided = verdict(spend, cost, cap, timed_out=time.monotonic() >= deadline)
            if decided == "accept":
                break
            if decided == "refuse":
                raise LumaBudgetExceeded(refusal(cost, cap, spend))
            queue.beat()
            time.sleep(0.2)
        # Not record(): a reservation that could not be written must stop the purchase, not be skipped.
        self.ti.xcom_push(key=COST_KEY, value=float(cost))
        self.recorded = True
        self.own_before = None  # replaced by ``cost``, which the check below must count
        if queue.silent and self._spend(queue).total > cap:
            # A silent register may be a slow task deciding beside us: reserve, then read, keeps the cap.
            self.withdraw()
            raise LumaBudgetExceeded(refusal(cost, cap, self._spend(queue), own_recorded=True))
        return spend

    def _spend(self, queue: Queue) -> RunSpend:
        """What the other renders of the run hold: bought, pending (accepted, create not answered yet) and silent
        (queued, stopped answering; see :mod:`.turns`)."""
        spent, renders, unpriced = others_costs(self.ti, self.dag, self.own_before)
        submitting = [t for t in queue.registers.read_others() if t.phase == "submitting" and t.usd is not None]
        pending = sum((Decimal(str(t.usd)) for t in submitting), Decimal(0))
        silent = [Decimal(str(t.usd)) for t in queue.silent.values() if t.usd is not None]
        # A withdrawal deletes its estimate before its register says so: the pending sum may briefly exceed it.
        bought = max(Decimal(0), spent - pending)
        return RunSpend(
            bought=bought,
            bought_n=max(0, renders - len(submitting)),
            pending=pending,
            pending_n=len(submitting),
            silent=sum(silent, Decimal(0)),
            silent_n=len(silent),
            unpriced=unpriced,
        )

    def _own_value(self) -> Any:
        from airflow.sdk.execution_time.xcom import XCom

        ti = self.ti
        where = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": ti.map_index}
        return XCom.get_one(key=COST_KEY, **where)

    def _mark(self, phase: Any) -> None:
        if self.queue is None:
            return
        try:
            self.queue.leave(phase)
        except Exception as exc:  # noqa: BLE001 - a stale phase only makes others' decisions stricter
            self.log.warning("Could not update the run budget's register (%s)", exc)


@dataclass(frozen=True)
class RunSpend:
    """What a run's other renders hold, as a budget decision reads it (USD and counts)."""

    bought: Decimal = Decimal(0)
    bought_n: int = 0
    pending: Decimal = Decimal(0)
    """Accepted renders whose create request has no answer yet."""
    pending_n: int = 0
    silent: Decimal = Decimal(0)
    """Queued renders whose task stopped answering (counted as held: the cap is never risked)."""
    silent_n: int = 0
    unpriced: int = 0

    @property
    def total(self) -> Decimal:
        """Everything held, as if every pending and silent render were bought (what the cap must allow for)."""
        return self.bought + self.pending + self.silent

    def describe(self) -> str:
        parts = [f"{self.bought_n} bought (${self.bought:.2f})"]
        parts.append(
            f"{self.pending_n} pending (${self.pending:.2f}: accepted, create request not answered yet)"
            if self.pending_n
            else "none pending"
        )
        if self.silent_n:
            parts.append(f"{self.silent_n} queued by a task that stopped answering (${self.silent:.2f})")
        return f"this run's other renders hold ${self.total:.2f}: {', '.join(parts)}"


def verdict(spend: RunSpend, cost: Decimal, cap: Decimal, *, timed_out: bool) -> Literal["accept", "refuse", "wait"]:
    """The budget's decision on one render: within the cap even if every pending render is bought → accept; over it
    even if every pending render is refused → refuse; otherwise the pending renders' answers decide → wait (until
    ``timed_out``, then refuse: the cap is never risked)."""
    if spend.total + cost <= cap:
        return "accept"
    if spend.bought + cost > cap or timed_out:
        return "refuse"
    return "wait"


def refusal(cost: Decimal, cap: Decimal, spend: RunSpend, *, own_recorded: bool = False) -> str:
    """The refusal of a render over the run's cap: every figure a reader needs to see why."""
    total = spend.total + (0 if own_recorded else cost)
    if spend.bought_n + spend.pending_n == 0 and not own_recorded:
        return f"This render's estimate ${cost:.2f} alone is above max_run_cost_usd=${cap:.2f}. Nothing was submitted."
    return (
        f"This render's estimate ${cost:.2f} would bring the run's estimated spend to ${total:.2f}, above "
        f"max_run_cost_usd=${cap:.2f}: {spend.describe()}. Nothing was submitted."
    )


class XComRegisters:
    """The budget queue's registers as XComs (:data:`~.turns.TURN_KEY`) of the run's Luma tasks."""

    def __init__(self, ti: Any, dag: Any) -> None:
        self.ti = ti
        self.task_ids = luma_task_ids(dag)

    def write(self, turn: Turn) -> None:
        self.ti.xcom_push(key=TURN_KEY, value=turn.to_xcom())

    def read_others(self) -> list[Turn]:
        from airflow.sdk.execution_time.xcom import XCom

        ti, me = self.ti, (self.ti.task_id, self.ti.map_index if self.ti.map_index is not None else -1)
        turns: list[Turn] = []
        for task_id in self.task_ids:
            for value in XCom.get_all(key=TURN_KEY, dag_id=ti.dag_id, task_id=task_id, run_id=ti.run_id) or ():
                turn = Turn.from_xcom(value)
                # A register names its own task: one that names another (forged, or copied) is not counted twice.
                if turn is not None and turn.task_id == task_id and turn.who != me:
                    turns.append(turn)
        return turns


def luma_task_ids(dag: Any) -> list[str]:
    """The task ids of the DAG's render tasks (mapped ones and users' subclasses included): the only ones that queue
    for the budget. A render operator is recognised by its ``render_plan`` method (the runtime imports no
    operator)."""
    ids = []
    for task in dag.tasks:
        cls = getattr(task, "operator_class", None) or type(task)
        if callable(getattr(cls, "render_plan", None)):
            ids.append(task.task_id)
    return ids


def run_costs(ti: Any, dag: Any, *, skip_task: str | None = None) -> dict[str, list[Any]]:
    """The :data:`COST_KEY` XComs of every task of ``ti``'s DAG run (every map index), by task id; tasks that
    pushed none are left out.

    :param skip_task: a task id not to read (the cost report's own).
    """
    from airflow.sdk.execution_time.xcom import XCom

    costs: dict[str, list[Any]] = {}
    for task_id in dag.task_ids:
        if task_id == skip_task:
            continue
        values = XCom.get_all(key=COST_KEY, dag_id=ti.dag_id, task_id=task_id, run_id=ti.run_id)
        if values is not None and len(values):
            costs[task_id] = list(values)
    return costs


def others_costs(ti: Any, dag: Any, own: Any) -> tuple[Decimal, int, int]:
    """:func:`sum_costs` of the run's estimates but ``own``, this task instance's value (``None``: it has none)."""
    costs = run_costs(ti, dag)
    mine = costs.get(ti.task_id, [])
    if own is not None and own in mine:
        mine.remove(own)  # every map index shares the task id: remove our own value once
    return sum_costs(v for values in costs.values() for v in values)


def sum_costs(values: Iterable[Any]) -> tuple[Decimal, int, int]:
    """``(USD, priced renders, unpriced renders)`` of estimates (``None``: a render without a price).

    XComs are writable by the REST API's User role: anything but a finite non-negative number counts as unpriced,
    so a forged value can make ``max_run_cost_usd`` refuse, never let more through.
    """
    spent, renders, unpriced = Decimal(0), 0, 0
    for value in values:
        if not is_usd(value):
            unpriced += 1
        else:
            spent += Decimal(str(value))
            renders += 1
    return spent, renders, unpriced
