"""The worker-side flow of one render: validate, submit at most once, wait, and hand the end to the finish.

Imported lazily by the operators (never at DAG-parse time), and it never imports them: it reads a frozen
:class:`~airflow_provider_luma.runtime.plan.RenderPlan` and uses the task only through the
:class:`~airflow_provider_luma.runtime.task.RenderTask` protocol (log, defer, pre-flight, link, delivery record).
The durable record (:mod:`.record`, whose :class:`~.record.Phase` documents the phases) lives in Airflow 3.3's
``context["task_state_store"]`` under ``luma_render`` and survives retries of the same task instance.

:func:`execute` starts from the plan the operator built; the resumptions start from the durable record
(:mod:`.resume`).
A render that ends in the triggerer (:mod:`.end_in_trigger`) keeps ``phase=submitted``: no worker resumes
it to write more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_luma.core.errors import (
    LumaBudgetExceeded,
    LumaError,
    LumaNotFoundError,
    LumaRateLimitError,
    LumaSubmissionOutcomeUnknown,
    LumaValidationError,
    failure_prefix,
)
from airflow_provider_luma.core.jobs import Job, JobStatus
from airflow_provider_luma.core.pricing import Estimate, check_budget, estimate
from airflow_provider_luma.runtime.delivery_record import record_request
from airflow_provider_luma.runtime.finish import WORKER_RETRY, RenderFinish, worker_hook
from airflow_provider_luma.runtime.money import RunBudget
from airflow_provider_luma.runtime.plan import RenderPlan, validated
from airflow_provider_luma.runtime.polling import read_event
from airflow_provider_luma.runtime.record import (
    Phase,
    RecordStore,
    RenderFacts,
    RenderRecord,
    record_matches,
    record_of,
)
from airflow_provider_luma.runtime.storage import probe_writable
from airflow_provider_luma.runtime.task import fail_or_retry

if TYPE_CHECKING:
    from airflow_provider_luma.hooks import LumaHook
    from airflow_provider_luma.runtime.polling import Schedule
    from airflow_provider_luma.runtime.task import RenderTask

__all__ = ["MAX_RATE_LIMIT_WAITS", "WORKER_RETRY", "RenderRun", "execute", "looked_up"]

MAX_RATE_LIMIT_WAITS = 120
T = TypeVar("T")


def execute(task: RenderTask, context: Any, build_plan: Callable[[], RenderPlan]) -> dict[str, Any]:
    """``execute``: validate the plan, re-attach to this task instance's render or submit one, then wait."""
    return RenderRun(task, context, validated(build_plan)).start()


def looked_up(call: Callable[[], T]) -> T:
    """``call()`` on the connection (settings, prices, schedule): a failure there has sent nothing and a retry
    would meet it again, so the task fails without retries."""
    try:
        return call()
    except LumaError as exc:
        raise AirflowFailException(f"{failure_prefix(exc)}: {exc}") from None


