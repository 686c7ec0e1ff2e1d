"""The simulator's own payload rules for the Ray 3.2 family, written as tables from GMI's model pages.

Deliberately independent of the provider's specs (:mod:`airflow_provider_luma.core.specs`): if the provider and
the simulator shared one rule, a wrong rule would pass on both sides and no test would notice. Each model has a
table of fields (name → checker), the fields it requires, its defaults, and a table of cross-field rules
(predicate, problem). Every problem names its field(s); the simulator answers 400 with the problems joined by ``"; "``.
The generate and edit constraints are name templates shared with the native API's tables (:mod:`._native_rules`).

Pure: no state, no sockets. Rules that need the simulator's generations (chain and source references, the
reframe ratio) are applied by :mod:`._sources`, as each table's ``from_source`` and ``ratio`` say. The other
simulator modules read the list of models from these tables (:data:`RULES`), never from the provider's registry:
the simulator serves exactly the models it has rules for.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from airflow_provider_luma.testing._types import EDIT_MODEL_ID, GENERATE_MODEL_ID, REFRAME_MODEL_ID

VIDEO_ASPECT_RATIOS: Final = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
IMAGE_ONLY_ASPECT_RATIOS: Final = ("3:1", "2:1", "1:2", "1:3")
RESOLUTIONS: Final = ("540p", "720p", "1080p")
DURATIONS: Final = ("5s", "10s")
EDIT_STRENGTHS: Final = tuple(f"{kind}_{level}" for kind in ("adhere", "flex", "reimagine") for level in (1, 2, 3))
PROMPT_LIMIT: Final = 6000

REFERENCE_FIELDS: Final = ("start_frame_generation_id", "end_frame_generation_id", "source_generation_id")
"""Fields that name an earlier generation of this simulator."""

# GMI documents "" as the default of these, i.e. "not set"; null means "not set" for every field.
_EMPTY_MEANS_UNSET: Final = frozenset({*REFERENCE_FIELDS, "start_frame_url", "end_frame_url"})

# Frames are JPEG/PNG/WebP. Only extensions that clearly name something else are refused: image CDNs often serve
# frames from URLs without any extension.
_NOT_A_FRAME: Final = frozenset(
    "gif bmp tif tiff svg heic heif avif ico psd raw exr mp4 mov m4v webm mkv avi wmv flv mpg mpeg 3gp "
    "mp3 wav ogg pdf txt html htm json zip".split()
)

Checker = Callable[[Any], str | None]
"""Checks one value; returns what is wrong with it (without the field name) or ``None``."""

Values = Mapping[str, Any]
"""A payload with unset fields dropped and the model's defaults filled in."""


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return names.get(type(value), "an object")


