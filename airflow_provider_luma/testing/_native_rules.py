"""The native Luma Agents API's rules for Ray 3.2 video requests, as tables, and their translation to internal jobs.

A ``POST /v1/generations`` body is nested (``video.edit.controls.pose.strength``). It is checked against a table
of shapes per ``type`` (every problem names its native path, e.g. ``video.keyframe_indexes[2]``), then flattened
to the GMI-style payload of the internal job (``video.start_frame.generation_id`` → ``start_frame_generation_id``),
where the cross-field rules shared with the GMI front (:data:`._rules.VIDEO_COMBINATIONS`) and the native-only
ones run, reporting native names.

Statuses follow Luma's error table: a field problem (unknown field, wrong type or range, a missing field) is 400
"invalid parameters"; a rejected combination or bad media data (base64 that is not a JPEG/PNG/WebP or MP4) is 422.
Like :mod:`._rules`, independent of the provider's own models. Pure: no state, no sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from airflow_provider_luma.testing._rules import (
    _ASPECT_RATIO,
    DURATIONS,
    EDIT_COMBINATIONS,
    EDIT_STRENGTHS,
    RESOLUTIONS,
    RULES,
    VIDEO_COMBINATIONS,
    FieldNames,
    Rule,
    _boolean,
    _one_of,
    has_end_frame,
    has_start_frame,
    render,
)
from airflow_provider_luma.testing._shapes import (
    REF_WAYS,
    Findings,
    ListOf,
    Node,
    Ref,
    Shape,
    any_string,
    frame_index,
    native_prompt,
    number,
)
from airflow_provider_luma.testing._types import (
    EDIT_MODEL_ID,
    GENERATE_MODEL_ID,
    NATIVE_MODEL,
    REFRAME_MODEL_ID,
    SimulatorError,
)

NATIVE_RESOLUTIONS: Final = ("360p", *RESOLUTIONS)
KEYFRAME_LIMIT: Final = 64
FRAMES_PER_SECOND: Final = 24
POSE_STRENGTHS: Final = ("precise", "coarse")
_IMAGE_MODELS: Final = ("uni-1", "uni-1-max")

NATIVE_NAMES: Final = FieldNames(
    hdr="video.hdr",
    exr_export="video.exr_export",
    resolution="video.resolution",
    duration="video.duration",
    loop="video.loop",
    start_frame="video.start_frame",
    end_frame="video.end_frame",
    frame_generation_id="video.start_frame.generation_id or video.end_frame.generation_id",
    edit_auto_controls="video.edit.auto_controls",
    edit_strength="video.edit.strength",
    start_frame_generation_id="video.start_frame.generation_id",
    end_frame_generation_id="video.end_frame.generation_id",
    source_generation_id="source.generation_id",
)
"""How the native API names the fields of the shared rule templates and of the reference fields."""


# -- the tables -----------------------------------------------------------------------------------------------

_FRACTION: Final = number(0.0, 1.0)
_SOURCE: Final = Ref("video")
_SOURCE_RESOLUTION: Final = _one_of(RESOLUTIONS, ("360p",), "the draft tier, for type video only")
_COMMON: Final[Mapping[str, Node]] = {
    "model": any_string,  # model and type are checked before the tables are chosen
    "type": any_string,
    "prompt": native_prompt,
    "aspect_ratio": _ASPECT_RATIO,
    "user_id": any_string,  # opaque to the API: any string
}
_TOP_HINTS: Final = {name: "image-only" for name in ("image_ref", "output_format", "style", "web_search")}
_VIDEO_ONLY: Final = "for type video only"
_GENERATE_ONLY: Final = {
    name: _VIDEO_ONLY for name in ("loop", "start_frame", "end_frame", "keyframes", "keyframe_indexes")
}
_CONTROLS: Final = Shape(
    {
        "pose": Shape({"enabled": _boolean, "strength": _one_of(POSE_STRENGTHS)}),
        "depth": Shape({"enabled": _boolean, "blur": _FRACTION}),
        "normals": Shape({"enabled": _boolean, "augmentation": _FRACTION}),
        "trajectory": Shape({"enabled": _boolean, "sparsity": _FRACTION}),
        "face": Shape({"enabled": _boolean}),
    }
)
_SIZE: Final = number(0.0, 2.0)
_SOURCE_POSITION: Final = Shape(
    {"x_norm": number(None, None), "y_norm": number(None, None), "w_norm": _SIZE, "h_norm": _SIZE},
    required=("x_norm", "y_norm", "w_norm", "h_norm"),
)

_VIDEO_SHAPE: Final = Shape(
    {
        **_COMMON,
        "video": Shape(
            {
                "resolution": _one_of(NATIVE_RESOLUTIONS),
                "duration": _one_of(DURATIONS),
                "loop": _boolean,
                "hdr": _boolean,
                "exr_export": _boolean,
                "start_frame": Ref("image"),
                "end_frame": Ref("image"),
                # Which frames a prior generation would give as a keyframe is not documented: url or data only.
                "keyframes": ListOf(Ref("image", ("url", "data")), 1, KEYFRAME_LIMIT),
                "keyframe_indexes": ListOf(frame_index, 1, KEYFRAME_LIMIT, unique=True),
            },
            hints={"edit": "for type video_edit only", "source_position": "for type video_reframe only"},
            of="type video",
        ),
    },
    required=("prompt",),
    hints={**_TOP_HINTS, "source": "for type video_edit and video_reframe; frames go under video"},
    of="type video",
)  # fmt: skip

_EDIT_SHAPE: Final = Shape(
    {
        **_COMMON,
        "source": _SOURCE,
        "video": Shape(
            {
                "resolution": _SOURCE_RESOLUTION,
                "edit": Shape({"auto_controls": _boolean, "strength": _one_of(EDIT_STRENGTHS), "controls": _CONTROLS}),
            },
            hints={**_GENERATE_ONLY, "duration": "an edit keeps the source's duration", "hdr": "an edit is SDR only",
                   "exr_export": "an edit is SDR only", "source_position": "for type video_reframe only"},
            of="type video_edit",
        ),
    },
    required=("prompt", "source"),
    hints=_TOP_HINTS,
    of="type video_edit",
)  # fmt: skip

_REFRAME_SHAPE: Final = Shape(
    {
        **_COMMON,
        "source": _SOURCE,
        "video": Shape(
            {"resolution": _SOURCE_RESOLUTION, "source_position": _SOURCE_POSITION},
            hints={**_GENERATE_ONLY, "duration": "a reframe keeps the source's duration",
                   "hdr": "not supported for video_reframe", "exr_export": "not supported for video_reframe",
                   "edit": "for type video_edit only"},
            of="type video_reframe",
        ),
    },
    required=("prompt", "aspect_ratio", "source"),
    hints=_TOP_HINTS,
    of="type video_reframe",
)  # fmt: skip


def _keyframes_past_the_end(v: Mapping[str, Any]) -> bool:
    last = FRAMES_PER_SECOND * (10 if v["duration"] == "10s" else 5)
    return any(index > last for index in v.get("keyframe_indexes", ()))


# Native-only constraints, on the flat values (so already in native names).
_NATIVE_VIDEO_COMBINATIONS: Final[tuple[Rule, ...]] = (
    (lambda v: v["hdr"] and v["resolution"] == "360p",
     "video.hdr=true is not available at video.resolution=360p (the draft tier is SDR only)"),
    (lambda v: ("keyframes" in v) != ("keyframe_indexes" in v),
     "video.keyframes and video.keyframe_indexes go together: one frame index per keyframe"),
    (lambda v: "keyframes" in v and "keyframe_indexes" in v and len(v["keyframes"]) != len(v["keyframe_indexes"]),
     "video.keyframe_indexes: must have as many entries as video.keyframes"),
    (_keyframes_past_the_end,
     "video.keyframe_indexes: every index must be on the frame grid of video.duration (0..120 for 5s, 0..240 for 10s)"),
    (lambda v: "keyframes" in v and (has_start_frame(v) or has_end_frame(v) or v["loop"]),
     "video.keyframes is mutually exclusive with video.start_frame, video.end_frame and video.loop"),
    (lambda v: bool(v.get("start_frame_generation_id") and has_end_frame(v)
                    or v.get("end_frame_generation_id") and has_start_frame(v)),
     "video.start_frame.generation_id / video.end_frame.generation_id extend a prior generation and take no other "
     "frame: interpolation from a prior generation plus another keyframe is not available yet"),
)  # fmt: skip


@dataclass(frozen=True)
class NativeType:
    """The tables of one native ``type``: the body's shape and the cross-field rules of its flat values."""

    model_id: str
    shape: Shape
    combinations: tuple[Rule, ...]


