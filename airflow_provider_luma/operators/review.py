"""``LumaReview``: the human review step of a render (``review=`` on any render operator).

Imported at DAG-parse time, so it imports nothing heavy: Airflow's human-in-the-loop machinery is imported by the
worker when the task asks (:mod:`airflow_provider_luma.runtime.review_loop`).

Why an option on the render operators and not a review operator placed after the render: a re-render must buy a
new take of *that* render (same model, connection, budget, output path and durable record), and a DAG has no
cycles, so the loop render → ask → re-render → ask lives in one task instance. The task's result (``generation_id``,
``video_path``, ...) is then the approved take's, with no extra task to chain through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from airflow_provider_luma.runtime.review import APPROVE, EDITABLE, REJECT

ON_REJECT = ("fail", "skip")


@dataclass(frozen=True)
class LumaReview:
    """Ask a person to approve each take of a render in Airflow's UI ("Required Actions"), on Airflow 3.1+.

    The reviewer picks **Approve** (the task succeeds with this take), **Re-render** (with the edited parameters
    of the form: a new take is validated by the model's rules, estimated, checked against ``max_cost_usd`` and the
    run budget, bought, and shown for review again) or **Reject**.

    :param assigned_users: who may answer, as Airflow's HITL users (``{"id": ..., "name": ...}``); empty: anyone
        the auth manager lets answer HITL requests of this DAG.
    :param response_timeout: how long to wait for an answer; then ``default`` applies (or the task fails).
    :param default: ``"Approve"`` or ``"Reject"``, the decision taken when ``response_timeout`` passes.
    :param on_reject: ``"fail"`` (default) fails the task; ``"skip"`` skips it and its downstream tasks.
    :param notifiers: Airflow notifiers called (with the task's context) each time a take awaits review.
    :param editable: what a reviewer may change for a re-render, among ``prompt``, ``aspect_ratio``,
        ``resolution`` and ``duration`` (default: the prompt); never the connection, output path or model.
    :param max_takes: the most takes one task instance renders (default 5); a re-render beyond is refused.
    :param subject: the headline of the request (default: "Review the Luma render of <task_id>").
    """

    assigned_users: list[dict[str, str]] = field(default_factory=list)
    response_timeout: timedelta | None = None
    default: str | None = None
    on_reject: str = "fail"
    notifiers: tuple[Any, ...] = ()
    editable: tuple[str, ...] = ("prompt",)
    max_takes: int = 5
    subject: str | None = None

    def __post_init__(self) -> None:
        from airflow_provider_luma.version_compat import require

        require("Human review of a render (review=LumaReview(...))", (3, 1))
        problems: list[str] = []
        if self.default not in (None, APPROVE, REJECT):
            problems.append(f"default: got {self.default!r}; must be {APPROVE!r}, {REJECT!r} or None")
        if self.on_reject not in ON_REJECT:
            problems.append(f"on_reject: got {self.on_reject!r}; must be 'fail' or 'skip'")
        unknown = [name for name in self.editable if name not in EDITABLE]
        if unknown:
            allowed = ", ".join(EDITABLE)
            problems.append(f"editable: {', '.join(unknown)} cannot be edited by a reviewer (only {allowed})")
        if not isinstance(self.max_takes, int) or self.max_takes < 1:
            problems.append(f"max_takes: got {self.max_takes!r}; must be a whole number of at least 1")
        users = self.assigned_users
        if not isinstance(users, list) or not all(isinstance(u, dict) and u.get("id") for u in users):
            problems.append('assigned_users: a list of {"id": ..., "name": ...}')
        if problems:
            raise ValueError("LumaReview: " + "; ".join(problems))
        if not isinstance(self.notifiers, tuple):
            object.__setattr__(self, "notifiers", tuple(self.notifiers))
        if not isinstance(self.editable, tuple):
            object.__setattr__(self, "editable", tuple(self.editable))
