"""luma-ray-3-2-edit and luma-ray-3-2-reframe: every documented rule, valid and invalid, facts about the source,
inline source videos, and prices (unknown unless the connection supplies them)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_luma.testing as testing_pkg
from airflow_provider_luma.core.backends.gmi import build_submit
from airflow_provider_luma.core.errors import LumaBudgetExceeded, LumaConfigurationError, LumaValidationError
from airflow_provider_luma.core.pricing import PriceTable, check_budget, estimate
from airflow_provider_luma.core.specs import EditRequest, ReframeRequest
from airflow_provider_luma.core.specs.base import Mode, SourceFacts
from airflow_provider_luma.core.specs.source import VideoFile, inspect_video

GEN = "d290f1ee-6c54-4b01-90e6-d701748f0851"
SAMPLE = Path(testing_pkg.__file__).with_name("sample.mp4")


def video(duration: float | None = 5.0, size: int = 1000) -> VideoFile:
    return VideoFile("/data/in.mp4", "video/mp4", size, "ab" * 32, duration, lambda: SAMPLE.open("rb"))


EDIT_VALID: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("gen-source-auto", {"source_generation_id": GEN, "edit_auto_controls": True},
     {"prompt": "p", "source_generation_id": GEN, "edit_auto_controls": True}),
    ("strength", {"source_generation_id": GEN, "edit_strength": "reimagine_3", "resolution": "1080p"},
     {"prompt": "p", "source_generation_id": GEN, "edit_strength": "reimagine_3", "resolution": "1080p"}),
    ("auto-false-with-strength",
     {"source_generation_id": GEN, "edit_auto_controls": False, "edit_strength": "adhere_1"},
     {"prompt": "p", "source_generation_id": GEN, "edit_auto_controls": False, "edit_strength": "adhere_1"}),
    ("pose-passed-through", {"source_generation_id": GEN, "pose_strength": "precise"},
     {"prompt": "p", "source_generation_id": GEN, "pose_strength": "precise"}),
    ("inline-video", {"source_video": video()}, {"prompt": "p", "source_media_type": "video/mp4"}),
]  # fmt: skip


@pytest.mark.parametrize(("params", "payload"), [(p, w) for _, p, w in EDIT_VALID], ids=[i for i, _, _ in EDIT_VALID])
def test_valid_edit_requests_send_only_their_fields(params: dict[str, Any], payload: dict[str, Any]) -> None:
    spec = EditRequest.validate_params({"prompt": "p", **params})
    assert spec.mode is Mode.EDIT
    assert spec.payload() == payload


EDIT_INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no-source", {}, ["exactly one source is required"]),
    ("two-sources", {"source_generation_id": GEN, "source_video": video()}, ["both set: give exactly one source"]),
    ("auto-and-strength", {"source_generation_id": GEN, "edit_auto_controls": True, "edit_strength": "flex_1"},
     ["edit_auto_controls=true and edit_strength are mutually exclusive"]),
    ("strength-unknown", {"source_generation_id": GEN, "edit_strength": "flex_4"},
     ["edit_strength: edit_strength 'flex_4' is not one of adhere_1"]),
    ("resolution", {"source_generation_id": GEN, "resolution": "4k"}, ["resolution: got '4k'"]),
    ("blank-prompt", {"source_generation_id": GEN, "prompt": "  "}, ["prompt: prompt must not be blank"]),
    ("long-prompt", {"source_generation_id": GEN, "prompt": "x" * 6001}, ["6001 characters"]),
    ("duration-not-taken", {"source_generation_id": GEN, "duration": "5s"},
     ["duration: is not a parameter of luma-ray-3-2-edit"]),
    ("loop-not-taken", {"source_generation_id": GEN, "loop": True}, ["loop: is not a parameter of luma-ray-3-2-edit"]),
    ("ratio-not-taken", {"source_generation_id": GEN, "aspect_ratio": "9:16"},
     ["aspect_ratio: is not a parameter of luma-ray-3-2-edit"]),
    ("frames-not-taken", {"source_generation_id": GEN, "start_frame_url": "https://x/a.png"},
     ["start_frame_url: is not a parameter"]),
    ("broken-template-id", {"source_generation_id": "None"}, ["source_generation_id: generation id is the string"]),
    ("media-type-without-video", {"source_generation_id": GEN, "source_media_type": "video/mp4"},
     ["source_media_type is only for an inline source_video"]),
    ("media-type-unknown", {"source_video": video(), "source_media_type": "video/x-matroska"},
     ["source_media_type 'video/x-matroska' is not one of"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "fragments"), [(p, f) for _, p, f in EDIT_INVALID], ids=[i for i, _, _ in EDIT_INVALID]
)
def test_invalid_edit_requests_name_field_and_rule(params: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(LumaValidationError) as caught:
        EditRequest.validate_params({"prompt": "p", **params})
    assert str(caught.value).startswith("Invalid luma-ray-3-2-edit request: ")
    for fragment in fragments:
        assert fragment in str(caught.value)


REFRAME_INVALID: list[tuple[str, dict[str, Any], SourceFacts, str]] = [
    ("ratio-required", {"source_generation_id": GEN}, SourceFacts(), "aspect_ratio: is required"),
    ("image-only-ratio", {"source_generation_id": GEN, "aspect_ratio": "2:1"}, SourceFacts(), "image-only"),
    ("not-a-ratio", {"source_generation_id": GEN, "aspect_ratio": "5:4"}, SourceFacts(), "is not one of"),
    ("sdr-only", {"source_generation_id": GEN, "aspect_ratio": "9:16", "hdr": True}, SourceFacts(),
     "hdr: reframe is SDR only"),
    ("same-ratio-as-known-source", {"source_generation_id": GEN, "aspect_ratio": "16:9"},
     SourceFacts(aspect_ratio="16:9"), "the source is already 16:9; reframe must change the ratio"),
    ("no-source", {"aspect_ratio": "9:16"}, SourceFacts(), "exactly one source is required"),
    ("duration-not-taken", {"source_generation_id": GEN, "aspect_ratio": "9:16", "duration": "10s"}, SourceFacts(),
     "duration: is not a parameter of luma-ray-3-2-reframe"),
    ("edit-controls-not-taken", {"source_generation_id": GEN, "aspect_ratio": "9:16", "edit_strength": "flex_1"},
     SourceFacts(), "edit_strength: is not a parameter of luma-ray-3-2-reframe"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "source", "fragment"),
    [(p, s, f) for _, p, s, f in REFRAME_INVALID],
    ids=[i for i, _, _, _ in REFRAME_INVALID],
)
def test_invalid_reframe_requests_name_field_and_rule(
    params: dict[str, Any], source: SourceFacts, fragment: str
) -> None:
    with pytest.raises(LumaValidationError, match="Invalid luma-ray-3-2-reframe request: ") as caught:
        ReframeRequest.validate_params({"prompt": "p", **params}, source)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("source", "ratio", "out"),
    [
        (SourceFacts(aspect_ratio="16:9", duration_seconds=10.0), "9:16", SourceFacts("9:16", 10.0)),
        (SourceFacts(), "21:9", SourceFacts("21:9", None)),  # unknown source: any ratio, duration unknown
    ],
)
def test_reframe_takes_the_new_ratio_and_keeps_the_duration(source: SourceFacts, ratio: str, out: SourceFacts) -> None:
    spec = ReframeRequest.validate_params({"prompt": "p", "source_generation_id": GEN, "aspect_ratio": ratio}, source)
    assert spec.payload() == {"prompt": "p", "source_generation_id": GEN, "aspect_ratio": ratio}
    assert spec.output_facts(source) == out
    assert spec.source_generation_ids == [GEN]


def test_edit_keeps_the_sources_ratio_and_duration() -> None:
    source = SourceFacts(aspect_ratio="9:16", duration_seconds=10.0)
    spec = EditRequest.validate_params({"prompt": "p", "source_generation_id": GEN}, source)
    assert spec.output_facts(source) == source
    assert spec.billed_blocks(source) == 2


# -- prices ----------------------------------------------------------------------------------------------------


def test_edit_and_reframe_have_no_built_in_price_and_a_cap_refuses_them() -> None:
    spec = EditRequest.validate_params({"prompt": "p", "source_generation_id": GEN})
    est = estimate(spec, PriceTable(), SourceFacts(duration_seconds=5.0))
    assert est.cost is None and est.cost_usd is None
    assert "GMI publishes no price for luma-ray-3-2-edit" in str(est.unknown_because)
    check_budget(spec, est, None)  # no cap: the render goes ahead with an unknown estimate
    with pytest.raises(LumaBudgetExceeded) as caught:
        check_budget(spec, est, Decimal("1"))
    text = str(caught.value)
    assert "Nothing was submitted" in text and '"prices": {"luma-ray-3-2-edit": {"SDR": {"720p": 0.40}}}' in text


def test_connection_prices_replace_the_table_of_the_models_they_name() -> None:
    table = PriceTable.with_overrides(
        {"luma-ray-3-2-edit": {"SDR": {"720p": 0.5}}, "luma-ray-3-2-generate": {"SDR": {"720p": "0.25"}}}
    )
    edit = EditRequest.validate_params({"prompt": "p", "source_generation_id": GEN})
    ten_seconds = SourceFacts(aspect_ratio="16:9", duration_seconds=10.0)
    assert (estimate(edit, table, ten_seconds).cost, estimate(edit, table, ten_seconds).source) == (
        Decimal("1.0"),
        "connection",
    )
    assert estimate(edit, table, SourceFacts()).cost is None  # the source's length decides the blocks
    from airflow_provider_luma.core.specs import GenerateRequest

    assert estimate(GenerateRequest.validate_params({"prompt": "p"}), table).cost == Decimal("0.25")
    # Replaced, not merged: this account named no 1080p price for generate.
    assert estimate(GenerateRequest.validate_params({"prompt": "p", "resolution": "1080p"}), table).cost is None


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ([1, 2], "must be an object"),
        ({"luma-ray-3-2-edit": {"UHD": {"720p": 1}}}, "quality one of SDR, HDR, HDR+EXR"),
        ({"luma-ray-3-2-edit": {"SDR": {"4k": 1}}}, "prices.luma-ray-3-2-edit.SDR.4k: not one of"),
        ({"luma-ray-3-2-edit": {"SDR": {"720p": -1}}}, "must be a non-negative number"),
        ({"luma-ray-3-2-edit": {"SDR": {"720p": "cheap"}}}, "must be a non-negative number"),
    ],
)
def test_bad_connection_prices_are_a_configuration_error(raw: Any, fragment: str) -> None:
    with pytest.raises(LumaConfigurationError, match="Airflow connection 'luma_default'") as caught:
        PriceTable.with_overrides(raw)
    assert fragment in str(caught.value)


# -- inline source videos --------------------------------------------------------------------------------------


def test_inspect_video_reads_type_duration_and_digest(tmp_path: Path) -> None:
    checked = inspect_video(lambda: SAMPLE.open("rb"), str(SAMPLE), size=SAMPLE.stat().st_size)
    assert checked.media_type == "video/mp4" and checked.size == SAMPLE.stat().st_size
    assert checked.duration_seconds is not None and 0 < checked.duration_seconds <= 30
    import hashlib

    assert checked.sha256 == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("content", "size", "fragment"),
    [
        (b"GIF89a........", None, "is not an MP4 or QuickTime file"),
        (b"", None, "is empty"),
        (b"\x00\x00\x00\x18ftypisom", 300 * 2**20, "a source video may be at most 200 MiB"),
    ],
)
def test_inspect_video_refuses_what_the_model_cannot_take(
    tmp_path: Path, content: bytes, size: int | None, fragment: str
) -> None:
    path = tmp_path / "clip.bin"
    path.write_bytes(content)
    with pytest.raises(LumaValidationError, match="source_video: ") as caught:
        inspect_video(lambda: path.open("rb"), str(path), size=size if size is not None else len(content))
    assert fragment in str(caught.value)


def test_a_source_longer_than_30_seconds_is_refused(tmp_path: Path) -> None:
    # Rewrite the mvhd duration of the sample to 31 s (timescale unchanged).
    data = bytearray(SAMPLE.read_bytes())
    at = data.index(b"mvhd") + 4
    version = data[at]
    ts_at = at + (20 if version == 1 else 12)
    timescale = int.from_bytes(data[ts_at : ts_at + 4], "big")
    width = 8 if version == 1 else 4
    data[ts_at + 4 : ts_at + 4 + width] = (31 * timescale).to_bytes(width, "big")
    path = tmp_path / "long.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(LumaValidationError, match="is 31.0 s long; the source must be 30 seconds or shorter"):
        inspect_video(lambda: path.open("rb"), str(path), size=len(data))


def test_an_inline_video_is_streamed_as_base64_and_fingerprinted_by_digest() -> None:
    checked = inspect_video(lambda: SAMPLE.open("rb"), str(SAMPLE), size=SAMPLE.stat().st_size)
    spec = EditRequest.validate_params({"prompt": "p", "source_video": checked, "edit_auto_controls": True})
    call = build_submit(spec)
    assert call.json is None and call.stream is not None
    body = b"".join(call.stream.chunks())
    assert len(body) == call.stream.length
    sent = json.loads(body)
    assert sent["model"] == "luma-ray-3-2-edit"
    assert base64.b64decode(sent["payload"]["source_data"]) == SAMPLE.read_bytes()
    assert sent["payload"]["source_media_type"] == "video/mp4"
    assert spec.fingerprint_payload()["source_data"] == f"sha256:{checked.sha256}"
