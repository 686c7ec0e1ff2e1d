"""The worker-side flow of one render: validate, submit at most once, wait, and finish.

Imported lazily by the operators (never at DAG-parse time), and it never imports them: it reads a
:class:`~airflow_provider_luma._plan.RenderPlan` and uses the task only to log, defer and set its link. Durable
state lives in Airflow 3.3's ``context["task_state_store"]`` under ``luma_render`` (:mod:`._state`), which
survives retries of the same task instance:

* ``phase="submitting"`` is written right before the create request leaves (after the connection and its key were
  found: a failure that sent nothing never looks like a possible charge); ``phase="submitted"`` with the
  ``request_id`` once it is accepted; with ``output_path``, ``phase="rendered"`` once the render is done but its
  files are not stored yet; ``phase="succeeded"`` when everything is done. A render that ends in the triggerer
  (:mod:`airflow_provider_luma._end_in_trigger`) keeps ``phase="submitted"``: no worker resumes it to write more.
* A later try reads it: an in-flight request is re-attached (no POST), a succeeded one is returned (no POST, when
  ``reuse_existing``), a ``rendered`` one is always finished (its download failed), a failed one is resubmitted,
  and a ``submitting`` record without a request id is an ambiguous submission that fails loudly instead of
  silently buying a second render.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_luma._budget import RunBudget
from airflow_provider_luma._delivery_record import record_request
from airflow_provider_luma._finish import Finisher
from airflow_provider_luma._plan import RenderPlan, build_plan
from airflow_provider_luma._state import StateStore, fail_or_retry
from airflow_provider_luma._storage import probe_writable
from airflow_provider_luma.core.errors import (
    LumaBudgetExceeded,
    LumaError,
    LumaNotFoundError,
    LumaRateLimitError,
    LumaResponseError,
    LumaSubmissionOutcomeUnknown,
    LumaValidationError,
    failure_prefix,
    poll_should_stop,
    unusable_answers_message,
)
from airflow_provider_luma.core.jobs import Job, JobStatus
from airflow_provider_luma.core.pricing import Estimate, check_budget, estimate
from airflow_provider_luma.core.retry import RetryPolicy, UnusableAnswers

if TYPE_CHECKING:
    from airflow_provider_luma.operators._base import LumaRenderOperator

__all__ = ["MAX_RATE_LIMIT_WAITS", "WORKER_RETRY", "RenderRun"]

# In a worker, sleep through short Retry-After waits only; a longer one (the concurrency limit says 60 s) is
# waited out in the triggerer so the slot is free meanwhile.
WORKER_RETRY = RetryPolicy(retry_after_cap=15.0)
MAX_RATE_LIMIT_WAITS = 120


class RenderRun(Finisher):
    """One execution (or resumption) of a Luma render operator."""

    def __init__(self, operator: LumaRenderOperator, context: Any) -> None:
        self.op, self.context, self.log = operator, context, operator.log
        self.waits_so_far = 0  # rate-limit waits already spent (carried in defer kwargs)
        self.time_factor = 1.0  # the poll schedule's clock (connection extra schedule_time_factor)
        try:
            self.plan: RenderPlan = build_plan(operator, context)
        except LumaValidationError as exc:
            # Not logged here: Airflow logs the exception with its message, and a failure should read once.
            raise AirflowFailException(str(exc)) from None
        self.spec = self.plan.spec
        self.budget = RunBudget(context, self.log)

    @cached_property
    def hook(self) -> Any:
        from airflow_provider_luma.hooks import LumaHook

        return LumaHook(self.op.luma_conn_id, retry_policy=WORKER_RETRY)

    @cached_property
    def settings(self) -> Any:
        """The connection's client settings: which API it speaks (looked up once; nothing is sent)."""
        try:
            return self.hook.get_settings()
        except LumaError as exc:
            raise AirflowFailException(f"{failure_prefix(exc)}: {exc}") from None

    @cached_property
    def state(self) -> StateStore:
        """The durable record of this task instance's render, stamped with the backend it is bought on."""
        return StateStore(self.context, self.spec, self.backend)

    @property
    def backend(self) -> str:
        """The API the connection speaks (``gmi`` or ``luma_agents``): where new renders are bought."""
        return str(self.settings.backend)

    @cached_property
    def estimate(self) -> Estimate:
        """The price estimate, with the connection's own prices when it has them."""
        try:
            table = self.hook.price_table()
        except LumaError as exc:
            raise AirflowFailException(f"{failure_prefix(exc)}: {exc}") from None
        return estimate(self.spec, table, self.plan.source)

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
        if self.plan.output is not None and self.waits_so_far == 0:  # probed once; not again after each 429 wait
            try:
                probe_writable(self.plan.output)  # a storage problem must show before the spend, not after
            except LumaValidationError as exc:
                raise AirflowFailException(str(exc)) from None
        job = self._resume() or self._submit()
        # The request is ours from here on: the rendered fields sent when the task defers (or returns with
        # wait_for_completion=False) name it, and the gallery mints fresh URLs from nothing else.
        record_request(self.op, job.request_id, self.spec.MODEL_ID, self.backend)
        self._push_cost()
        if job.is_terminal:
            return self.finish_job(job)
        if not self.op.wait_for_completion:
            return self._submitted_result(job)
        return self._wait(job.request_id)

    def _submitted_result(self, job: Job) -> dict[str, Any]:
        """``wait_for_completion=False``: the render is ours and recorded; hand its request id on and return."""
        from airflow_provider_luma._results import render_result

        event = {"request_id": job.request_id, "generation_id": None}
        self.log.info(
            "Luma request %s submitted (%s); not waiting (wait_for_completion=False): a LumaGenerationSensor with "
            "request_id=%s picks it up", job.request_id, job.raw_status or job.status, job.request_id,
        )  # fmt: skip
        return dict(render_result(self.spec, self.backend, event, self.estimate, self.plan.source))

    def _resume(self) -> Job | None:
        record = self.state.get()
        if not record:
            return None
        bought_on = str(record.get("backend") or "gmi")  # records of 0.1 have no backend: GMI's queue
        if bought_on != self.backend and (record.get("request_id") or record.get("phase") == "submitting"):
            message = (
                f"This task instance's render was bought on {bought_on} (request {record.get('request_id') or '?'}), "
                f"but connection {self.op.luma_conn_id!r} now speaks {self.backend}. Nothing was polled or "
                f"bought: a {bought_on} id means nothing to {self.backend}. Point the connection back at "
                f"{bought_on} to finish that render, or set a different luma_conn_id and clear the task to buy a "
                "new one there."
            )
            raise AirflowFailException(message)
        if not self.state.matches(record):
            self.log.info("Stored Luma request was for different parameters; submitting a new render")
            return None
        request_id = record.get("request_id")
        if record.get("phase") == "submitting" and not request_id:
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
            if record.get("phase") != "succeeded":
                # The try that paid for it never finished (deadline event, worker death, failed download):
                # finishing it is not a "fresh take", whatever reuse_existing says.
                self.log.info("Luma request %s already rendered; finishing it now (no new render)", request_id)
                return job
            if self.op.reuse_existing:
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
            self.budget.record(self.estimate.cost_usd)

    def _ambiguous(self, record: dict[str, Any]) -> Job | None:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(record.get("attempted_at") or 0)))
        message = (
            f"A previous try sent a Luma create request at {when} but never learned its request id (the answer "
            "was lost). That render may exist and be billed. Check the GMI console; to accept the risk of paying "
            "twice, set resubmit_unknown=True on this task and clear it."
        )
        if not self.op.resubmit_unknown:
            self._push_cost()  # it may be billed: it keeps counting against the run's budget
            raise AirflowFailException(message)
        self.log.warning("%s resubmit_unknown=True: submitting a new render.", message)
        return None

    def _submit(self) -> Job:
        # The cap guards new spend only: re-attaching to (or reusing) a render already paid for costs nothing, so
        # a lowered cap never orphans one. A fresh task instance has no record, so this runs before any request.
        self._preflight()
        try:
            check_budget(self.spec, self.estimate, self.plan.max_cost)
            check_budget(self.spec, self.estimate, self.plan.max_run_cost, "max_run_cost_usd")
        except LumaBudgetExceeded as exc:
            raise AirflowFailException(str(exc)) from None
        try:
            client = self.hook.client  # connection and key first: a failure here has sent nothing
        except LumaError as exc:
            raise fail_or_retry(exc, f"{failure_prefix(exc)}: {exc}") from None
        while True:
            self._reserve()
            self.state.set(phase="submitting", attempted_at=time.time(), request_id=None)
            try:
                job: Job = client.submit(self.spec)
            except LumaSubmissionOutcomeUnknown as exc:
                raise AirflowFailException(str(exc)) from None
            except LumaError as exc:
                # Provably not accepted: forget the attempt so a retry submits cleanly, and free its budget.
                self.budget.withdraw()
                self.state.set(phase="rejected", attempted_at=time.time(), request_id=None)
                if not isinstance(exc, LumaRateLimitError) or self.waits_so_far >= MAX_RATE_LIMIT_WAITS:
                    raise fail_or_retry(exc, f"{failure_prefix(exc)}: {exc}") from None
                self._wait_for_capacity(exc)
                continue
            self.state.set(phase="submitted", attempted_at=time.time(), request_id=job.request_id)
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
        """Refuse a run that cannot succeed before this task buys anything: every Luma task of the DAG a cap covers
        is priced with the connection's table (see :mod:`airflow_provider_luma._preflight`). Every task runs it
        before its first create request, so whichever starts first refuses; it sends nothing and is deterministic.
        """
        from airflow_provider_luma._preflight import run_problems
        from airflow_provider_luma._state import context_get

        dag = context_get(self.context, "dag")
        if dag is None:
            dag = self.op.get_dag()  # an operator executed directly (a unit test): the DAG it was built in
        try:
            table = self.hook.price_table()
        except LumaError as exc:
            raise AirflowFailException(f"{failure_prefix(exc)}: {exc}") from None
        problems = run_problems(self.op, self.spec, self.plan.source, dag, table)
        if problems:
            lines = "\n".join(f"- {p}" for p in problems)
            raise AirflowFailException(
                f"Run pre-flight: this DAG run cannot succeed ({len(problems)} problem(s)); nothing was submitted "
                f"by task {self.op.task_id!r}:\n{lines}"
            )

    def _reserve(self) -> None:
        """Record this render's estimate before its create request (see ``_budget``); with ``max_run_cost_usd``,
        refuse it when the run's renders would cost more."""
        cap = self.plan.max_run_cost
        if cap is None:
            self.budget.record(self.estimate.cost_usd)
            return
        try:
            self.budget.reserve(Decimal(str(self.estimate.cost_usd)), cap, str(self.op.pool))
        except LumaBudgetExceeded as exc:
            raise AirflowFailException(str(exc)) from None

    def _wait_for_capacity(self, exc: LumaRateLimitError) -> None:
        """Wait out a rate limit: deferred in the triggerer (no worker slot), or asleep when not deferrable."""
        import random

        self.waits_so_far += 1
        # Jitter spreads a fan-out's resubmissions so they do not all hit the limit again together.
        delay = (exc.retry_after or 30.0) * random.uniform(1.0, 1.2)
        what = "concurrent-jobs limit" if exc.kind == "concurrency" else "requests-per-minute limit"
        where = "in the triggerer (no worker slot held)" if self.op.deferrable else "in the worker (deferrable=False)"
        self.log.warning(
            "Luma %s reached (%s): waiting %.0f s %s, then submitting again (wait %d of at most %d). "
            "Size an Airflow pool to your account's concurrency to avoid this.",
            what, exc.message, delay, where, self.waits_so_far, MAX_RATE_LIMIT_WAITS,
        )  # fmt: skip
        if not self.op.deferrable:
            time.sleep(delay)
            return
        import pendulum
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.op.defer(
            trigger=DateTimeTrigger(moment=pendulum.now("UTC").add(seconds=delay)),
            method_name="execute_after_rate_limit",
            kwargs={"rate_limit_waits": self.waits_so_far},
            timeout=timedelta(seconds=delay + 300),
        )

    def _schedule(self) -> tuple[float, float]:
        """``(expected render seconds, poll interval)``, on the simulator's clock when the connection says so."""
        from airflow_provider_luma.core.schedule import scaled_schedule

        try:
            factor = self.hook.schedule_time_factor()
        except LumaError as exc:
            raise AirflowFailException(f"{failure_prefix(exc)}: {exc}") from None
        self.time_factor = factor
        expected, poll = scaled_schedule(self.spec.expected_seconds(self.plan.source), self.op.poll_interval, factor)
        if factor < 1.0:
            self.log.info("Poll schedule at %g x real time (connection extra schedule_time_factor)", factor)
        return expected, poll

    def _wait(self, request_id: str) -> dict[str, Any]:
        from airflow_provider_luma._progress import progress_interval
        from airflow_provider_luma.core.schedule import first_poll_delay
        from airflow_provider_luma.triggers import LumaGenerationTrigger

        now = time.time()
        budget = float(self.op.timeout)
        if self.op.execution_timeout is not None:
            # execution_timeout is not enforced while deferred (Airflow 3.3.2): honour it in our own deadline.
            budget = min(budget, self.op.execution_timeout.total_seconds())
        deadline = now + budget
        expected, poll = self._schedule()
        if not self.op.deferrable:
            return self._poll_in_worker(request_id, deadline, poll)
        # The first poll waits for a fraction of the render's expected time; see core/schedule.py.
        trigger = LumaGenerationTrigger(
            request_id=request_id,
            deadline=deadline,
            luma_conn_id=self.op.luma_conn_id,
            poll_interval=poll,
            first_poll_at=now + first_poll_delay(expected, poll),
            submitted_at=now,
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
        self.op.defer(trigger=trigger, method_name="execute_complete", timeout=backstop)

    def _end_in_trigger(self) -> dict[str, Any]:
        """The trigger kwargs that let a successful render end in the triggerer, when nothing of its finish needs a
        worker (see :mod:`airflow_provider_luma._end_in_trigger`); none otherwise."""
        from airflow_provider_luma._end_in_trigger import finish_result
        from airflow_provider_luma._results import render_result

        base = render_result(self.spec, self.backend, {}, self.estimate, self.plan.source)
        result = finish_result(self.op, base)
        if result is None:
            return {}
        self.log.info("No output_path: on success the task ends in the triggerer (no worker resumes it)")
        return {"finish_result": result, "finish_keys": bool(self.op.multiple_outputs)}

    def _poll_in_worker(self, request_id: str, deadline: float, poll_interval: float) -> dict[str, Any]:
        from airflow_provider_luma._results import job_event

        last: JobStatus | None = None
        started = time.time()
        unusable = UnusableAnswers()
        while time.time() < deadline:
            try:
                job: Job = self.hook.get_generation(request_id, self.spec.MODEL_ID)
            except LumaError as exc:
                if poll_should_stop(exc):
                    raise fail_or_retry(exc) from None
                if isinstance(exc, LumaResponseError) and unusable.unusable():
                    raise AirflowException(unusable_answers_message(request_id, unusable.count, exc)) from None
                self.log.warning("Luma request %s: status check failed (%s); still polling", request_id, exc)
            else:
                unusable.usable()
                if job.status != last:
                    self.log.info("Luma request %s: %s after %.0f s", request_id, job.status, time.time() - started)
                    last = job.status
                if job.is_terminal:
                    return self.complete(dict(job_event(job, elapsed=time.time() - started)))
            time.sleep(max(0.0, min(poll_interval, deadline - time.time())))
        raise AirflowException(
            f"Luma request {request_id} did not finish before the deadline; the render may still finish and is "
            "billed. A retry of this task re-attaches to it."
        )
