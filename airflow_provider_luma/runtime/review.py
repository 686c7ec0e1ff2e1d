"""The review loop's state and decisions (pure: no Airflow, no I/O): what a reviewer's answer means.

A reviewed render (``review=LumaReview(...)`` on a render operator) asks a person, through Airflow's
human-in-the-loop machinery, to **approve** the take, **re-render** it with edited parameters, or **reject** it.
Every take of a task instance is kept in its durable review state (:data:`REVIEW_KEY` in the same store as the
render record ``luma_render``), so a lost worker or a retry neither buys a take twice nor forgets a decision, and
clearing an approved task returns the approved take.

The answer is user input (anyone the auth manager lets answer, through the UI or ``PATCH …/hitlDetails``): only
the option names and the editable parameters (:data:`EDITABLE`) are read, as strings, and the request they make is
validated by the model's own rules before anything is bought. Nothing in an answer chooses the connection, the
output path or the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal, Protocol

APPROVE: Final = "Approve"
RERENDER: Final = "Re-render"
REJECT: Final = "Reject"
OPTIONS: Final = (APPROVE, RERENDER, REJECT)
"""The options the reviewer is offered, in this order."""

REVIEW_KEY: Final = "luma_review"
"""The task-state key of the review state (stable across releases, like ``luma_render``)."""
REVIEW_VERSION: Final = 1

EDITABLE: Final = ("prompt", "aspect_ratio", "resolution", "duration")
"""The parameters a reviewer may ever change (each only when the operator has it and ``editable`` names it)."""
MAX_TEXT: Final = 6000
"""The longest value accepted for any edited parameter (the prompt's own limit)."""

Decision = Literal["approved", "re-render", "rejected"]
AnswerKind = Literal["approve", "rerender", "reject", "timeout", "invalid"]


class ReviewPolicy(Protocol):
    """What the runtime reads of :class:`~airflow_provider_luma.operators.review.LumaReview`."""

    @property
    def subject(self) -> str | None: ...
    @property
    def assigned_users(self) -> list[dict[str, str]]: ...
    @property
    def response_timeout(self) -> timedelta | None: ...
    @property
    def default(self) -> str | None: ...
    @property
    def on_reject(self) -> str: ...
    @property
    def notifiers(self) -> tuple[Any, ...]: ...
    @property
    def editable(self) -> tuple[str, ...]: ...
    @property
    def max_takes(self) -> int: ...


@dataclass(frozen=True)
class Take:
    """One render of a reviewed task instance.

    :param number: 1 for the DAG's own parameters, then one more per re-render.
    :param edits: the parameters the reviewer changed (from the DAG's values).
    :param result: the render's result once stored (the task's XCom result if approved).
    :param decision: ``approved``, ``re-render`` or ``rejected``; ``None`` while undecided.
    :param by: who decided (``name (id)``), ``"timeout default"`` when nobody answered in time.
    :param at: when, ISO 8601 UTC.
    :param note: why an answer was refused (the reviewer is asked again).
    """

    number: int
    edits: dict[str, str] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    decision: Decision | None = None
    by: str | None = None
    at: str | None = None
    note: str | None = None

    @property
    def request_id(self) -> str | None:
        """The request this take bought (once rendered)."""
        value = (self.result or {}).get("request_id")
        return str(value) if value else None


@dataclass(frozen=True)
class ReviewState:
    """Every take of one task instance, oldest first."""

    takes: tuple[Take, ...] = ()

    @property
    def current(self) -> Take | None:
        """The latest take."""
        return self.takes[-1] if self.takes else None

    @property
    def approved(self) -> Take | None:
        """The approved take, if the review ended with an approval."""
        take = self.current
        return take if take is not None and take.decision == "approved" else None

    def earlier_request_ids(self) -> set[str]:
        """The requests of every take but the current one: the render record naming one of them is stale."""
        return {t.request_id for t in self.takes[:-1] if t.request_id}

    def with_current(self, take: Take) -> ReviewState:
        """This state with its latest take replaced."""
        return ReviewState((*self.takes[:-1], take))

    def with_new_take(self, edits: Mapping[str, str]) -> ReviewState:
        """This state with one more take: after a re-render answer, the take it replaces with ``edits`` on top (a
        reviewer changes what they type, the rest stays as it was)."""
        current = self.current
        carried = current.edits if current is not None and current.decision == "re-render" else {}
        return ReviewState((*self.takes, Take(len(self.takes) + 1, {**carried, **edits})))

    def to_json(self) -> dict[str, Any]:
        """The JSON value stored under :data:`REVIEW_KEY`."""
        return {"version": REVIEW_VERSION, "takes": [t.__dict__ for t in self.takes]}

    @classmethod
    def from_json(cls, value: Any) -> ReviewState:
        """Parse a stored value (an unreadable one counts as no review yet, never as an approval)."""
        if not isinstance(value, Mapping) or value.get("version") != REVIEW_VERSION:
            return cls()
        takes: list[Take] = []
        for raw in value.get("takes") or ():
            if not isinstance(raw, Mapping):
                return cls()
            try:
                take = Take(**raw)
            except TypeError:
                return cls()
            # The state is REST-writable (task_state_store): only edits a reviewer could make are ever sent.
            edits = take.edits if isinstance(take.edits, Mapping) else {}
            safe = {k: v for k, v in edits.items() if k in EDITABLE and isinstance(v, str) and len(v) <= MAX_TEXT}
            takes.append(replace(take, edits=safe))
        return cls(tuple(takes))


@dataclass(frozen=True)
class Answer:
    """A reviewer's answer as the loop reads it.

    :param kind: ``approve``, ``rerender``, ``reject``, ``timeout`` (no answer and no default) or ``invalid``.
    :param edits: the parameters a re-render changes (validated strings).
    :param by: who answered; ``"timeout default"`` when the default decision was applied.
    :param at: when, ISO 8601.
    :param problem: why an ``invalid`` answer was refused.
    """

    kind: AnswerKind
    edits: dict[str, str] = field(default_factory=dict)
    by: str | None = None
    at: str | None = None
    problem: str | None = None


def editable_params(policy_editable: tuple[str, ...], operator_params: tuple[str, ...]) -> tuple[str, ...]:
    """The parameters this task's reviewer may change: named by ``editable``, allowed, and the operator's own."""
    return tuple(p for p in policy_editable if p in EDITABLE and p in operator_params)


def read_answer(event: Any, editable: tuple[str, ...], current: Mapping[str, Any]) -> Answer:
    """What a HITL resume event asks for (see :mod:`airflow.models.hitl` ``as_resume_event_payload``).

    :param editable: the parameters the reviewer may change.
    :param current: the current take's parameters, to tell edits from unchanged form values.
    """
    if not isinstance(event, Mapping):
        return Answer("invalid", problem=f"the answer is not an object ({type(event).__name__})")
    if "error" in event:
        if event.get("error_type") == "timeout":
            return Answer("timeout", problem=str(event.get("error") or "the response timeout passed"))
        return Answer("invalid", problem=f"the review failed: {event.get('error')}")
    chosen = event.get("chosen_options")
    if not isinstance(chosen, list | tuple) or len(chosen) != 1 or chosen[0] not in OPTIONS:
        return Answer("invalid", problem=f"chosen options {chosen!r}: pick exactly one of {', '.join(OPTIONS)}")
    by = _who(event.get("responded_by_user"), timed_out=bool(event.get("timedout")))
    at = _when(event.get("responded_at"))
    option = chosen[0]
    if option == APPROVE:
        return Answer("approve", by=by, at=at)
    if option == REJECT:
        return Answer("reject", by=by, at=at)
    edits, problem = _edits(event.get("params_input"), editable, current)
    if problem is not None:
        return Answer("invalid", by=by, at=at, problem=problem)
    return Answer("rerender", edits=edits, by=by, at=at)


def _edits(params: Any, editable: tuple[str, ...], current: Mapping[str, Any]) -> tuple[dict[str, str], str | None]:
    if params is None:
        return {}, None
    if not isinstance(params, Mapping):
        return {}, f"the form's values are not an object ({type(params).__name__})"
    foreign = sorted(str(k) for k in params if k not in editable)
    if foreign:
        allowed = ", ".join(editable) or "none"
        return {}, f"parameters a reviewer may not set: {', '.join(foreign)} (editable: {allowed})"
    edits: dict[str, str] = {}
    for name, value in params.items():
        if value is None:
            continue  # a field left empty keeps the current value
        if not isinstance(value, str):
            return {}, f"{name}: must be text, got {type(value).__name__}"
        text = value.strip()
        if len(text) > MAX_TEXT:
            return {}, f"{name}: {len(text)} characters; at most {MAX_TEXT}"
        if any(ord(c) < 32 and c not in "\n\t" for c in text):
            return {}, f"{name}: control characters are not allowed"
        if text and text != str(current.get(name) or ""):
            edits[str(name)] = text
    return edits, None


def _who(user: Any, *, timed_out: bool) -> str:
    if timed_out and not user:
        return "timeout default"
    if isinstance(user, Mapping):
        name, uid = str(user.get("name") or "?"), str(user.get("id") or "?")
        return f"{name} ({uid})" if name != uid else name
    return "unknown"


def _when(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value else None


def take_params(base: Mapping[str, Any], take: Take | None) -> dict[str, Any]:
    """The request parameters of ``take``: the DAG's, with the reviewer's edits."""
    return {**base, **(take.edits if take is not None else {})}


def decided(take: Take, answer: Answer) -> Take:
    """``take`` with the decision ``answer`` makes (an invalid answer leaves it undecided, with a note)."""
    if answer.kind == "invalid":
        return replace(take, note=answer.problem)
    decision: Decision = {"approve": "approved", "rerender": "re-render"}.get(answer.kind, "rejected")  # type: ignore[assignment]
    return replace(take, decision=decision, by=answer.by, at=answer.at, note=None)


def cost_of_earlier_takes(state: ReviewState) -> float | None:
    """The summed estimate of every take before the current one (``None`` when one of them had no price)."""
    return takes_cost(state.takes[:-1])


def takes_cost(takes: tuple[Take, ...]) -> float | None:
    """The summed estimate of ``takes`` (``None`` when one had no price). The state is writable by the REST API's
    User role: an estimate that is not a finite non-negative number counts as unknown, never as a discount."""
    from airflow_provider_luma.runtime.turns import is_usd

    total = 0.0
    for take in takes:
        if take.result is None:
            continue  # not rendered: nothing was bought
        cost: Any = take.result.get("estimated_cost_usd")
        if not is_usd(cost):
            return None
        total += float(cost)
    return total
