"""The gallery's data model: a run's task-instance rows and XCom values turned into clips and chain edges.

Pure (no Airflow import): :mod:`airflow_provider_luma.plugins._db` fetches the rows, this module shapes them, so
the rules below are unit-tested without a database.

**Which tasks are Luma renders.** A task instance is a render when its operator class (``operator`` or
``custom_operator_name`` of the task instance) is one of :func:`luma_operators` (those the model registry names),
or when it pushed a ``model`` XCom naming a Luma model (``luma-…``): subclasses with their own names show up once
their result is pushed. How a clip relates to its sources comes from the registry too (:func:`edge_kind`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from airflow_provider_luma.plugins import clip_key

OTHER_OPERATORS: Final = frozenset({"LumaDownloadVideoOperator"})
"""Operator classes that count as Luma tasks besides those the model registry names (see :func:`luma_operators`)."""


def luma_operators() -> frozenset[str]:
    """Operator class names that always count as renders: every registered model's, and :data:`OTHER_OPERATORS`."""
    from airflow_provider_luma.core.specs import models  # the gallery's process imports the specs on first use

    return OTHER_OPERATORS.union(*(m.operators for m in models()))


def edge_kind(mode: object, operator: object) -> str:
    """How a clip relates to its sources (the label of a chain edge): by its mode as its model registers it, or,
    while its result (and so its mode) is not known, by its operator class; ``"made from"`` when neither says."""
    from airflow_provider_luma.core.specs import models

    infos = models()
    by_mode = next((m.modes[str(mode)] for m in infos if m.modes.get(str(mode))), None)
    return by_mode or next((m.operators[str(operator)] for m in infos if m.operators.get(str(operator))), "made from")


XCOM_KEYS: Final = ("return_value", "model", "estimated_cost_usd")
"""The XCom keys the gallery reads: the full result, the detection key and the cost pushed at submit time."""

DELIVERY_FIELD: Final = "luma_delivery"
"""The rendered template field the worker records what it bought and stored in (see
:mod:`airflow_provider_luma.runtime.delivery_record`)."""

PROMPT_FIELDS: Final = ("prompt",)
"""Rendered template fields shown as the clip's prompt."""

RESULT_FIELDS: Final = (
    "generation_id",
    "request_id",
    "model",
    "mode",
    "resolution",
    "duration",
    "aspect_ratio",
    "hdr",
    "estimated_cost_usd",
    "billed_blocks",
    "video_bytes",
)

_STATUS: Final = {
    None: "queued",
    "none": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "up_for_reschedule": "queued",
    "running": "rendering",
    "deferred": "rendering",
    "awaiting_input": "in review",
    "restarting": "rendering",
    "up_for_retry": "retrying",
    "success": "done",
    "failed": "failed",
    "upstream_failed": "failed",
    "skipped": "skipped",
    "removed": "skipped",
}
IN_FLIGHT: Final = frozenset({"queued", "rendering", "retrying", "finishing"})

FINISHING_SECONDS: Final = 60.0
"""How long after its end a successful task without its delivery record yet is shown as ``finishing``.

Airflow's task runner reports success first and re-sends the rendered fields (the record) a moment later, and a
task resumed from its deferral starts with the record unset: in between, the clip is not done for the page
(which stops refreshing once nothing is in flight). A record that never lands (its send failed, which the task
logs) stops counting as in flight after this long."""


@dataclass
class TaskRow:
    """One task instance of the run, with its rendered template fields."""

    task_id: str
    map_index: int
    state: str | None
    operator: str | None
    custom_operator_name: str | None = None
    try_number: int = 0
    start_date: datetime | None = None
    end_date: datetime | None = None
    rendered_fields: Mapping[str, Any] | None = None
    reason: str | None = None


@dataclass
class RunData:
    """Everything the gallery page shows for one run."""

    dag_id: str
    run_id: str
    state: str | None
    clips: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON body of ``GET /luma/api/runs/{dag_id}/{run_id}``."""
        costs = [c["estimated_cost_usd"] for c in self.clips if c.get("estimated_cost_usd") is not None]
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": self.state,
            "clips": self.clips,
            "edges": self.edges,
            "total_estimated_cost_usd": round(sum(costs), 4) if costs else None,
            # Bought without a price (edit/reframe without connection prices); a task refused before buying,
            # or not started, bought nothing and is not counted.
            "unpriced_renders": sum(1 for c in self.clips if c["bought"] and c.get("estimated_cost_usd") is None),
            "in_flight": any(c["status"] in IN_FLIGHT for c in self.clips),
        }


def is_luma_task(row: TaskRow, xcoms: Mapping[str, Any]) -> bool:
    """Whether a task instance is a Luma render (see the module docstring)."""
    operators = luma_operators()
    if row.operator in operators or row.custom_operator_name in operators:
        return True
    model = xcoms.get("model")
    if model is None and isinstance(xcoms.get("return_value"), dict):
        model = xcoms["return_value"].get("model")
    return isinstance(model, str) and model.startswith("luma-")


def video_route(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The plugin-relative path that streams (or redirects to) a clip's video."""
    parts = (quote(p, safe="") for p in (dag_id, run_id, task_id))
    return "video/" + "/".join(parts) + f"/{map_index}"


def _prompt(fields: Mapping[str, Any] | None) -> str | None:
    for name in PROMPT_FIELDS:
        value = (fields or {}).get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _elapsed(row: TaskRow, now: datetime) -> float | None:
    if row.start_date is None:
        return None
    end = row.end_date if row.end_date is not None and row.state not in ("running", "deferred") else now
    return round(max(0.0, (end - row.start_date).total_seconds()), 1)


