"""The review loop (``review=LumaReview(...)``): the answer's meaning (a table) and the loop's decisions, driven
through the real client and the simulator; Airflow's HITL channel is the supervisor's (a recording stand-in)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, TaskDeferred

from airflow_provider_luma import version_compat
from airflow_provider_luma.operators import LumaGenerateVideoOperator, LumaReview
from airflow_provider_luma.runtime.review import EDITABLE, Answer, read_answer
from airflow_provider_luma.runtime.review_loop import ReviewStore
from airflow_provider_luma.testing import LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger
from airflow_provider_luma.version_compat import AIRFLOW_V_3_1_PLUS
from tests._helpers import MemoryStateStore, posts

AT = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
ALICE = {"id": "alice", "name": "Alice"}

# On Airflow 3.0 LumaReview cannot be built (test_on_airflow_3_0_a_review_fails_at_dag_import_naming_3_1).
needs_hitl = pytest.mark.skipif(not AIRFLOW_V_3_1_PLUS, reason="human review needs Airflow 3.1+ (HITL)")


def event(option: str, params: Any = None, **extra: Any) -> dict[str, Any]:
    return {"chosen_options": [option], "params_input": params or {}, "responded_at": AT,
            "responded_by_user": ALICE, **extra}  # fmt: skip


CURRENT = {"prompt": "a fox", "resolution": "540p"}
ANSWERS = [
    ("approve", event("Approve"), Answer("approve", by="Alice (alice)", at=AT.isoformat())),
    ("reject", event("Reject"), Answer("reject", by="Alice (alice)", at=AT.isoformat())),
    (
        "re-render, new prompt",
        event("Re-render", {"prompt": " a wolf "}),
        Answer("rerender", {"prompt": "a wolf"}, "Alice (alice)", AT.isoformat()),
    ),
    (
        "re-render, form unchanged: a re-roll",
        event("Re-render", {"prompt": "a fox"}),
        Answer("rerender", {}, "Alice (alice)", AT.isoformat()),
    ),
    (
        "re-render, empty field keeps the value",
        event("Re-render", {"prompt": None}),
        Answer("rerender", {}, "Alice (alice)", AT.isoformat()),
    ),
    (
        "timeout default",
        {**event("Approve"), "responded_by_user": None, "timedout": True},
        Answer("approve", by="timeout default", at=AT.isoformat()),
    ),
]
REFUSED = [
    ("output path", event("Re-render", {"prompt": "x", "output_path": "/etc/x.mp4"}), "may not set: output_path"),
    ("connection", event("Re-render", {"luma_conn_id": "other"}), "may not set: luma_conn_id"),
    ("not editable here", event("Re-render", {"resolution": "1080p"}), "may not set: resolution"),
    ("not text", event("Re-render", {"prompt": 7}), "prompt: must be text"),
    ("too long", event("Re-render", {"prompt": "x" * 6001}), "at most 6000"),
    ("control characters", event("Re-render", {"prompt": "a\x00b"}), "control characters"),
    ("form not an object", event("Re-render", ["prompt"]), "not an object"),
    ("two options", {**event("Approve"), "chosen_options": ["Approve", "Reject"]}, "exactly one"),
    ("unknown option", event("Publish"), "exactly one"),
    ("not an event", "Approve", "not an object"),
]


@pytest.mark.parametrize(("answer", "expected"), [a[1:] for a in ANSWERS], ids=[a[0] for a in ANSWERS])
def test_what_an_answer_asks_for(answer: Any, expected: Answer) -> None:
    assert read_answer(answer, ("prompt",), CURRENT) == expected


@pytest.mark.parametrize(("answer", "problem"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_an_answer_that_sets_what_a_reviewer_may_not_is_refused(answer: Any, problem: str) -> None:
    read = read_answer(answer, ("prompt",), CURRENT)
    assert read.kind == "invalid" and read.edits == {}
    assert problem in str(read.problem)


def test_a_timeout_without_default_is_its_own_answer() -> None:
    read = read_answer({"error": "no response", "error_type": "timeout"}, ("prompt",), CURRENT)
    assert read.kind == "timeout"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"default": "Maybe"}, "default"),
        ({"on_reject": "ignore"}, "on_reject"),
        ({"editable": ("prompt", "output_path")}, "output_path cannot be edited"),
        ({"max_takes": 0}, "max_takes"),
        ({"assigned_users": [{"name": "no id"}]}, "assigned_users"),
    ],
)
@needs_hitl
def test_review_options_are_checked_when_the_dag_is_parsed(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        LumaReview(**kwargs)
    assert set(EDITABLE) == {"prompt", "aspect_ratio", "resolution", "duration"}


def test_on_airflow_3_0_a_review_fails_at_dag_import_naming_3_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version_compat, "AIRFLOW_VERSION", (3, 0, 6))
    with pytest.raises(RuntimeError, match=r"needs Airflow 3\.1 or newer; this is Airflow 3\.0\.6"):
        LumaReview()


@needs_hitl
def test_a_review_needs_a_take_to_review() -> None:
    with pytest.raises(ValueError, match="wait_for_completion=False"):
        LumaGenerateVideoOperator(task_id="r", prompt="a fox", review=LumaReview(), wait_for_completion=False)


# -- the loop, through the simulator -------------------------------------------------------------------------------


class HitlChannel:
    """Stands in for the worker's supervisor channel: the HITL requests written through it (and, before Airflow
    3.3, the connection lookups and secret masking that go through it too)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.xcoms: dict[tuple[str, str], list[Any]] = {}

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import CreateHITLDetailPayload, GetConnection

        from tests.runtime.test_end_in_trigger import connection_result

        if isinstance(msg, GetConnection):
            return connection_result(msg.conn_id)
        if type(msg).__name__ == "GetXComSequenceSlice":  # the run budget reads every task's reservation
            from airflow.sdk.execution_time.comms import XComSequenceSliceResult

            return XComSequenceSliceResult(root=list(self.xcoms.get((msg.task_id, msg.key), [])))
        if type(msg).__name__ == "GetXCom":  # the run budget reads this task's own estimate before it decides
            from airflow.sdk.execution_time.comms import XComResult

            values = self.xcoms.get((msg.task_id, msg.key), [])
            return XComResult(key=msg.key, value=values[0] if values else None)
        if type(msg).__name__ == "MaskSecret":
            return None
        assert isinstance(msg, CreateHITLDetailPayload)
        self.requests.append(msg)
        return None


