"""Money on the Airflow side: the run budget (``max_run_cost_usd``) and the run-wide scan of render estimates.

The prices themselves are Airflow-free (:mod:`airflow_provider_luma.core.pricing`). Every render task writes its
estimate as XCom :data:`COST_KEY` as soon as the render is its own; :func:`run_costs` reads that key across a DAG
run, for the budget below and for the cost report (:func:`airflow_provider_luma.cost.luma_cost_report`), and
:func:`sum_costs` sums it (the report's table: :func:`airflow_provider_luma.cost.summarize_costs`).

``max_run_cost_usd`` caps the estimated cost of every render bought in one DAG run. Airflow gives a task no atomic
counter, so the cap rests on two things:

* **Reserve, then read (never over the cap).** Before its create request a task writes its estimate as its own
  XCom ``estimated_cost_usd`` (the key the cost report sums), *then* reads that key of every task and map index
  of the run. Of any two tasks that do this at the same moment, at least one sees the other's reservation (each
  writes before it reads), so the last one to read sees all the others and the renders bought can never add up
  to more than the cap. A render provably not accepted withdraws its reservation; one whose answer was lost
  keeps it (it may be billed).
* **One submitter at a time (exactly up to the cap).** Two tasks reserving at the same moment may *both* refuse
  when only one would cross the cap. Serialising the submissions removes that: put the Luma tasks in a one-slot
  Airflow pool that does not count deferred tasks. A task holds its slot from the start of ``execute()`` until it
  defers (the state moves from running to deferred) or fails, so each submitter sees every earlier reservation
  and decides alone, and the renders themselves still run in parallel while deferred. Without such a pool the
  task says so in its log.

A task instance holds one reservation under its own key, so a render it re-attaches to or reuses counts once;
Airflow clears a task's XCom when a new try starts, and the try re-records its render before anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_luma.core.errors import LumaBudgetExceeded
from airflow_provider_luma.runtime.task import context_get

COST_KEY: Final = "estimated_cost_usd"
"""The XCom key of a render's estimate in USD (``None``: unpriced); also a key of the render's result."""
DEFAULT_POOL: Final = "default_pool"
POOL_HINT: Final = (
    "max_run_cost_usd=$%s is never exceeded, but is exact (renders that would fit are never refused) only when "
    "this run's Luma tasks submit one at a time: create a one-slot pool that does not count deferred tasks "
    '(`airflow pools set luma_budget 1 "Luma run budget"`) and pass pool="luma_budget" to them (default_args '
    "works). Without it, tasks submitting at the same moment may each refuse because of the other."
)


class RunBudget:
    """This task instance's reservation against its DAG run's ``max_run_cost_usd``.

    :param context: the task's Airflow context (``ti`` and ``dag``); without a ``ti`` (an operator called
        directly in a test) nothing is recorded and only this render's own estimate is checked.
    :param log: where to say what was decided.
    """

    def __init__(self, context: Any, log: Any) -> None:
        self.ti, self.dag, self.log = context_get(context, "ti"), context_get(context, "dag"), log
        self.recorded = False

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
        """Remove the reservation of a render that was provably not accepted."""
        if self.ti is None or not self.recorded:
            return
        from airflow.sdk.execution_time.xcom import XCom

        ti = self.ti
        try:
            XCom.delete(key=COST_KEY, task_id=ti.task_id, dag_id=ti.dag_id, run_id=ti.run_id, map_index=ti.map_index)
            self.recorded = False
        except Exception as exc:  # noqa: BLE001 - a leftover reservation only makes the cap stricter
            self.log.warning("Could not withdraw %s from XCom (%s)", COST_KEY, exc)

    def hold(self, cost: float | None, cap: Decimal | None, pool: str) -> None:
        """Record this render's estimate before its create request; with ``max_run_cost_usd`` (``cap``), refuse
        it when the run's renders would then cost more (see :meth:`reserve`).

        :raises AirflowFailException: over the cap (a retry would be refused again).
        """
        if cap is None:
            self.record(cost)
            return
        try:
            self.reserve(Decimal(str(cost)), cap, pool)
        except LumaBudgetExceeded as exc:
            raise AirflowFailException(str(exc)) from None

    def reserve(self, cost: Decimal, cap: Decimal, pool: str) -> None:
        """Record ``cost``, then refuse (withdrawing it) if the run's renders would then cost more than ``cap``.

        :raises LumaBudgetExceeded: with the run's spend so far, this render's estimate and the cap.
        """
        if pool == DEFAULT_POOL:
            self.log.warning(POOL_HINT, f"{cap:.2f}")
        if self.ti is None or self.dag is None:
            self.log.warning("No task instance in the context: only this render's own estimate is checked")
            spent, renders, unpriced = Decimal(0), 0, 0
        else:
            self.record(float(cost))
            spent, renders, unpriced = self._others(float(cost))
        total = spent + cost
        if unpriced == 0 and total <= cap:
            self.log.info(
                "Run budget: $%.2f spent by %d other render(s) of this run + $%.2f for this one = $%.2f of "
                "max_run_cost_usd=$%.2f", spent, renders, cost, total, cap,
            )  # fmt: skip
            return
        self.withdraw()
        if unpriced:
            raise LumaBudgetExceeded(
                f"max_run_cost_usd=${cap:.2f} is set but {unpriced} render(s) of this run have no price, so what "
                f"the run spent is unknown (priced ones: ${spent:.2f}). Nothing was submitted. Supply prices for "
                "edit and reframe in the connection's 'prices' extra, or remove max_run_cost_usd."
            )
        raise LumaBudgetExceeded(
            f"This render's estimate ${cost:.2f} would bring the run's estimated spend to ${total:.2f}, above "
            f"max_run_cost_usd=${cap:.2f}: this run's other {renders} render(s) are estimated at ${spent:.2f} so "
            "far. Nothing was submitted."
        )

    def _others(self, own: float) -> tuple[Decimal, int, int]:
        """``(USD, renders, unpriced renders)`` of every other task instance of the run that holds a render."""
        values: list[Any] = []
        for task_id, found in run_costs(self.ti, self.dag).items():
            if task_id == self.ti.task_id and own in found:
                found.remove(own)  # our own reservation, written just before (every map index shares the task id)
            values += found
        return sum_costs(values)


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


def sum_costs(values: Iterable[Any]) -> tuple[Decimal, int, int]:
    """``(USD, priced renders, unpriced renders)`` of estimates (``None``: a render without a price)."""
    spent, renders, unpriced = Decimal(0), 0, 0
    for value in values:
        if value is None:
            unpriced += 1
        else:
            spent += Decimal(str(value))
            renders += 1
    return spent, renders, unpriced
