"""The review loop in Airflow: keep the takes durably, ask through Airflow's human-in-the-loop machinery, act on the
answer (the decisions themselves are :mod:`.review`'s, pure).

One task instance runs the whole loop, because a DAG has no cycles: render → ask → (re-render → ask)* → approve
(the task returns the approved take) or reject (fail, or skip downstream). On Airflow 3.3 asking parks the task in
``awaiting_input`` (no worker slot, no trigger); on 3.1-3.2 it defers to the standard provider's ``HITLTrigger``.
Either way the answer resumes the task in ``execute_review``.

Durability: the review state is written before each step that costs money and after each render, so

* a retry or a lost worker while a take renders re-attaches to it (the render record names it);
* a retry while the person decides asks again, without rendering;
* a re-render answer is written (with the new take) before the new take is bought, and the render record naming
  the previous take is set aside only while it still names an earlier take, so a retry never buys it twice;
* clearing an approved task returns the approved take; clearing a rejected one starts a new round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

from airflow_provider_luma.runtime import delivery_record
from airflow_provider_luma.runtime.money import RunBudget
from airflow_provider_luma.runtime.record import STATE_RETENTION, Phase, RecordStore
from airflow_provider_luma.runtime.review import (
    OPTIONS,
    REVIEW_KEY,
    ReviewPolicy,
    ReviewState,
    Take,
    cost_of_earlier_takes,
    decided,
    editable_params,
    read_answer,
    take_params,
    takes_cost,
)
from airflow_provider_luma.runtime.task import context_get
from airflow_provider_luma.version_compat import AIRFLOW_V_3_3_PLUS, AIRFLOW_VERSION, VariableStateStore

if TYPE_CHECKING:
    from airflow_provider_luma.runtime.plan import RunOptions
    from airflow_provider_luma.runtime.task import RenderTask

RESUME_METHOD = "execute_review"
REVIEW_VARIABLE_PREFIX = "luma_review."
"""Before Airflow 3.3 the review state is a Variable of its own per task instance (``luma_review.<digest>``)."""


class ReviewStore:
    """Where the review state lives: next to the render record (``task_state_store``, a Variable before 3.3)."""

    def __init__(self, context: Any) -> None:
        self._store = context_get(context, "task_state_store")
        if self._store is None and not AIRFLOW_V_3_3_PLUS:
            ti = context_get(context, "ti")
            if getattr(ti, "dag_id", None):
                # Its own Variable: a VariableStateStore holds one key, and the render record already has it.
                self._store = VariableStateStore(ti, prefix=REVIEW_VARIABLE_PREFIX)
        self._memory: dict[str, Any] = {}

    def get(self) -> ReviewState:
        """The stored state (empty when there is none)."""
        value = self._store.get(REVIEW_KEY) if self._store is not None else self._memory.get(REVIEW_KEY)
        return ReviewState.from_json(value)

    def put(self, state: ReviewState) -> None:
        """Write ``state``."""
        if self._store is not None:
            self._store.set(REVIEW_KEY, state.to_json(), retention=STATE_RETENTION)
        else:
            self._memory[REVIEW_KEY] = state.to_json()


def earlier_takes_cost(context: Any) -> float | None:
    """What this task instance's earlier takes were estimated at (0 without a review): the run budget counts
    every take a task bought, not only the latest."""
    return cost_of_earlier_takes(ReviewStore(context).get())


def current_params(context: Any, base: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters of the take being rendered: the DAG's, with the reviewer's edits."""
    return take_params(base, ReviewStore(context).get().current)


def record_take(task: RenderTask, context: Any, result: Mapping[str, Any]) -> None:
    """Re-send the delivery record naming a take (a fresh process's operator has none). The review state is
    writable by the REST API's User role, so its ids carry the render record's trust (``docs/security.md``) and
    its paths are kept only where the task's own ``output_path`` gives exactly them for those ids: a forged state
    can never make the api-server open another file."""
    from airflow_provider_luma.runtime.delivery import placeholder_values
    from airflow_provider_luma.runtime.storage import parse_output_path

    values = {key: result.get(key) for key in ("request_id", "generation_id", "model", "backend")}
    try:
        spec = parse_output_path(getattr(task, "output_path", None))
    except Exception:  # noqa: BLE001 - the plan checked it; without a spec no path is trusted
        spec = None
    if spec is not None:
        expected = placeholder_values(context, str(getattr(task, "task_id", "")), dict(result))
        for ext, key in (("mp4", "video_path"), ("exr", "exr_path")):
            if result.get(key) and str(result.get(key)) == str(spec.resolve(ext, expected)):
                values[key] = result.get(key)
    delivery_record.record(task, values)


