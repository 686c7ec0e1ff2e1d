"""What a valid submit will produce: its references to earlier generations, output facts and render time.

The rules here need the simulator's generations, so they are not in :mod:`._rules`: a reference must name a
completed generation (else the request fails asynchronously, as the real queue does); a model made from a source
video keeps its duration, and its ratio or a new one, as its rule table says (an edit keeps the source's ratio, a
reframe must change the ratio of a known source).
Pure functions of the job lookup they are given; the caller holds the simulator's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from airflow_provider_luma.testing._rules import REFERENCE_FIELDS, RULES, is_extend
from airflow_provider_luma.testing._types import BASE_RENDER_SECONDS, Job, SimulatorConfig

INLINE_SOURCE_DURATION: Final = "5s"
"""What an inline ``source_data`` video counts as (the simulator does not parse MP4 durations)."""

JobLookup = Callable[[str], Job | None]
"""The job that produced a generation id (in any status), or ``None`` for an id the simulator never issued."""


@dataclass(frozen=True)
class Plan:
    """The outcome of a valid payload, decided at submit time.

    :param references: reference field → generation id, for every reference the payload sets.
    :param chained_from_request_ids: the request ids behind the references that name completed generations.
    :param failures: references that do not name a completed generation; the request will fail with these.
    :param rejection: a reason to answer the submit with 400 (reframe to the source's own ratio), or ``None``.
    :param aspect_ratio: the output's ratio (``None`` when unknown); ``duration``: its length (same).
    """

    references: dict[str, str]
    chained_from_request_ids: tuple[str, ...]
    failures: tuple[str, ...]
    rejection: str | None
    aspect_ratio: str | None
    duration: str | None
    exr_export: bool


def plan(
    model: str, values: Mapping[str, Any], lookup: JobLookup, now: float, names: Mapping[str, str] | None = None
) -> Plan:
    """Resolve ``values`` (a settled, valid payload of ``model``) against the simulator's generations.

    :param names: how the submitting front names the reference fields in failure reasons (default: as GMI does).
    """
    references = {name: str(values[name]) for name in REFERENCE_FIELDS if values.get(name)}
    chained: list[str] = []
    failures: list[str] = []
    for name, generation_id in references.items():
        job = lookup(generation_id)
        if job is None or job.status_at(now) != "success":
            label = names.get(name, name) if names else name
            failures.append(f"{label} {generation_id!r} does not name a completed generation")
        else:
            chained.append(job.request_id)
    rejection: str | None = None
    rules = RULES[model]
    if not rules.from_source:
        # An extend always returns one 5-s block; the ratio is what the payload asks for (or the default).
        ratio, duration = values["aspect_ratio"], "5s" if is_extend(values) else values["duration"]
    else:
        source_id = references.get("source_generation_id")
        source = lookup(source_id) if source_id else None
        if source_id is None:
            source_ratio, duration = None, INLINE_SOURCE_DURATION
        else:
            # A known source's facts were fixed when it was submitted; an unknown one's are unknown.
            source_ratio, duration = (source.aspect_ratio, source.duration) if source else (None, None)
        ratio = source_ratio if rules.ratio == "source" else values["aspect_ratio"]
        if rules.ratio == "new" and source_ratio is not None and source_ratio == ratio:
            rejection = (
                f"aspect_ratio: {ratio!r} is already the aspect ratio of source generation {source_id!r}; "
                "reframe to a different one"
            )
    return Plan(
        references=references,
        chained_from_request_ids=tuple(chained),
        failures=tuple(failures),
        rejection=rejection,
        aspect_ratio=ratio,
        duration=duration,
        exr_export=bool(values.get("exr_export")),
    )


def render_seconds(values: Mapping[str, Any], duration: str | None, config: SimulatorConfig) -> float:
    """Submit-to-terminal time of a render at ``values["resolution"]`` lasting ``duration`` (5 s if unknown)."""
    if config.render_seconds is not None:
        return config.render_seconds
    seconds = BASE_RENDER_SECONDS[values["resolution"]] * (2 if duration == "10s" else 1)
    seconds *= 3.0 if values.get("exr_export") else 2.5 if values.get("hdr") else 1.0
    return seconds * config.time_factor
