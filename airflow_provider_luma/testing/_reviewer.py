"""The reviewer of the ``luma_airflow`` fixture: it answers review steps (``review=LumaReview(...)``) in
``dag.test()``.

On Airflow 3.3 ``dag.test()`` keeps a run whose task waits for human input alive until an answer is recorded from
outside (Airflow's Required Actions page or its HITL REST API). :class:`Reviewer` records it: a thread watches the
test's metadata database for open questions and answers each one, in the order they are asked, with the next
answer the test scripted (``luma_airflow.reviewer.rerender(prompt=...)``, ``.approve()``, ``.reject()``), and with
"Approve" once none is left. It writes what the api-server's ``PATCH …/hitlDetails`` writes (the response on the
HITL row, as the user ``luma_airflow``) and resumes the task as that route does.

Before Airflow 3.3 the review step defers to Airflow's ``HITLTrigger``, and ``dag.test()`` runs triggers in-process
without serving the request that trigger makes (``GetHITLDetailResponse``): the run fails at the first take, so
scripting answers there raises.

Imported by the fixture only (it imports Airflow's core).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

# The review step's options and editable parameters as Airflow's HITL row offers them. Written here, not imported:
# the testing package imports nothing of the provider outside it (tests/testing/test_reviewer.py pins that these
# are the runtime's).
APPROVE: Final = "Approve"
RERENDER: Final = "Re-render"
REJECT: Final = "Reject"
OPTIONS: Final = (APPROVE, RERENDER, REJECT)
EDITABLE: Final = ("prompt", "aspect_ratio", "resolution", "duration")
REVIEWER: Final = {"id": "luma_airflow", "name": "luma_airflow"}
"""Who answers, as the take's record and Airflow's HITL row show it."""
POLL_SECONDS: Final = 0.2
SETTLE_SECONDS: Final = 0.5
"""How long a task must have been parked before the reviewer answers (see :meth:`Reviewer.answer_open_questions`)."""
FAILURE_LOG_EVERY: Final = 25
"""A failing pass is logged at debug level; every this many in a row (5 s), at error level."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewAnswer:
    """One answer the reviewer gave: to which task instance, the question's subject, the option and the edits."""

    task_id: str
    map_index: int
    subject: str
    option: str
    params: dict[str, str] = field(default_factory=dict)