@pytest.fixture
def channel(monkeypatch: pytest.MonkeyPatch) -> HitlChannel:
    from airflow.sdk.execution_time import task_runner

    fake = HitlChannel()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", fake, raising=False)
    return fake


@pytest.fixture
def ti_context() -> dict[str, Any]:
    ti = SimpleNamespace(id=uuid.uuid4(), dag_id="d", task_id="render", run_id="manual__1", map_index=-1)
    return {"task_state_store": MemoryStateStore(), "ti": ti}


def reviewed(**review: Any) -> LumaGenerateVideoOperator:
    review.setdefault("assigned_users", [ALICE])
    return LumaGenerateVideoOperator(task_id="render", prompt="a fox", resolution="540p", poll_interval=0.05,
                                     review=LumaReview(**review))  # fmt: skip


def outcome(call: Any) -> BaseException:
    """What ``call`` raised (a task that asks or waits always raises)."""
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the caller asserts what it is
        return exc
    raise AssertionError("the task returned instead of waiting")


def asked(call: Any) -> Any:
    """Run ``call``; it must ask the reviewer (see :func:`is_asking`)."""
    return is_asking(outcome(call))


def is_asking(raised: BaseException) -> Any:
    """``raised`` must ask the reviewer: ``TaskAwaitingInput`` on Airflow 3.3, a deferral to the standard provider's
    ``HITLTrigger`` before. Returns it (its ``method_name`` is where the answer resumes)."""
    if isinstance(raised, TaskDeferred):
        assert type(raised.trigger).__name__ == "HITLTrigger", raised.trigger
    else:
        assert type(raised).__name__ == "TaskAwaitingInput", raised
    return raised


async def until_asked(call: Any, context: dict[str, Any], **review: Any) -> Any:
    """Run ``call`` as Airflow would (running the Luma trigger and resuming when it defers to it) until the
    task asks the reviewer."""
    raised = outcome(call)
    if isinstance(raised, TaskDeferred) and isinstance(raised.trigger, LumaGenerationTrigger):
        payload = [e.payload async for e in raised.trigger.run()][0]
        method = getattr(reviewed(**review), raised.method_name)
        return asked(lambda: method(context, event=payload))
    return is_asking(raised)