def before_render(task: RenderTask, context: Any, policy: ReviewPolicy) -> dict[str, Any] | None:
    """At ``execute``: the approved take's result (a cleared approved task), or ask again (a take rendered and
    undecided: a retry while the person decides), or ``None`` after preparing the take to render."""
    store = ReviewStore(context)
    state = store.get()
    current = state.current
    if current is not None and current.result is not None and current.decision in (None, "approved"):
        # A fresh try of this operator has an empty delivery record; the rendered fields it re-sends must still
        # name the take (the gallery and the review tab play what it names).
        record_take(task, context, current.result)
    if current is not None and current.decision == "approved" and current.result is not None:
        task.log.info(
            "Take %d was approved by %s at %s; returning it (nothing rendered)", current.number, current.by, current.at
        )
        return approved_result(state, current)
    if current is not None and current.decision is None and current.result is not None:
        task.log.info("Take %d is rendered and awaits review; asking again (nothing is rendered)", current.number)
        # A new try starts with its XComs cleared: every take bought keeps counting for the run budget.
        RunBudget(context, task.log).record(takes_cost(state.takes))
        ask(task, context, policy, state)
    if current is None or current.decision == "rejected":
        if current is not None:
            task.log.info("Take %d was rejected; a new review round starts with the DAG's parameters", current.number)
        state = ReviewState((*state.takes, Take(len(state.takes) + 1)))
        store.put(state)
    set_aside_earlier_take(context, state, task.log)
    return None


def after_render(task: RenderTask, context: Any, policy: ReviewPolicy, result: Mapping[str, Any]) -> NoReturn:
    """The current take is rendered (and stored): keep its result, then ask the reviewer."""
    store = ReviewStore(context)
    state = store.get()
    current = state.current or Take(1)
    state = (state if state.current else ReviewState((current,))).with_current(replace(current, result=dict(result)))
    store.put(state)
    ask(task, context, policy, state)