NATIVE_TYPES: Final[Mapping[str, NativeType]] = {
    "video": NativeType(GENERATE_MODEL_ID, _VIDEO_SHAPE, (*VIDEO_COMBINATIONS, *_NATIVE_VIDEO_COMBINATIONS)),
    "video_edit": NativeType(EDIT_MODEL_ID, _EDIT_SHAPE, EDIT_COMBINATIONS),
    "video_reframe": NativeType(REFRAME_MODEL_ID, _REFRAME_SHAPE, ()),
}
"""The rule tables by native ``type``."""

NATIVE_TYPE_OF: Final[Mapping[str, str]] = {table.model_id: kind for kind, table in NATIVE_TYPES.items()}
"""GMI model id → the native ``type`` of the same job."""

# Native path → the flat (GMI-style) name in the internal job's payload. Unlisted paths are covered by a parent.
_REFS: Final = (("source",), "source"), (("video", "start_frame"), "start_frame"), (("video", "end_frame"), "end_frame")
_FLAT_NAMES: Final[Mapping[tuple[str, ...], str]] = {
    **{(name,): name for name in ("prompt", "aspect_ratio", "user_id")},
    **{("video", name): name for name in ("resolution", "duration", "loop", "hdr", "exr_export", "keyframes",
                                          "keyframe_indexes", "source_position")},
    ("video", "edit", "auto_controls"): "edit_auto_controls",
    ("video", "edit", "strength"): "edit_strength",
    ("video", "edit", "controls", "pose", "strength"): "pose_strength",  # GMI's name for it
    ("video", "edit", "controls"): "edit_controls",
    **{(*path, way): f"{name}_{way}" for path, name in _REFS for way in (*REF_WAYS, "media_type")},
}  # fmt: skip