@needs_hitl
async def test_rerender_with_a_new_prompt_then_approve_buys_two_takes_and_returns_the_second(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    asked = await until_asked(lambda: reviewed().execute(ti_context), ti_context)
    assert asked.method_name == "execute_review"
    first = channel.requests[0]
    assert first.options == ["Approve", "Re-render", "Reject"] and first.assigned_users[0].id == "alice"
    # Empty: Airflow keeps the first form for every later take, so an empty field means "keep the latest take's".
    assert first.params["prompt"]["value"] is None and "leave empty" in first.params["prompt"]["description"]
    await until_asked(
        lambda: reviewed().execute_review(ti_context, event("Re-render", {"prompt": "a wolf"})), ti_context
    )
    result = reviewed().execute_review(ti_context, event("Approve"))

    sent = posts(luma_conn_env)
    assert len(sent) == 2
    assert "a wolf" in str(sent[1].payload) and "a wolf" not in str(sent[0].payload)
    takes = ReviewStore(ti_context).get().takes
    assert [t.decision for t in takes] == ["re-render", "approved"]
    assert result["generation_id"] == takes[1].result["generation_id"] != takes[0].result["generation_id"]
    assert result["review"] == {"take": 2, "takes": 2, "decision": "approved", "by": "Alice (alice)",
                                "at": AT.isoformat(), "take_estimated_cost_usd": 0.15}  # fmt: skip
    # The task's estimate (what the cost report and the run budget read) is what both takes cost.
    assert result["estimated_cost_usd"] == pytest.approx(0.30)


@needs_hitl
async def test_a_retry_while_the_person_decides_asks_again_without_rendering(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    await until_asked(lambda: reviewed().execute(ti_context), ti_context)
    asked(lambda: reviewed().execute(ti_context))  # a new try (lost worker, retry)
    assert len(posts(luma_conn_env)) == 1 and len(channel.requests) == 2


@needs_hitl
async def test_a_retry_while_the_second_take_renders_reattaches_to_it(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    await until_asked(lambda: reviewed().execute(ti_context), ti_context)
    with pytest.raises(TaskDeferred):
        reviewed().execute_review(ti_context, event("Re-render", {"prompt": "a wolf"}))
    # The worker is lost while take 2 renders; the retry starts in execute().
    await until_asked(lambda: reviewed().execute(ti_context), ti_context)
    assert len(posts(luma_conn_env)) == 2


@needs_hitl
async def test_a_rerender_with_the_same_prompt_buys_a_fresh_take(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    await until_asked(lambda: reviewed().execute(ti_context), ti_context)
    await until_asked(lambda: reviewed().execute_review(ti_context, event("Re-render")), ti_context)
    takes = ReviewStore(ti_context).get().takes
    assert len(posts(luma_conn_env)) == 2 and takes[0].request_id != takes[1].request_id


@needs_hitl
async def test_clearing_an_approved_task_returns_the_approved_take(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    await until_asked(lambda: reviewed().execute(ti_context), ti_context)
    approved = reviewed().execute_review(ti_context, event("Approve"))
    again = reviewed().execute(ti_context)
    assert again == approved and len(posts(luma_conn_env)) == 1 and len(channel.requests) == 1


@pytest.mark.parametrize(("on_reject", "raised"), [("fail", AirflowFailException), ("skip", AirflowSkipException)])
@needs_hitl
async def test_reject_fails_or_skips_as_the_dag_says(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any], on_reject: str,
    raised: type[Exception],
) -> None:  # fmt: skip
    await until_asked(lambda: reviewed(on_reject=on_reject).execute(ti_context), ti_context, on_reject=on_reject)
    with pytest.raises(raised, match="Take 1 rejected by Alice"):
        reviewed(on_reject=on_reject).execute_review(ti_context, event("Reject"))
    assert ReviewStore(ti_context).get().current.decision == "rejected"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("review", "answer", "note"),
    [
        ({}, event("Re-render", {"output_path": "/tmp/x.mp4"}), "may not set: output_path"),
        ({"editable": ("prompt", "resolution")}, event("Re-render", {"resolution": "4k"}), "resolution"),
        ({"max_takes": 1}, event("Re-render", {"prompt": "a wolf"}), "max_takes=1"),
    ],
    ids=["foreign parameter", "broken model rule", "too many takes"],
)
@needs_hitl
async def test_a_refused_rerender_buys_nothing_and_asks_again(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any], review: dict[str, Any],
    answer: dict[str, Any], note: str,
) -> None:  # fmt: skip
    await until_asked(lambda: reviewed(**review).execute(ti_context), ti_context, **review)
    asked(lambda: reviewed(**review).execute_review(ti_context, answer))
    assert len(posts(luma_conn_env)) == 1
    assert note in str(ReviewStore(ti_context).get().current.note)  # type: ignore[union-attr]


@needs_hitl
async def test_a_rerender_over_max_cost_usd_is_refused_before_it_is_bought(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    def op() -> LumaGenerateVideoOperator:
        review = LumaReview(editable=("prompt", "resolution"))
        return LumaGenerateVideoOperator(task_id="render", prompt="a fox", resolution="540p", max_cost_usd=1.0,
                                         poll_interval=0.05, review=review)  # fmt: skip

    with pytest.raises(TaskDeferred) as deferred:
        op().execute(ti_context)
    payload = [e.payload async for e in deferred.value.trigger.run()][0]
    asked(lambda: op().execute_complete(ti_context, event=payload))
    asked(lambda: op().execute_review(ti_context, event("Re-render", {"resolution": "1080p", "prompt": "a fox"})))
    assert len(posts(luma_conn_env)) == 1
    assert "max_cost_usd" in str(ReviewStore(ti_context).get().current.note)  # type: ignore[union-attr]


@needs_hitl
async def test_no_answer_and_no_default_fails_the_task(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    await until_asked(lambda: reviewed().execute(ti_context), ti_context)
    with pytest.raises(AirflowFailException, match="Nobody reviewed take 1 in time"):
        reviewed().execute_review(ti_context, {"error": "timeout passed", "error_type": "timeout"})


def test_a_forged_review_state_can_only_carry_edits_a_reviewer_could_make() -> None:
    from airflow_provider_luma.runtime.review import ReviewState

    edits = {"prompt": "a wolf", "source_video": "/etc/passwd", "luma_conn_id": "other", "resolution": 1080}
    forged = {"version": 1, "takes": [{"number": 1, "edits": edits}]}
    assert ReviewState.from_json(forged).takes[0].edits == {"prompt": "a wolf"}
    assert ReviewState.from_json({"version": 2, "takes": []}) == ReviewState()
    assert ReviewState.from_json({"version": 1, "takes": [{"number": 1, "approved_by": "me"}]}) == ReviewState()


@needs_hitl
async def test_the_run_budget_counts_every_take_of_a_reviewed_task(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    pushed: list[tuple[str, Any]] = []
    ti_context["ti"].xcom_push = lambda key, value: pushed.append((key, value))
    await until_asked(lambda: reviewed().execute(ti_context), ti_context)
    await until_asked(
        lambda: reviewed().execute_review(ti_context, event("Re-render", {"prompt": "a wolf"})), ti_context
    )
    costs = [value for key, value in pushed if key == "estimated_cost_usd"]
    # The task's reservation (what max_run_cost_usd and the cost report read) grows with each take it bought.
    assert costs == [pytest.approx(0.15), pytest.approx(0.30)]
    # A new try while the person decides (Airflow cleared its XComs) writes both takes back before it asks.
    asked(lambda: reviewed().execute(ti_context))
    assert pushed[-1] == ("estimated_cost_usd", pytest.approx(0.30))
    # Approved: the result the task pushes still counts both takes; the approved take's own is under "review".
    result = reviewed().execute_review(ti_context, event("Approve"))
    assert result["estimated_cost_usd"] == pytest.approx(0.30)
    assert result["review"]["take_estimated_cost_usd"] == pytest.approx(0.15)


@pytest.mark.parametrize("forged", [-100.0, float("-inf"), "0.15", None])
def test_a_forged_take_estimate_counts_as_unknown_never_as_a_discount(forged: Any) -> None:
    from airflow_provider_luma.runtime.review import ReviewState, Take, cost_of_earlier_takes

    takes = (Take(1, result={"estimated_cost_usd": forged}), Take(2))
    assert cost_of_earlier_takes(ReviewState(takes)) is None, "unknown: a capped re-render is refused, not cheaper"


@pytest.mark.parametrize(
    ("video_path", "kept"),
    [
        ("file://{folder}/render-gen-1.mp4", True),  # what the task's own output_path gives for the take's ids
        ("/etc/hostname", False),
        ("file://{folder}/../render-gen-1.mp4", False),
        ("file://{folder}/render-gen-2.mp4", False),  # another take's file name
    ],
)
def test_a_review_state_never_makes_the_delivery_record_name_another_file(
    tmp_path: Any, video_path: str, kept: bool
) -> None:
    """The review state is REST-writable: a take's ``video_path`` reaches the delivery record (what the api-server
    opens) only when the task's own ``output_path`` gives exactly it for the take's ids."""
    from types import SimpleNamespace

    from airflow_provider_luma.runtime.review_loop import record_take

    op = LumaGenerateVideoOperator(
        task_id="render", prompt="a fox", output_path=f"{tmp_path}/" + "{task_id}-{generation_id}.mp4"
    )
    context = {"ti": SimpleNamespace(dag_id="d", task_id="render", run_id="r", map_index=-1), "run_id": "r"}
    path = video_path.format(folder=tmp_path)
    record_take(op, context, {"request_id": "req-1", "generation_id": "gen-1", "video_path": path, "mode": "t2v"})
    assert op.luma_delivery is not None and op.luma_delivery["request_id"] == "req-1"
    assert op.luma_delivery["video_path"] == (path if kept else None)


@needs_hitl
async def test_before_airflow_3_3_the_task_waits_in_the_hitl_trigger(
    luma_conn_env: LumaSimulatorServer,
    channel: HitlChannel,
    ti_context: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import timedelta

    from airflow.providers.standard.triggers.hitl import HITLTrigger

    from airflow_provider_luma.runtime import review_loop

    monkeypatch.setattr(review_loop, "AIRFLOW_V_3_3_PLUS", False)
    review = {"response_timeout": timedelta(minutes=5), "default": "Reject"}
    with pytest.raises(TaskDeferred) as deferred:
        reviewed(**review).execute(ti_context)
    payload = [e.payload async for e in deferred.value.trigger.run()][0]
    with pytest.raises(TaskDeferred) as asked:
        reviewed(**review).execute_complete(ti_context, event=payload)
    trigger = asked.value.trigger
    assert isinstance(trigger, HITLTrigger) and asked.value.method_name == "execute_review"
    _, kwargs = trigger.serialize()
    assert kwargs["options"] == ["Approve", "Re-render", "Reject"] and kwargs["defaults"] == ["Reject"]
    assert kwargs["ti_id"] == ti_context["ti"].id and kwargs["timeout_datetime"] is not None


@needs_hitl
def test_the_readme_review_example_builds() -> None:
    import re
    from pathlib import Path

    import pendulum
    from airflow.sdk import DAG

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "review=LumaReview(" in b)
    scope: dict[str, Any] = {}
    with DAG("readme_review", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    review = scope["master"].review
    assert (review.on_reject, review.default, review.assigned_users[0]["id"]) == ("skip", "Reject", "producer")


@needs_hitl
async def test_the_delivery_record_names_the_take_after_every_resumption(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    """Each resumption is a fresh operator whose rendered fields Airflow re-sends: the gallery and the review tab
    play what its delivery record names, so it must name the take (not be empty) after an answer or a clear."""
    await until_asked(lambda: reviewed().execute(ti_context), ti_context)
    take = ReviewStore(ti_context).get().takes[0].result
    assert take is not None
    retry = reviewed()
    asked(lambda: retry.execute(ti_context))  # a retry while the person decides
    approving = reviewed()
    approving.execute_review(ti_context, event("Approve"))
    cleared = reviewed()
    cleared.execute(ti_context)  # a clear of the approved task
    for op in (retry, approving, cleared):
        assert op.luma_delivery is not None
        assert (op.luma_delivery["request_id"], op.luma_delivery["generation_id"]) == (
            take["request_id"], take["generation_id"],
        )  # fmt: skip


@needs_hitl
async def test_notifiers_are_called_each_time_a_take_awaits_review(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    from airflow.sdk.bases.notifier import BaseNotifier

    class Recorder(BaseNotifier):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[Any] = []

        def notify(self, context: Any) -> None:
            self.calls.append(context)

    notifier = Recorder()
    await until_asked(lambda: reviewed(notifiers=[notifier]).execute(ti_context), ti_context, notifiers=[notifier])
    wolf = event("Re-render", {"prompt": "a wolf"})
    await until_asked(lambda: reviewed(notifiers=[notifier]).execute_review(ti_context, wolf), ti_context,
                      notifiers=[notifier])  # fmt: skip
    assert len(notifier.calls) == 2 and all(c["ti"] is ti_context["ti"] for c in notifier.calls)


@needs_hitl
async def test_a_later_rerender_keeps_what_earlier_ones_changed(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any]
) -> None:
    review = {"editable": ("prompt", "resolution")}
    await until_asked(lambda: reviewed(**review).execute(ti_context), ti_context, **review)
    wolf = event("Re-render", {"prompt": "a wolf", "resolution": None})
    await until_asked(lambda: reviewed(**review).execute_review(ti_context, wolf), ti_context, **review)
    sharper = event("Re-render", {"prompt": "", "resolution": "720p"})  # the prompt field left empty
    await until_asked(lambda: reviewed(**review).execute_review(ti_context, sharper), ti_context, **review)
    sent = [e.payload["payload"] for e in posts(luma_conn_env)]
    assert [(p["prompt"], p.get("resolution")) for p in sent] == [("a fox", "540p"), ("a wolf", "540p"),
                                                                  ("a wolf", "720p")]  # fmt: skip


def test_before_airflow_3_3_the_review_state_has_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_luma.runtime import review_loop
    from airflow_provider_luma.version_compat import VariableStateStore, variable_key

    monkeypatch.setattr(review_loop, "AIRFLOW_V_3_3_PLUS", False)
    ti = SimpleNamespace(dag_id="d", task_id="render", run_id="manual__1", map_index=2)
    store = ReviewStore({"ti": ti})._store
    assert isinstance(store, VariableStateStore)
    assert store.key == variable_key("d", "render", "manual__1", 2, prefix="luma_review.")
    assert store.key.startswith("luma_review.") and store.key != VariableStateStore(ti).key  # not the render's


@needs_hitl
@pytest.mark.parametrize(("cap", "bought"), [("0.50", 1), ("0.60", 2)])
async def test_a_rerender_over_the_run_budget_is_refused_before_it_is_bought(
    luma_conn_env: LumaSimulatorServer, channel: HitlChannel, ti_context: dict[str, Any], cap: str, bought: int
) -> None:
    """Another task of the run holds $0.30; take 1 ($0.15) fits a $0.50 cap, a second take would make $0.60."""
    import pendulum
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("budget", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        EmptyOperator(task_id="other")
    channel.xcoms[("other", "estimated_cost_usd")] = [0.30]

    def push(key: str, value: Any) -> None:
        channel.xcoms[("render", key)] = [value]

    ti_context.update(dag=dag)
    ti_context["ti"].xcom_push = push

    def op() -> LumaGenerateVideoOperator:
        return LumaGenerateVideoOperator(task_id="render", prompt="a fox", resolution="540p", poll_interval=0.05,
                                         max_run_cost_usd=cap, review=LumaReview())  # fmt: skip

    with pytest.raises(TaskDeferred) as deferred:
        op().execute(ti_context)
    payload = [e.payload async for e in deferred.value.trigger.run()][0]
    asked(lambda: op().execute_complete(ti_context, event=payload))
    raised = outcome(lambda: op().execute_review(ti_context, event("Re-render", {"prompt": "a wolf"})))
    assert len(posts(luma_conn_env)) == bought
    note = ReviewStore(ti_context).get().current.note  # type: ignore[union-attr]
    if bought == 1:
        is_asking(raised)
        assert "max_run_cost_usd=$0.50" in str(note) and "would make $0.60" in str(note)
    else:
        assert isinstance(raised, TaskDeferred) and note is None  # bought: waiting for take 2
        assert channel.xcoms[("render", "estimated_cost_usd")] == [pytest.approx(0.30)]