class RenderRun:
    """One execution (or resumption) of a render, from its plan.

    :param task: the task, as the runtime sees it.
    :param context: the task's Airflow context.
    :param plan: the run options and the validated request.
    """

    def __init__(self, task: RenderTask, context: Any, plan: RenderPlan | None) -> None:
        if plan is None:
            raise ValueError("RenderRun needs a plan")
        self.task, self.context, self.log = task, context, task.log
        self.plan, self.options, self.spec = plan, plan.options, plan.spec
        self.waits_so_far = 0  # rate-limit waits already spent (carried in defer kwargs)
        self.time_factor = 1.0  # the poll schedule's clock (connection extra schedule_time_factor)
        self.budget = RunBudget(context, self.log)
        self.store = RecordStore(context)
        self.record: RenderRecord | None = None  # the record as last read or written

    @cached_property
    def hook(self) -> LumaHook:
        return worker_hook(self.options.conn_id)

    @cached_property
    def settings(self) -> Any:
        """The connection's client settings: which API it speaks (looked up once; nothing is sent)."""
        return looked_up(self.hook.get_settings)

    @property
    def backend(self) -> str:
        """The API the connection speaks (``gmi`` or ``luma_agents``): where new renders are bought."""
        return str(self.settings.backend)

    @cached_property
    def estimate(self) -> Estimate:
        """The price estimate, with the connection's own prices when it has them."""
        return estimate(self.spec, looked_up(self.hook.price_table), self.plan.source)

    @cached_property
    def facts(self) -> RenderFacts:
        """What the finish needs and a resubmission sends: written into the durable record."""
        return RenderFacts.of(self.spec, self.plan.source, self.estimate)

    @cached_property
    def held_cost(self) -> float | None:
        """What this task instance counts against the run budget: this render's estimate, plus the earlier takes of a
        reviewed task (each re-render was bought too; see :mod:`.review_loop`)."""
        own = self.estimate.cost_usd
        if getattr(self.task, "review", None) is None:
            return own
        from airflow_provider_luma.runtime.review_loop import earlier_takes_cost

        earlier = earlier_takes_cost(self.context)
        return None if own is None or earlier is None else own + earlier

    def _record_of(
        self, phase: Phase, at: float, request_id: str | None, generation_id: str | None = None
    ) -> RenderRecord:
        return record_of(
            self.spec, self.backend, self.facts, phase, at=at, request_id=request_id, generation_id=generation_id
        )

    def _write(self, phase: Phase, request_id: str | None, generation_id: str | None = None) -> RenderRecord:
        """Write the record of this render in ``phase``."""
        self.record = self._record_of(phase, time.time(), request_id, generation_id)
        self.store.put(self.record)
        return self.record

    def _attach(self, job: Job) -> RenderRecord:
        """The record of the render this try is about, with its facts; a record of 0.1 or 0.2 (or one whose
        prices changed) is rewritten here, so a resume finds everything it needs."""
        known = self.record
        if known is not None and known.request_id == job.request_id:
            current = self._record_of(known.phase, known.attempted_at, job.request_id, known.generation_id)
            if current != known:
                self.store.put(current)
            self.record = current
            return current
        return self._write(Phase.SUBMITTED, job.request_id)

    def finisher(self) -> RenderFinish:
        """The finish of this render, from its record."""
        record = self.record
        if record is None or record.facts is None:
            # execute_complete of a render deferred by 0.1/0.2: its record gains the facts now.
            found = self.store.get()
            if found is None:
                record = self._record_of(Phase.SUBMITTED, time.time(), None)
            else:
                record = self._record_of(found.phase, found.attempted_at, found.request_id, found.generation_id)
            self.record = record
        return RenderFinish(self.task, self.context, self.options, record, self.store, self.hook)

    def complete(self, event: dict[str, Any] | None) -> dict[str, Any]:
        """Turn a terminal event into the task's result (see :meth:`RenderFinish.complete`); a failure is
        raised before the connection or the prices are looked up."""
        succeeded = read_event(event)
        return self.finisher().finish_success(succeeded)

    # -- execute() -------------------------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Validate, resume or submit, then wait (deferring or polling)."""
        s = self.spec
        problems = self.settings.wire.unsupported(s)
        if problems:
            invalid = LumaValidationError(problems, subject=f"{s.MODEL_ID} request on {self.backend}")
            raise AirflowFailException(str(invalid)) from None
        chained = f" from generation {', '.join(s.source_generation_ids)}" if s.source_generation_ids else ""
        self.log.info(
            "Luma %s %s render%s: %s, estimated cost %s",
            s.MODEL_ID, s.mode, chained, s.describe(), self.estimate.describe(),
        )  # fmt: skip
        output = self.options.output
        if output is not None and self.waits_so_far == 0:  # probed once; not again after each 429 wait
            try:
                probe_writable(output)  # a storage problem must show before the spend, not after
            except LumaValidationError as exc:
                raise AirflowFailException(str(exc)) from None
        job = self._resume() or self._submit()
        self._attach(job)
        # The request is ours from here on: the rendered fields sent when the task defers (or returns with
        # wait_for_completion=False) name it, and the gallery mints fresh URLs from nothing else.
        record_request(self.task, job.request_id, self.spec.MODEL_ID, self.backend)
        self._push_cost()
        if job.is_terminal:
            return self.finisher().finish_job(job)
        if not self.options.wait_for_completion:
            return self._submitted_result(job)
        return self._wait(job.request_id)

    def _submitted_result(self, job: Job) -> dict[str, Any]:
        """``wait_for_completion=False``: the render is ours and recorded; hand its request id on and return."""
        from airflow_provider_luma.runtime.results import render_result

        event = {"request_id": job.request_id, "generation_id": None}
        self.log.info(
            "Luma request %s submitted (%s); not waiting (wait_for_completion=False): a LumaGenerationSensor with "
            "request_id=%s picks it up", job.request_id, job.raw_status or job.status, job.request_id,
        )  # fmt: skip
        return dict(render_result(self.spec.MODEL_ID, self.backend, event, self.facts))

    def _resume(self) -> Job | None:
        record = self.record = self.store.get()
        if record is None:
            return None
        bought_on = record.backend
        if bought_on != self.backend and (record.request_id or record.phase is Phase.SUBMITTING):
            message = (
                f"This task instance's render was bought on {bought_on} (request {record.request_id or '?'}), "
                f"but connection {self.options.conn_id!r} now speaks {self.backend}. Nothing was polled or "
                f"bought: a {bought_on} id means nothing to {self.backend}. Point the connection back at "
                f"{bought_on} to finish that render, or set a different luma_conn_id and clear the task to buy a "
                "new one there."
            )
            raise AirflowFailException(message)
        if not record_matches(record, self.spec, self.backend):
            self.log.info("Stored Luma request was for different parameters; submitting a new render")
            return None
        request_id = record.request_id
        if record.phase is Phase.SUBMITTING and not request_id:
            return self._ambiguous(record)
        if not request_id:
            return None
        try:
            job: Job = self.hook.get_generation(str(request_id), self.spec.MODEL_ID)
        except LumaNotFoundError:
            self.log.warning("Stored Luma request %s is unknown to the service; submitting anew", request_id)
            return None
        except LumaError as exc:
            raise fail_or_retry(exc, f"Could not check stored Luma request {request_id}: {exc}") from None
        if job.status is JobStatus.SUCCESS:
            if record.phase is not Phase.SUCCEEDED:
                # The try that paid for it never finished (deadline event, worker death, failed download):
                # finishing it is not a "fresh take", whatever reuse_existing says.
                self.log.info("Luma request %s already rendered; finishing it now (no new render)", request_id)
                return job
            if self.options.reuse_existing:
                self.log.info("Luma request %s already succeeded; reusing it (no new render is paid)", request_id)
                return job
            self.log.info("Luma request %s already succeeded but reuse_existing=False; rendering again", request_id)
            return None
        if job.is_terminal:
            self.log.info("Previous Luma request %s ended %s; submitting a fresh render", request_id, job.status)
            return None
        self.log.info("Re-attaching to Luma request %s (%s); no new render is submitted", request_id, job.status)
        return job

    def _push_cost(self) -> None:
        """Publish the estimate as soon as a render is ours, so a cost report (and the run budget) counts it even
        if the task fails; a render re-attached to or reused is recorded under the same key: once."""
        if not self.budget.recorded:
            self.budget.record(self.held_cost)

    def _ambiguous(self, record: RenderRecord) -> Job | None:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.attempted_at))
        message = (
            f"A previous try sent a Luma create request at {when} but never learned its request id (the answer "
            "was lost). That render may exist and be billed. Check the console of the account this connection uses "
            "(GMI Cloud or Luma); to accept the risk of paying twice, set resubmit_unknown=True on this task and "
            "clear it."
        )
        if not self.options.resubmit_unknown:
            self._push_cost()  # it may be billed: it keeps counting against the run's budget
            raise AirflowFailException(message)
        self.log.warning("%s resubmit_unknown=True: submitting a new render.", message)
        return None

    def _submit(self) -> Job:
        # The cap guards new spend only: re-attaching to (or reusing) a render already paid for costs nothing, so
        # a lowered cap never orphans one. A fresh task instance has no record, so this runs before any request.
        self._preflight()
        try:
            check_budget(self.spec, self.estimate, self.options.max_cost)
            check_budget(self.spec, self.estimate, self.options.max_run_cost, "max_run_cost_usd")
        except LumaBudgetExceeded as exc:
            raise AirflowFailException(str(exc)) from None
        try:
            client = self.hook.client  # connection and key first: a failure here has sent nothing
        except LumaError as exc:
            raise fail_or_retry(exc, f"{failure_prefix(exc)}: {exc}") from None
        while True:
            self.budget.hold(self.held_cost, self.options.max_run_cost)
            self._write(Phase.SUBMITTING, None)
            try:
                job: Job = client.submit(self.spec)
            except LumaSubmissionOutcomeUnknown as exc:
                self.budget.settle()  # it may be billed: no longer pending for the run's budget
                raise AirflowFailException(str(exc)) from None
            except LumaError as exc:
                # Provably not accepted: forget the attempt so a retry submits cleanly, and free its budget.
                self.budget.withdraw()
                self._write(Phase.REJECTED, None)
                if not isinstance(exc, LumaRateLimitError) or self.waits_so_far >= MAX_RATE_LIMIT_WAITS:
                    raise fail_or_retry(exc, f"{failure_prefix(exc)}: {exc}") from None
                self._wait_for_capacity(exc)
                continue
            self._write(Phase.SUBMITTED, job.request_id)
            self.budget.settle()
            trace = f", service request id {job.trace_id}" if job.trace_id else ""
            self.log.info(
                "Submitted Luma request %s on %s (status %s%s)",
                job.request_id,
                self.backend,
                job.raw_status or "-",
                trace,
            )
            return job

    def _preflight(self) -> None:
        """Refuse a run that cannot succeed before this task buys anything: the task prices every Luma task of the
        DAG a cap covers with the connection's table (see :mod:`airflow_provider_luma.operators._preflight`).
        Every task runs it before its first create request, so whichever starts first refuses; it sends nothing
        and is deterministic.
        """
        table = looked_up(self.hook.price_table)
        problems = self.task.preflight_problems(self.context, self.spec, self.plan.source, table)
        if problems:
            lines = "\n".join(f"- {p}" for p in problems)
            raise AirflowFailException(
                f"Run pre-flight: this DAG run cannot succeed ({len(problems)} problem(s)); nothing was submitted "
                f"by task {self.options.task_id!r}:\n{lines}"
            )

    def _wait_for_capacity(self, exc: LumaRateLimitError) -> None:
        """Wait out a rate limit: deferred in the triggerer (no worker slot), or asleep when not deferrable."""
        import random

        self.waits_so_far += 1
        # Jitter spreads a fan-out's resubmissions so they do not all hit the limit again together.
        delay = (exc.retry_after or 30.0) * random.uniform(1.0, 1.2)
        what = "concurrent-jobs limit" if exc.kind == "concurrency" else "requests-per-minute limit"
        deferrable = self.options.deferrable
        where = "in the triggerer (no worker slot held)" if deferrable else "in the worker (deferrable=False)"
        self.log.warning(
            "Luma %s reached (%s): waiting %.0f s %s, then submitting again (wait %d of at most %d). "
            "Size an Airflow pool to your account's concurrency to avoid this.",
            what, exc.message, delay, where, self.waits_so_far, MAX_RATE_LIMIT_WAITS,
        )  # fmt: skip
        if not deferrable:
            time.sleep(delay)
            return
        import pendulum
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.task.defer(
            trigger=DateTimeTrigger(moment=pendulum.now("UTC").add(seconds=delay)),
            method_name="execute_after_rate_limit",
            kwargs={"rate_limit_waits": self.waits_so_far},
            timeout=timedelta(seconds=delay + 300),
        )

    def _schedule(self) -> tuple[float, float]:
        """``(expected render seconds, poll interval)``, on the simulator's clock when the connection says so."""
        from airflow_provider_luma.core.schedule import scaled_schedule

        factor = self.time_factor = looked_up(self.hook.schedule_time_factor)
        interval = self.options.poll_interval
        expected, poll = scaled_schedule(self.spec.expected_seconds(self.plan.source), interval, factor)
        if factor < 1.0:
            self.log.info("Poll schedule at %g x real time (connection extra schedule_time_factor)", factor)
        return expected, poll

    def _wait(self, request_id: str) -> dict[str, Any]:
        from airflow_provider_luma.runtime.polling import Schedule, submitted_at
        from airflow_provider_luma.runtime.progress import progress_interval
        from airflow_provider_luma.triggers import LumaGenerationTrigger

        now = time.time()
        budget = self.options.deadline_seconds
        expected, poll = self._schedule()
        # A render re-attached by a retry keeps its first poll and its clock from the original submission; the
        # deadline is this try's own budget. See runtime/polling.py and core/schedule.py.
        schedule = Schedule.starting(now, budget, poll, expected, since=submitted_at(self.record, request_id))
        if not self.options.deferrable:
            return self._poll_in_worker(request_id, schedule)
        trigger = LumaGenerationTrigger(
            request_id=request_id,
            deadline=schedule.deadline,
            luma_conn_id=self.options.conn_id,
            poll_interval=poll,
            first_poll_at=schedule.first_poll_at,
            submitted_at=schedule.submitted_at,
            expected_seconds=expected,
            backend=self.backend,
            model=self.spec.MODEL_ID,
            render_label=self.spec.describe(),
            progress_interval=progress_interval(self.time_factor),
            **self._end_in_trigger(),
        )
        # The backstop must fire only if the trigger itself cannot: its own timeout event is the normal path.
        backstop = timedelta(seconds=budget + max(60.0, 3 * poll))
        self.log.info("Deferring until Luma request %s is done (deadline in %.0f s)", request_id, budget)
        self.task.defer(trigger=trigger, method_name="execute_complete", timeout=backstop)

    def _end_in_trigger(self) -> dict[str, Any]:
        """The trigger kwargs that let a successful render end in the triggerer, when nothing of its finish needs a
        worker (see :mod:`.end_in_trigger`); none otherwise."""
        from airflow_provider_luma.runtime.end_in_trigger import finish_result
        from airflow_provider_luma.runtime.results import render_result

        if not self.options.may_end_in_trigger:
            return {}
        result = finish_result(render_result(self.spec.MODEL_ID, self.backend, {}, self.facts))
        if result is None:
            return {}
        self.log.info("No output_path: on success the task ends in the triggerer (no worker resumes it)")
        return {"finish_result": result, "finish_keys": self.options.multiple_outputs}

    def _poll_in_worker(self, request_id: str, schedule: Schedule) -> dict[str, Any]:
        """``deferrable=False``: the trigger's poll loop (schedule, log lines, events), run in this worker."""
        from airflow_provider_luma.runtime.polling import PollMachine, poll_until_done
        from airflow_provider_luma.runtime.progress import progress_interval

        machine = PollMachine(
            request_id, schedule, label=self.spec.describe(), progress_interval=progress_interval(self.time_factor),
            with_urls=True,
        )  # fmt: skip
        event = poll_until_done(machine, lambda: self.hook.get_generation(request_id, self.spec.MODEL_ID), self.log)
        return self.complete(dict(event))