def _dig(body: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = body
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def flatten(body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The GMI-style payload of a valid native ``body`` of ``type`` ``kind``, unset fields left out."""
    flat = {name: value for path, name in _FLAT_NAMES.items() if (value := _dig(body, path)) not in (None, "")}
    if kind == "video_edit":
        flat.pop("aspect_ratio", None)  # the API ignores it on edit: the output keeps the source's ratio
    return flat


@dataclass(frozen=True)
class NativeRequest:
    """A valid native create body, translated: the internal model, its GMI-style payload and settled values."""

    kind: str
    model_id: str
    payload: dict[str, Any]
    values: dict[str, Any]


def parse_native(body: Any) -> NativeRequest:
    """Check a ``POST /v1/generations`` body and translate it to the internal job it asks for.

    :raises SimulatorError: 400 for invalid parameters, 422 for a rejected combination or bad media data; the
        message lists every problem found, joined by ``"; "``.
    """
    if not isinstance(body, dict):
        raise SimulatorError(400, "Request body must be a JSON object")
    model, kind = body.get("model"), body.get("type")
    if model is None:
        raise SimulatorError(400, f"model: is required; this simulator serves {NATIVE_MODEL!r} (the API defaults "
                                  "to the image model 'uni-1')")  # fmt: skip
    if model in _IMAGE_MODELS:
        raise SimulatorError(400, f"Type {kind!r} is not supported for model {model!r}: this simulator serves "
                                  f"video on {NATIVE_MODEL!r} only")  # fmt: skip
    if model != NATIVE_MODEL:
        raise SimulatorError(400, f"Unknown model: {model}")
    table = NATIVE_TYPES.get(kind) if isinstance(kind, str) else None
    if table is None or not isinstance(kind, str):
        got = "is required (the API defaults to 'image')" if kind is None else f"got {kind!r}"
        raise SimulatorError(400, f"type: {got}; must be one of {', '.join(NATIVE_TYPES)} for model {NATIVE_MODEL!r}")
    out = Findings()
    table.shape.check(body, "", out)
    if out.invalid:
        raise SimulatorError(400, "; ".join(out.invalid))
    payload = flatten(body, kind)
    values = RULES[table.model_id].settle(payload)  # the same defaults as the GMI model's
    rejected = [*out.rejected, *render(table.combinations, values, NATIVE_NAMES)]
    if rejected:
        raise SimulatorError(422, "; ".join(rejected))
    return NativeRequest(kind, table.model_id, payload, values)