def on_answer(
    task: RenderTask,
    context: Any,
    policy: ReviewPolicy,
    event: Any,
    base_params: Mapping[str, Any],
    options: RunOptions,
    render: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """``execute_review``: act on the answer. Approve returns the take; reject fails or skips; re-render checks the
    edited request (the model's rules, ``max_cost_usd``) and buys it through ``render`` (which defers or returns
    the new take's result, then this task asks again)."""
    store = ReviewStore(context)
    state = store.get()
    current = state.current
    if current is None or current.result is None:
        raise AirflowFailException("A review answer arrived, but this task instance has no take awaiting review.")
    record_take(task, context, current.result)  # this resumption re-sends the rendered fields: keep the take's
    if current.decision == "approved":
        return approved_result(state, current)
    editable = editable_params(policy.editable, tuple(base_params))
    answer = read_answer(event, editable, take_params(base_params, current))
    if answer.kind == "invalid" or answer.kind == "rerender":
        problem = answer.problem
        if answer.kind == "rerender":
            problem = _refusal(context, options, policy, state, answer.edits, base_params)
        if problem is not None:
            task.log.warning("Review answer refused (%s); asking again. Nothing was bought.", problem)
            store.put(state.with_current(replace(current, note=problem)))
            ask(task, context, policy, state)
    if answer.kind == "timeout":
        store.put(state.with_current(replace(current, decision="rejected", by="timeout (no default)")))
        raise AirflowFailException(
            f"Nobody reviewed take {current.number} in time and there is no default decision ({answer.problem})."
        )
    take = decided(current, answer)
    if answer.kind == "approve":
        store.put(state.with_current(take))
        task.log.info("Take %d approved by %s", take.number, take.by)
        return approved_result(state.with_current(take), take)
    if answer.kind == "reject":
        store.put(state.with_current(take))
        message = f"Take {take.number} rejected by {take.by}"
        if policy.on_reject == "skip":
            raise AirflowSkipException(f"{message}; skipping downstream (on_reject='skip').")
        raise AirflowFailException(f"{message} (on_reject='fail').")
    state = state.with_current(take).with_new_take(answer.edits)
    store.put(state)  # the new take is written before it is bought
    changed = ", ".join(sorted(answer.edits)) or "no changes"
    task.log.info("Take %d: re-render asked by %s (%s); rendering the next take", take.number, take.by, changed)
    set_aside_earlier_take(context, state, task.log)
    return render()


def _refusal(
    context: Any,
    options: RunOptions,
    policy: ReviewPolicy,
    state: ReviewState,
    edits: Mapping[str, str],
    base_params: Mapping[str, Any],
) -> str | None:
    """Why the re-render asked for cannot be bought (``None``: it can): too many takes, a broken model rule, an
    estimate over ``max_cost_usd``, or one that would bring the run over ``max_run_cost_usd`` as things stand (the
    purchase reserves and checks again, as for any render: a task that bought meanwhile can still fail it)."""
    from airflow_provider_luma.core.errors import LumaBudgetExceeded, LumaError, LumaValidationError
    from airflow_provider_luma.core.pricing import check_budget, estimate
    from airflow_provider_luma.runtime.finish import worker_hook
    from airflow_provider_luma.runtime.plan import plan_from_record

    if len(state.takes) >= policy.max_takes:
        return f"this task has rendered {len(state.takes)} takes, the most max_takes={policy.max_takes} allows"
    record = RecordStore(context).get()
    if record is None:
        return "the render record of the current take is gone; clear the task to start again"
    params = take_params(base_params, Take(0, {**(state.current.edits if state.current else {}), **edits}))
    try:
        plan = plan_from_record(options, record, params)
        if plan is None:
            return "the current take's record cannot give the facts a re-render needs"
        table = worker_hook(options.conn_id).price_table()
        est = estimate(plan.spec, table, plan.source)
        check_budget(plan.spec, est, options.max_cost)
        check_budget(plan.spec, est, options.max_run_cost, "max_run_cost_usd")
        if options.max_run_cost is not None and est.cost_usd is not None:
            over = _over_run_budget(context, options.max_run_cost, est.cost_usd, state)
            if over is not None:
                return over
    except (LumaValidationError, LumaBudgetExceeded) as exc:
        return str(exc)
    except LumaError as exc:
        return f"the price could not be looked up ({exc})"
    return None


def _over_run_budget(context: Any, cap: Decimal, cost: float, state: ReviewState) -> str | None:
    """Whether a take estimated at ``cost`` would bring the run over ``cap``, reading (not writing) what every task
    of the run holds; this task holds every take it bought so far (:attr:`RenderRun.held_cost`)."""
    from airflow_provider_luma.runtime.money import others_costs

    ti, dag = context_get(context, "ti"), context_get(context, "dag")
    own = takes_cost(state.takes)  # what this task pushed when it bought the current take: every take so far
    if ti is None or dag is None or own is None:
        return None  # nothing to read, or unpriced takes: the purchase decides
    spent, _, unpriced = others_costs(ti, dag, own)
    total = spent + Decimal(str(own)) + Decimal(str(cost))
    if not unpriced and total <= cap:
        return None
    return (
        f"max_run_cost_usd=${cap:.2f}: this take's estimate ${cost:.2f} on top of this task's takes so far "
        f"(${own:.2f}) and the run's other renders (${spent:.2f}, {unpriced} unpriced) would make ${total:.2f}"
    )


def set_aside_earlier_take(context: Any, state: ReviewState, log: Any) -> None:
    """Make the render record forget an earlier take, so the current one is bought fresh (even with unchanged
    parameters); a record that already names the current take's request is kept (it is re-attached)."""
    store = RecordStore(context)
    record = store.get()
    if record is None or record.request_id is None or record.request_id not in state.earlier_request_ids():
        return
    log.info("Render record names an earlier take (request %s); the new take is bought fresh", record.request_id)
    store.put(record.moved_to(Phase.REJECTED, at=record.attempted_at, request_id=None, generation_id=None))


def approved_result(state: ReviewState, take: Take) -> dict[str, Any]:
    """The task's result: the approved take's, with the review's decision."""
    own = (take.result or {}).get("estimated_cost_usd")
    review = {
        "take": take.number, "takes": len(state.takes), "decision": take.decision, "by": take.by, "at": take.at,
        "take_estimated_cost_usd": own,
    }  # fmt: skip
    # The result's estimate is pushed as the task's reservation (what the run budget and the cost report read):
    # it is what every take of the task cost, not only the approved one's.
    return {**(take.result or {}), "estimated_cost_usd": takes_cost(state.takes), "review": review}


def ask(task: RenderTask, context: Any, policy: ReviewPolicy, state: ReviewState) -> NoReturn:
    """Ask the reviewer about the current take: write the HITL request, notify, then wait for the answer."""
    import copy
    from datetime import datetime, timezone

    from airflow.sdk.execution_time.hitl import upsert_hitl_detail

    ti = context_get(context, "ti")
    take = state.current or Take(1)
    base: dict[str, Any] = getattr(task, "spec_params", dict)()
    form = form_params(editable_params(policy.editable, tuple(base)))
    # The HITL request is written once per task instance (Airflow keeps the first subject and body and only clears
    # the answer when asked again), so the text speaks of the latest take and the links always show it.
    upsert_hitl_detail(
        ti_id=ti.id,
        options=list(OPTIONS),
        subject=policy.subject or f"Review the Luma render of {ti.task_id}",
        body=review_body(context, take),
        defaults=[policy.default] if policy.default else None,
        multiple=False,
        params=form,
        assigned_users=list(policy.assigned_users) or None,  # type: ignore[arg-type]
    )
    task.log.info("Take %d awaits review (%s)", take.number, ", ".join(OPTIONS))
    for notifier in policy.notifiers:
        notifier(context)
    if AIRFLOW_V_3_3_PLUS:
        from airflow.sdk.exceptions import TaskAwaitingInput

        raise TaskAwaitingInput(method_name=RESUME_METHOD, timeout=policy.response_timeout)
    from airflow.providers.standard.triggers.hitl import HITLTrigger

    timeout_at = datetime.now(timezone.utc) + policy.response_timeout if policy.response_timeout else None
    defaults = [policy.default] if policy.default else None
    # The trigger consumes the form's fields as it builds them (it pops their values): give it its own copy.
    trigger = HITLTrigger(
        ti_id=ti.id, options=list(OPTIONS), params=copy.deepcopy(form), multiple=False, defaults=defaults,
        timeout_datetime=timeout_at,
    )  # fmt: skip
    task.defer(trigger=trigger, method_name=RESUME_METHOD)


def form_params(editable: tuple[str, ...]) -> dict[str, Any]:
    """The HITL form: one optional text field per editable parameter, empty.

    Empty, not filled with the take's value: Airflow writes a task instance's form once (when the first take is
    asked about) and keeps it, so a filled field would offer take 1's value at every later take, and an untouched
    field would silently revert what an earlier re-render changed. An empty field keeps the latest take's value.
    """
    from airflow.sdk.definitions.param import Param, ParamsDict

    from airflow_provider_luma.runtime.review import MAX_TEXT

    fields = {
        name: Param(
            None,
            type=["string", "null"],
            maxLength=MAX_TEXT,
            description=f"Re-render only: the next take's {name}; leave empty to keep the latest take's",
        )
        for name in editable
    }
    params = ParamsDict(fields)
    if AIRFLOW_VERSION < (3, 1, 3):
        return dict(params.dump())
    return {name: params.get_param(name).serialize() for name in params}


def review_body(context: Any, take: Take) -> str:
    """The Markdown the reviewer reads: a still of the latest take (when takes are stored: the still is made from
    the stored copy) and where to watch it (a tab with the player, the gallery)."""
    from airflow_provider_luma.plugins import gallery_url, still_url

    ti = context_get(context, "ti")
    try:
        from airflow.providers.common.compat.sdk import conf

        base_url = str(conf.get("api", "base_url", fallback="") or "")
    except Exception:  # noqa: BLE001 - no configuration (a unit test): a path relative to the UI
        base_url = ""
    map_index = getattr(ti, "map_index", -1)
    link = gallery_url(base_url, ti.dag_id, ti.run_id, ti.task_id, map_index)
    # The body is written once (take 1): the still's URL names the task instance, and the route reads the latest
    # take's stored copy when the page is viewed. Takes are stored only with an output_path, the same for all.
    stored = bool((take.result or {}).get("video_path"))
    still = f"![the latest take]({still_url(base_url, ti.dag_id, ti.run_id, ti.task_id, map_index)})\n\n"
    return (
        (still if stored else "")
        + "**Watch the latest take** in this task's *Luma review* tab (it plays there), or in the "
        f"[Luma renders gallery]({link}).\n\n"
        "* **Approve**: the task succeeds with the latest take; downstream gets its `generation_id` and files.\n"
        "* **Re-render**: type what changes in the fields below (an empty field keeps the latest take's value); a "
        "new take is estimated, checked against the budgets and bought, then you are asked again.\n"
        "* **Reject**: the task fails or skips downstream, as the DAG says.\n\n"
        f"This request was first written for take {take.number}."
    )