def _string(check: Callable[[str], str | None]) -> Checker:
    """A checker that first insists on a JSON string, then strips it and runs ``check``."""

    def checker(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be a string, got {_json_type(value)}"
        return check(value.strip())

    return checker


def _one_of(choices: tuple[str, ...], refused: tuple[str, ...] = (), why: str = "") -> Checker:
    def check(text: str) -> str | None:
        if text in refused:
            return f"got {text!r}, which is {why}; must be one of {', '.join(choices)}"
        return None if text in choices else f"got {text!r}; must be one of {', '.join(choices)}"

    return _string(check)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {_json_type(value)}"


def _prompt(text: str) -> str | None:
    if not text:
        return f"must not be blank (1-{PROMPT_LIMIT} characters)"
    if len(text) > PROMPT_LIMIT:
        return f"is {len(text)} characters; the limit is 1-{PROMPT_LIMIT} characters"
    return None


def _generation_id(text: str) -> str | None:
    if text in ("None", "null"):
        return f"is the string {text!r}: the upstream value it was templated from is probably missing"
    return None


def _frame_url(text: str) -> str | None:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{text!r} is not an http(s) URL of a JPEG, PNG or WebP image"
    ext = posixpath.splitext(parts.path)[1].lower().lstrip(".")
    return f"{text!r} names a .{ext} file, not a JPEG, PNG or WebP image" if ext in _NOT_A_FRAME else None


def _mp4_base64(text: str) -> str | None:
    try:
        # Line breaks are allowed (MIME-style base64); any other non-alphabet character is not.
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    if data[4:8] != b"ftyp":
        return "does not decode to an MP4 video (no 'ftyp' box at byte offset 4)"
    return None


def _video_media_type(text: str) -> str | None:
    kind, _, subtype = text.partition("/")
    return None if kind == "video" and subtype else f"got {text!r}; must be a video media type such as video/mp4"


def _non_empty(text: str) -> str | None:
    return None if text else "must not be empty"


_ASPECT_RATIO: Final = _one_of(VIDEO_ASPECT_RATIOS, IMAGE_ONLY_ASPECT_RATIOS, "image-only")

_SOURCE_FIELDS: Final[Mapping[str, Checker]] = {
    "source_generation_id": _string(_generation_id),
    "source_data": _string(_mp4_base64),
    "source_media_type": _string(_video_media_type),
}


def _has(v: Values, *names: str) -> bool:
    return all(v.get(name) for name in names)


def is_extend(v: Values) -> bool:
    """True when a generate payload has exactly one keyframe and it is a generation id (an extend)."""
    start, end = v.get("start_frame_generation_id"), v.get("end_frame_generation_id")
    # The native API also takes inline frames (``*_frame_data``); any frame besides the generation id makes it
    # an interpolation instead.
    others = ("start_frame_url", "end_frame_url", "start_frame_data", "end_frame_data")
    return bool(start) != bool(end) and not any(v.get(name) for name in others)


def has_start_frame(v: Values) -> bool:
    """True when a generate payload has a start frame, given any way."""
    return any(v.get(f"start_frame_{kind}") for kind in ("url", "generation_id", "data"))


def has_end_frame(v: Values) -> bool:
    """True when a generate payload has an end frame, given any way."""
    return any(v.get(f"end_frame_{kind}") for kind in ("url", "generation_id", "data"))


Rule = tuple[Callable[[Values], bool], str]
"""A cross-field rule: when the predicate holds for the settled values, the message is a problem.

Messages are templates: ``{hdr}`` stands for the field's name on the front that reports it (``hdr`` on GMI,
``video.hdr`` on the native API), so both fronts share one table of constraints and each names its own fields.
"""


class FieldNames(dict[str, str]):
    """Template names → a front's field names; a name it does not list is its own field name."""

    def __missing__(self, key: str) -> str:
        return key


GMI_NAMES: Final = FieldNames(
    start_frame="start_frame_url/start_frame_generation_id",
    end_frame="end_frame_url/end_frame_generation_id",
    frame_generation_id="*_frame_generation_id",
)
"""How GMI's flat payload names the fields of the shared rule templates."""


def render(rules: tuple[Rule, ...], values: Values, names: Mapping[str, str]) -> list[str]:
    """The messages of the ``rules`` that ``values`` break, in ``names``, each once and in order."""
    # Several rules can describe one mistake in the same words; keep each message once.
    return list(dict.fromkeys(template.format_map(names) for applies, template in rules if applies(values)))


VIDEO_COMBINATIONS: Final[tuple[Rule, ...]] = (
    (lambda v: v["hdr"] and v["resolution"] == "540p", "{hdr}=true is not available at {resolution}=540p"),
    (lambda v: v["exr_export"] and not v["hdr"], "{exr_export}=true requires {hdr}=true"),
    (lambda v: v["duration"] == "10s" and v["hdr"], "{duration}=10s is not supported with {hdr}=true"),
    (lambda v: v["duration"] == "10s" and has_start_frame(v),
     "{duration}=10s is not supported with a start frame ({start_frame})"),
    (lambda v: v["duration"] == "10s" and has_end_frame(v),
     "{duration}=10s is not supported with an end frame ({end_frame})"),
    (lambda v: v["loop"] and v["duration"] == "10s", "{loop}=true is not supported with {duration}=10s"),
    (lambda v: v["loop"] and v["hdr"], "{loop}=true is not supported with {hdr}=true"),
    (lambda v: v["loop"] and has_end_frame(v), "{loop}=true is not supported with an end frame ({end_frame})"),
    (lambda v: is_extend(v) and (v["hdr"] or v["exr_export"]),
     "extend (a single {frame_generation_id}) is SDR only: {hdr} and {exr_export} must be false"),
    (lambda v: is_extend(v) and v["duration"] != "5s", "extend returns one 5s block: {duration} must be 5s"),
)  # fmt: skip
"""The generate constraints both fronts share (on settled values with GMI's flat field names)."""

EDIT_COMBINATIONS: Final[tuple[Rule, ...]] = (
    (lambda v: v["edit_auto_controls"] and "edit_strength" in v,
     "{edit_auto_controls}=true and {edit_strength} are mutually exclusive: set one of them"),
)  # fmt: skip
"""The edit constraints both fronts share."""

_GENERATE_COMBINATIONS: Final[tuple[Rule, ...]] = (
    (lambda v: _has(v, "start_frame_url", "start_frame_generation_id"),
     "start_frame_url and start_frame_generation_id are both set: give the start frame one way only"),
    (lambda v: _has(v, "end_frame_url", "end_frame_generation_id"),
     "end_frame_url and end_frame_generation_id are both set: give the end frame one way only"),
    *VIDEO_COMBINATIONS,
)  # fmt: skip

_SOURCE_COMBINATIONS: Final[tuple[Rule, ...]] = (
    (lambda v: not v.get("source_generation_id") and not v.get("source_data"),
     "source_generation_id or source_data is required: give exactly one source video"),
    (lambda v: _has(v, "source_generation_id", "source_data"),
     "source_generation_id and source_data are both set: give exactly one source video"),
    (lambda v: bool(v.get("source_data")) and not v.get("source_media_type"),
     "source_media_type is required with source_data (e.g. video/mp4)"),
    (lambda v: bool(v.get("source_media_type")) and not v.get("source_data"),
     "source_media_type is set without source_data: it describes inline source_data only"),
)  # fmt: skip


@dataclass(frozen=True)
class ModelRules:
    """The rule tables of one model.

    :param fields: every accepted payload field and its checker; any other field is refused.
    :param required: fields that must be set.
    :param defaults: values the service assumes for fields left out.
    :param combinations: cross-field rules, checked once every field is valid on its own.
    :param hints: extra words for a refused field (why the model does not take it).
    :param from_source: the output follows a source video's duration (the model re-renders one); else the
        payload's ``duration`` (one 5-s block on extend).
    :param ratio: where the output's aspect ratio comes from: the payload's ``aspect_ratio``, the source's, or
        the payload's and it must differ from a known source's (``"new"``: a submit otherwise answers 400).
    """

    model_id: str
    fields: Mapping[str, Checker]
    required: tuple[str, ...]
    defaults: Mapping[str, Any]
    combinations: tuple[Rule, ...]
    hints: Mapping[str, str]
    from_source: bool = False
    ratio: Literal["payload", "source", "new"] = "payload"

    def settle(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``payload`` without unset fields (``null``; ``""`` for ids and URLs), with the defaults filled in."""
        given = {
            name: value
            for name, value in payload.items()
            if value is not None and not (name in _EMPTY_MEANS_UNSET and value == "")
        }
        return {**self.defaults, **given}

    def problems(self, payload: Mapping[str, Any]) -> list[str]:
        """Every rule ``payload`` breaks, each naming its field(s); empty when it is valid."""
        given = self.settle(payload)
        found = [f"{name}: is required" for name in self.required if name not in given]
        for name, value in given.items():
            checker = self.fields.get(name)
            if checker is None:
                hint = self.hints.get(name, "")
                found.append(f"{name}: is not a parameter of {self.model_id}{f' ({hint})' if hint else ''}")
            elif (problem := checker(value)) is not None:
                found.append(f"{name}: {problem}")
        if found:  # combinations assume every value has the right type and range
            return found
        return render(self.combinations, given, GMI_NAMES)


GENERATE_RULES: Final = ModelRules(
    model_id=GENERATE_MODEL_ID,
    fields={
        "prompt": _string(_prompt),
        "aspect_ratio": _ASPECT_RATIO,
        "resolution": _one_of(RESOLUTIONS),
        "duration": _one_of(DURATIONS),
        "hdr": _boolean,
        "exr_export": _boolean,
        "loop": _boolean,
        "start_frame_url": _string(_frame_url),
        "end_frame_url": _string(_frame_url),
        "start_frame_generation_id": _string(_generation_id),
        "end_frame_generation_id": _string(_generation_id),
    },
    required=("prompt",),
    defaults={"aspect_ratio": "16:9", "resolution": "720p", "duration": "5s", "hdr": False, "exr_export": False,
              "loop": False},
    combinations=_GENERATE_COMBINATIONS,
    hints={},
)  # fmt: skip

EDIT_RULES: Final = ModelRules(
    model_id=EDIT_MODEL_ID,
    fields={
        "prompt": _string(_prompt),
        **_SOURCE_FIELDS,
        "resolution": _one_of(RESOLUTIONS),
        "edit_auto_controls": _boolean,
        "edit_strength": _one_of(EDIT_STRENGTHS),
        # GMI's table of pose strengths is cut off, so any non-empty string passes.
        "pose_strength": _string(_non_empty),
    },
    required=("prompt",),
    defaults={"resolution": "720p", "edit_auto_controls": False},
    combinations=(
        *_SOURCE_COMBINATIONS,
        *EDIT_COMBINATIONS,
    ),
    hints={name: "an edit keeps the source's aspect ratio and duration"
           for name in ("aspect_ratio", "duration", "loop", "frames")},
    from_source=True,
    ratio="source",
)  # fmt: skip

REFRAME_RULES: Final = ModelRules(
    model_id=REFRAME_MODEL_ID,
    fields={"prompt": _string(_prompt), "aspect_ratio": _ASPECT_RATIO, "resolution": _one_of(RESOLUTIONS),
            **_SOURCE_FIELDS},
    required=("prompt", "aspect_ratio"),
    defaults={"resolution": "720p"},
    combinations=_SOURCE_COMBINATIONS,
    hints={"hdr": "reframe is SDR only", "exr_export": "reframe is SDR only",
           "duration": "a reframe keeps the source's duration"},
    from_source=True,
    ratio="new",
)  # fmt: skip

RULES: Final[Mapping[str, ModelRules]] = {r.model_id: r for r in (GENERATE_RULES, EDIT_RULES, REFRAME_RULES)}
"""The rule tables by model id: the models this simulator serves (a model is added here, and in
:data:`._native_rules.NATIVE_TYPES` for the native front)."""

MODEL_IDS: Final = tuple(RULES)
"""What ``GET /models`` lists; all of them can be submitted."""


def generate_problems(payload: Mapping[str, Any]) -> list[str]:
    """What is wrong with a ``luma-ray-3-2-generate`` payload (empty when valid)."""
    return GENERATE_RULES.problems(payload)


def edit_problems(payload: Mapping[str, Any]) -> list[str]:
    """What is wrong with a ``luma-ray-3-2-edit`` payload (empty when valid)."""
    return EDIT_RULES.problems(payload)


def reframe_problems(payload: Mapping[str, Any]) -> list[str]:
    """What is wrong with a ``luma-ray-3-2-reframe`` payload (empty when valid)."""
    return REFRAME_RULES.problems(payload)
