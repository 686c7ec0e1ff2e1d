"""The run pre-flight: what the literal values of a DAG's Luma tasks decide before the first render is bought.

Two moments (issue 20: no run spends money and then fails for a reason knowable before its first render):

* **DAG import** (:func:`source_facts_of`, :func:`check_run_cap_at_parse`, called from the operators'
  constructors): a reframe to the ratio its upstream task's literals already give, and literal renders whose
  summed estimate (built-in GMI table) alone exceeds a literal ``max_run_cost_usd``.
* **Run start** (:func:`run_problems`, called by every Luma task right before its create request): every Luma
  task of the DAG that a cap covers is priced with the connection's table, its source facts followed through the
  chain of upstream Luma tasks' literals. The checks are cheap (no HTTP, no XCom) and deterministic, so whichever
  task starts first refuses a run that cannot finish, with one message listing every problem.

Mapped tasks (``.partial().expand()``) are skipped by both: their operators only exist at run time, each element
checks its own estimate before its create request. Templated values are skipped too: their own task checks them
after templating, before its request.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, ClassVar, Final, Protocol, TypeGuard

from airflow_provider_luma.core.errors import LumaBudgetExceeded, LumaValidationError
from airflow_provider_luma.core.pricing import PriceTable, check_budget, estimate, parse_max_cost
from airflow_provider_luma.core.specs import SPECS
from airflow_provider_luma.core.specs.base import RenderSpec, SourceFacts


class LumaRenderOperator(Protocol):
    """What the pre-flight reads of a render task (any ``LumaRenderOperator``). A protocol, not the class: the
    operator module imports this one, and the import graph stays free of cycles (``tests/test_layout.py``)."""

    MODEL_ID: ClassVar[str]
    task_id: str
    max_cost_usd: Any
    max_run_cost_usd: Any

    def spec_params(self) -> dict[str, Any]:
        """The (rendered) payload parameters."""


_MAX_CHAIN: Final = 32  # a chain of renders longer than this is not followed (a cycle cannot exist in a DAG)
_SOURCE_FIELDS: Final = ("source_generation_id", "start_frame_generation_id", "end_frame_generation_id")


class _ByIdentity:
    """Values kept per object *identity* while the object lives: operators and DAGs compare and hash by their
    attributes (two tasks with equal parameters in different DAGs are ``==``; a DAG's hash changes as tasks are
    added), so neither a dict nor a ``WeakKeyDictionary`` keyed by them is safe."""

    def __init__(self) -> None:
        self._values: dict[int, Any] = {}

    def get(self, obj: object, default: Any = None) -> Any:
        return self._values.get(id(obj), default)

    def set(self, obj: object, value: Any) -> None:
        if id(obj) not in self._values:
            weakref.finalize(obj, self._values.pop, id(obj), None)  # forget it when the object is collected
        self._values[id(obj)] = value


# Output facts per operator, stamped with its parameters (an operator changed after construction is computed
# again): a chain of n extends would otherwise be followed n times over while the DAG file is parsed.
_FACTS = _ByIdentity()
# Per DAG, the literal renders under a run cap seen by the constructors so far: task_id -> (estimate, cap).
_PARSED = _ByIdentity()


def _memo_facts(op: Any, compute: Callable[[], SourceFacts]) -> SourceFacts:
    try:
        stamp = repr(op.spec_params())
    except LumaValidationError:
        return compute()
    cached = _FACTS.get(op)
    if cached is not None and cached[0] == stamp:
        return cached[1]  # type: ignore[no-any-return]
    value = compute()
    _FACTS.set(op, (stamp, value))
    return value


def _is_luma(task: Any) -> TypeGuard[LumaRenderOperator]:
    """Whether ``task`` buys a render: a model id and payload parameters (render operators have both; the
    download operator, sensors and other providers' tasks do not)."""
    return isinstance(getattr(type(task), "MODEL_ID", None), str) and callable(getattr(task, "spec_params", None))


def upstream_operator(value: Any) -> LumaRenderOperator | None:
    """The Luma operator whose ``generation_id`` XCom ``value`` is (``upstream.output["generation_id"]``), or None."""
    operator = getattr(value, "operator", None)
    if getattr(value, "key", None) != "generation_id" or not _is_luma(operator):
        return None
    return operator


def source_facts_of(params: dict[str, Any], depth: int = 0) -> SourceFacts:
    """What the literals of the upstream Luma task a render is made from say about its output (else unknown)."""
    for name in _SOURCE_FIELDS:
        upstream = upstream_operator(params.get(name))
        if upstream is not None:
            return output_facts_of(upstream, depth + 1)
    return SourceFacts()


def literal_spec(op: LumaRenderOperator, depth: int = 0) -> tuple[RenderSpec, SourceFacts] | None:
    """The request ``op``'s literal values make and its known source facts; None when a value that decides the
    request (or its price) is templated, or when the literals break a rule (the constructor reports that)."""
    from airflow_provider_luma.operators._literals import literal_params

    if depth > _MAX_CHAIN:
        return None
    try:
        params = op.spec_params()
    except LumaValidationError:
        return None
    given = literal_params(params)  # a source_video's duration is only known once the file is read
    if given is None:
        return None
    try:
        spec = SPECS[op.MODEL_ID].validate_params(given)
    except LumaValidationError:
        return None
    return spec, spec.known_source(source_facts_of(params, depth))


def output_facts_of(op: LumaRenderOperator, depth: int = 0) -> SourceFacts:
    """Ratio and duration of the clip ``op`` renders, as far as its literals (and its sources') tell."""
    return _memo_facts(op, lambda: _output_facts(op, depth))


def _output_facts(op: LumaRenderOperator, depth: int) -> SourceFacts:
    # The spec's own output facts, the same the task pushes to XCom when it runs (and the run-time checks read):
    # a generate's literal ratio or the model's default 16:9 (an extend too: the model page gives every request
    # that default and says nothing of keeping the source's ratio; the simulator agrees), an extend's one 5-s
    # block, an edit's source ratio and duration, a reframe's new ratio and its source's duration.
    found = literal_spec(op, depth)
    if found is None:
        return SourceFacts()
    spec, source = found
    return spec.output_facts(source)


def _literal_cap(value: Any, field: str) -> Decimal | None:
    from airflow_provider_luma.operators._literals import is_templated

    if is_templated(value):
        return None  # known after templating: that task checks it itself
    try:
        return parse_max_cost(value, field)
    except LumaValidationError:
        return None  # the task reports a bad cap itself, before its request


def _over_cap(priced: list[tuple[str, Decimal, Decimal]]) -> str | None:
    """Renders that each carry a run cap and together cost more than the largest of those caps: whichever of them
    submits last sees all the others' reservations, so at least one is refused, whatever the order."""
    if not priced:
        return None
    total = sum((cost for _, cost, _ in priced), Decimal(0))
    cap = max(cap for _, _, cap in priced)
    if total <= cap:
        return None
    parts = ", ".join(f"{task_id} ${cost:.2f}" for task_id, cost, _ in priced)
    return (
        f"max_run_cost_usd=${cap:.2f}: the renders of the {len(priced)} task(s) it covers are estimated at "
        f"${total:.2f} together ({parts}), so at least one of them would be refused after the others were bought; "
        "raise max_run_cost_usd or render less"
    )


def _literal_cost(op: LumaRenderOperator, table: PriceTable) -> Decimal | None:
    found = literal_spec(op)
    return None if found is None else estimate(found[0], table, found[1]).cost


def run_problems(
    current: LumaRenderOperator, spec: RenderSpec, source: SourceFacts, dag: Any, table: PriceTable
) -> list[str]:
    """At run start: every problem the DAG's literals (and this task's rendered values) make certain, one line
    each naming the task and the field. Sends nothing and reads no XCom.

    :param current: the task about to submit; its rendered ``spec`` and ``source`` stand for its literals.
    :param dag: the run's DAG (``context["dag"]``).
    :param table: the connection's price table.
    """
    tasks: list[Any] = list(getattr(dag, "task_dict", {}).values()) if dag is not None else []
    if not any(t.task_id == current.task_id for t in tasks):
        tasks.append(current)
    problems: list[str] = []
    others = False  # whether a problem is another task's (this task's own alone are reported by its own check)
    priced: list[tuple[str, Decimal, Decimal]] = []
    for task in _luma_tasks(tasks):
        mine = task.task_id == current.task_id
        owner = current if mine else task
        run_cap = _literal_cap(owner.max_run_cost_usd, "max_run_cost_usd")
        own_cap = _literal_cap(owner.max_cost_usd, "max_cost_usd")
        if run_cap is None and own_cap is None:
            continue
        found = (spec, source) if mine else literal_spec(task)
        if found is None:
            continue  # templated: checked by that task after templating, before its request
        est = estimate(found[0], table, found[1])
        if not mine and est.per_block is not None and est.blocks is None and not _length_unknowable(task):
            continue  # its source's length is known once that source ran (a file, a templated value): checked then
        for field, cap in (("max_cost_usd", own_cap), ("max_run_cost_usd", run_cap)):
            try:
                check_budget(found[0], est, cap, field)
            except LumaBudgetExceeded as exc:
                problems.append(f"task {task.task_id!r}, {field}: {exc}".replace(" Nothing was submitted.", ""))
                others = others or not mine
        if run_cap is not None and est.cost is not None:
            priced.append((task.task_id, est.cost, run_cap))
    over = _over_cap(priced)
    if over is not None:
        problems.append(f"tasks {', '.join(repr(t) for t, _, _ in priced)}, {over}")
        others = others or any(task_id != current.task_id for task_id, _, _ in priced)
    # Only this task's own cap refuses it: its own check, right after, says so in its usual words.
    return problems if others else []


def _length_unknowable(op: LumaRenderOperator, depth: int = 0) -> bool:
    """Whether an edit/reframe's source length stays unknown when it runs too: its chain of upstream Luma tasks
    ends in a literal generation id of another run (the service says no length). A file, a templated value or a
    generate at the chain's end has a length by then, so such a render is priced by its own task."""
    from airflow_provider_luma.core.specs.base import is_unset
    from airflow_provider_luma.operators._literals import is_templated

    if depth > _MAX_CHAIN or getattr(op, "source_video", None) is not None:
        return False
    value = getattr(op, "source_generation_id", None)
    upstream = upstream_operator(value)
    if upstream is not None:
        # A generate-model render (extend, interpolation…) always reports its length; an edit/reframe its source's.
        return hasattr(upstream, "source_generation_id") and _length_unknowable(upstream, depth + 1)
    return isinstance(value, str) and not is_templated(value) and not is_unset(value)


def _luma_tasks(tasks: Iterable[Any]) -> list[LumaRenderOperator]:
    return sorted((t for t in tasks if _is_luma(t)), key=lambda t: str(t.task_id))