def _record_on_its_way(row: TaskRow, now: datetime) -> bool:
    """Whether a successful task's delivery record is still to land (see :data:`FINISHING_SECONDS`): the task has
    the field (a release before it has none), it is unset, and the task ended moments ago."""
    fields = row.rendered_fields or {}
    if DELIVERY_FIELD not in fields or isinstance(fields[DELIVERY_FIELD], Mapping):
        return False
    ended = row.end_date or row.start_date  # a success always has an end date; else its start bounds the wait
    return ended is not None and (now - ended).total_seconds() < FINISHING_SECONDS


def build_clip(dag_id: str, run_id: str, row: TaskRow, xcoms: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """One clip of the page from its task instance and its XComs (``{key: value}``)."""
    value = xcoms.get("return_value")
    result: Mapping[str, Any] = value if isinstance(value, dict) else {}
    status = _STATUS.get(row.state, "queued")
    if status == "done" and _record_on_its_way(row, now):
        status = "finishing"
    clip: dict[str, Any] = {name: result.get(name) for name in RESULT_FIELDS}
    if clip["model"] is None:
        clip["model"] = xcoms.get("model")
    if clip["estimated_cost_usd"] is None:
        clip["estimated_cost_usd"] = xcoms.get("estimated_cost_usd")
    # The cost XCom is pushed when a render is bought (with None when it has no price); a result implies one too.
    bought = "estimated_cost_usd" in xcoms or "estimated_cost_usd" in result
    sources = result.get("source_generation_ids")
    # Whether the clip gets a player comes from the worker-written delivery record, as does what the video route
    # opens; the XCom result (REST-writable) is only displayed.
    record = (row.rendered_fields or {}).get(DELIVERY_FIELD)
    delivery: Mapping[str, Any] = record if isinstance(record, Mapping) else {}
    stored = bool(delivery.get("video_path"))
    reviewing = row.state in ("awaiting_input", "deferred") and bool(delivery.get("generation_id"))
    has_video = stored or ((status == "done" or reviewing) and bool(delivery.get("request_id")))
    clip.update(
        key=clip_key(row.task_id, row.map_index),
        task_id=row.task_id,
        map_index=row.map_index,
        operator=row.custom_operator_name or row.operator,
        state=row.state,
        status=status,
        try_number=row.try_number,
        started_at=row.start_date.isoformat() if row.start_date else None,
        elapsed_seconds=_elapsed(row, now),
        prompt=_prompt(row.rendered_fields),
        source_generation_ids=[str(s) for s in sources] if isinstance(sources, list) else [],
        stored=stored,
        bought=bought,
        video=video_route(dag_id, run_id, row.task_id, row.map_index) if has_video else None,
        reason=row.reason if status in ("failed", "retrying") else None,
    )
    if not clip["source_generation_ids"]:
        clip["pending_sources"] = _candidate_sources(row.rendered_fields)
    return clip


def _candidate_sources(fields: Mapping[str, Any] | None) -> list[str]:
    """String values of the rendered fields: a clip not finished yet names its sources only there."""
    return [v for v in (fields or {}).values() if isinstance(v, str) and 0 < len(v) <= 128 and " " not in v]


def link_chain(clips: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Edges ``{from, to, kind}`` between clips: a clip points at the clips it was made from."""
    by_generation = {c["generation_id"]: c["key"] for c in clips if c.get("generation_id")}
    edges: list[dict[str, str]] = []
    for clip in clips:
        sources = clip["source_generation_ids"] or clip.pop("pending_sources", [])
        clip.pop("pending_sources", None)
        kind = edge_kind(clip.get("mode"), clip.get("operator"))
        clip["sources"] = [by_generation[g] for g in sources if g in by_generation and by_generation[g] != clip["key"]]
        edges += [{"from": src, "to": clip["key"], "kind": kind} for src in clip["sources"]]
    return edges


def chain_order(clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``clips`` (given in start order) reordered so that a clip comes after the clips it was made from
    (``sources``, set by :func:`link_chain`); otherwise the start order is kept. A cycle, which a real chain
    cannot have, falls back to the start order for the clips in it."""
    index = {c["key"]: i for i, c in enumerate(clips)}
    waiting = {i: {index[s] for s in c.get("sources", []) if s in index and index[s] != i} for i, c in enumerate(clips)}
    children: dict[int, list[int]] = {}
    for i, parents in waiting.items():
        for p in parents:
            children.setdefault(p, []).append(i)
    ready = [i for i, parents in waiting.items() if not parents]
    heapq.heapify(ready)
    done: list[int] = []
    placed: set[int] = set()
    while len(done) < len(clips):
        if not ready:  # a cycle: release the earliest-started clip left
            heapq.heappush(ready, min(i for i in range(len(clips)) if i not in placed))
        i = heapq.heappop(ready)
        if i in placed:
            continue
        placed.add(i)
        done.append(i)
        for child in children.get(i, []):
            waiting[child].discard(i)
            if not waiting[child] and child not in placed:
                heapq.heappush(ready, child)
    return [clips[i] for i in done]


def assemble(
    dag_id: str,
    run_id: str,
    run_state: str | None,
    rows: Iterable[TaskRow],
    xcoms: Mapping[tuple[str, int], Mapping[str, Any]],
    now: datetime,
) -> RunData:
    """The run's clips (Luma task instances only) and the chain between them. Clips come in the chain's order
    (after the clips they were made from), otherwise in the order they started; not started ones last."""
    data = RunData(dag_id, run_id, run_state)
    ordered = sorted(rows, key=lambda r: (r.start_date is None, r.start_date or now, r.task_id, r.map_index))
    for row in ordered:
        values = xcoms.get((row.task_id, row.map_index), {})
        if is_luma_task(row, values):
            data.clips.append(build_clip(dag_id, run_id, row, values, now))
    data.edges = link_chain(data.clips)
    data.clips = chain_order(data.clips)
    return data