class Reviewer:
    """Answers this test's review steps in ``dag.test()`` (Airflow 3.3), in order; "Approve" when none is scripted.

    ``answers`` lists what it answered (a :class:`ReviewAnswer` each), for the test's assertions.
    """

    def __init__(self) -> None:
        self._script: deque[tuple[str, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        self.answers: list[ReviewAnswer] = []
        self._parked: dict[Any, float] = {}  # task instance id -> when it was first seen parked

    def answer(self, option: str, **params: str) -> Reviewer:
        """Script the next answer: ``option`` is one of "Approve", "Re-render", "Reject"; ``params`` (with
        "Re-render" only) the edited parameters: prompt, aspect_ratio, resolution, duration."""
        if not AIRFLOW_V_3_3_PLUS:
            raise RuntimeError(
                "luma_airflow.reviewer answers reviews in dag.test() on Airflow 3.3 or newer: before 3.3, dag.test() "
                "cannot run Airflow's HITL trigger and a reviewed render fails at its first take"
            )
        if option not in OPTIONS:
            raise ValueError(f"option={option!r}: one of {', '.join(OPTIONS)}")
        if params and option != RERENDER:
            raise ValueError(f"params are edits for {RERENDER!r}; {option!r} takes none (got {sorted(params)})")
        foreign = sorted(set(params) - set(EDITABLE))
        if foreign:
            raise ValueError(f"{', '.join(foreign)}: not an editable parameter ({', '.join(EDITABLE)})")
        with self._lock:
            self._script.append((option, {k: str(v) for k, v in params.items()}))
        return self

    def approve(self) -> Reviewer:
        """Script "Approve"."""
        return self.answer(APPROVE)

    def rerender(self, **params: str) -> Reviewer:
        """Script "Re-render" with these edits (``prompt=...``, ``duration=...``)."""
        return self.answer(RERENDER, **params)

    def reject(self) -> Reviewer:
        """Script "Reject"."""
        return self.answer(REJECT)

    def _peek(self) -> tuple[str, dict[str, str]]:
        """The next answer, left in the script until it is committed (a busy database must not lose it)."""
        with self._lock:
            return self._script[0] if self._script else (APPROVE, {})

    def _given(self, answer: ReviewAnswer) -> None:
        with self._lock:
            if self._script:
                self._script.popleft()
            self.answers.append(answer)

    def answer_open_questions(self) -> int:
        """One pass over the questions in the database; how many it answered.

        A question is answered once its task has been parked (``awaiting_input``) for :data:`SETTLE_SECONDS`:
        ``dag.test()`` writes the parked state itself once the task has returned, which would undo a resume made
        before it. For the same reason an answer whose task is parked again without a new question (Airflow clears
        the answer when it asks again) has lost its resume to that write, and is resumed again.
        """
        from airflow import settings
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        if settings.Session is None:  # pragma: no cover - configured by the fixture's airflow_home()
            return 0
        session: Any = settings.Session()
        now = time.monotonic()
        answered = 0
        try:
            for detail in list(session.scalars(select(HITLDetail).order_by(HITLDetail.created_at))):
                if set(detail.options or ()) != set(OPTIONS):
                    continue  # not a Luma review step (the user's own HITL operator): not ours to answer
                ti = session.get(TaskInstance, detail.ti_id)
                if ti is None or ti.state != TaskInstanceState.AWAITING_INPUT:
                    self._parked.pop(detail.ti_id, None)
                    continue
                if now - self._parked.setdefault(detail.ti_id, now) < SETTLE_SECONDS:
                    continue
                given: ReviewAnswer | None = None
                if detail.responded_at is None:
                    option, params = self._peek()
                    detail.responded_by = dict(REVIEWER)
                    detail.responded_at = datetime.now(timezone.utc)
                    detail.chosen_options = [option]
                    detail.params_input = params
                    session.add(detail)
                    given = ReviewAnswer(ti.task_id, ti.map_index, str(detail.subject), option, params)
                elif detail.responded_by != REVIEWER:
                    continue  # answered by someone else: not ours to resume
                event = TriggerEvent(detail.as_resume_event_payload())  # type: ignore[no-untyped-call,unused-ignore]
                handle_event_submit(event, task_instance=ti, session=session)  # as PATCH …/hitlDetails resumes it
                session.commit()
                self._parked.pop(detail.ti_id, None)
                if given is not None:
                    self._given(given)
                    answered += 1
        finally:
            session.close()
        return answered


@contextmanager
def reviewing(reviewer: Reviewer) -> Iterator[Reviewer]:
    """Run ``reviewer`` in a thread for the block (Airflow 3.3; a no-op before it).

    A pass that fails (a busy database) is tried again; ``dag.test()`` waits for the answer without a limit, so a
    failure that lasts is logged as an error every :data:`FAILURE_LOG_EVERY` passes, and raised when the block
    ends if the last pass failed."""
    if not AIRFLOW_V_3_3_PLUS:
        yield reviewer
        return
    stop = threading.Event()
    failure: list[BaseException] = []

    def loop() -> None:
        failures = 0
        while not stop.wait(POLL_SECONDS):
            try:
                reviewer.answer_open_questions()
            except Exception as exc:
                failures += 1
                failure[:] = [exc]
                level = logging.ERROR if failures % FAILURE_LOG_EVERY == 0 else logging.DEBUG
                log.log(
                    level, "luma_airflow reviewer: %d pass(es) in a row failed; trying again", failures, exc_info=True
                )
            else:
                failures = 0
                failure.clear()

    thread = threading.Thread(target=loop, name="luma_airflow reviewer", daemon=True)
    thread.start()
    try:
        yield reviewer
    finally:
        stop.set()
        thread.join(timeout=10)
        if thread.is_alive():  # it would answer the next test's questions from this test's script
            raise RuntimeError("the luma_airflow reviewer did not stop within 10 s")
        if failure:
            raise RuntimeError("the luma_airflow reviewer's last pass failed") from failure[0]
