"""luma-ray-3-2-generate: every seed rule, valid and invalid, and its built-in prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_luma.core.errors import LumaValidationError
from airflow_provider_luma.core.pricing import estimate
from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.core.specs.base import Mode

GEN = "d290f1ee-6c54-4b01-90e6-d701748f0851"
GEN2 = "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"
IMG = "https://cdn.example.com/frames/a.jpg"
IMG2 = "https://cdn.example.com/frames/b.webp"

VALID: list[tuple[str, dict[str, Any], Mode]] = [
    ("t2v-minimal", {}, Mode.TEXT_TO_VIDEO),
    ("t2v-all-ratios-9:16", {"aspect_ratio": "9:16"}, Mode.TEXT_TO_VIDEO),
    ("t2v-21:9-1080p-10s", {"aspect_ratio": "21:9", "resolution": "1080p", "duration": "10s"}, Mode.TEXT_TO_VIDEO),
    ("t2v-hdr-720p", {"hdr": True, "resolution": "720p"}, Mode.TEXT_TO_VIDEO),
    ("t2v-hdr-exr-1080p", {"hdr": True, "exr_export": True, "resolution": "1080p"}, Mode.TEXT_TO_VIDEO),
    ("t2v-loop-5s", {"loop": True}, Mode.TEXT_TO_VIDEO),
    ("t2v-templated-bool-strings", {"hdr": "true", "loop": "false"}, Mode.TEXT_TO_VIDEO),
    ("i2v-start", {"start_frame_url": IMG}, Mode.IMAGE_TO_VIDEO),
    ("i2v-end", {"end_frame_url": IMG}, Mode.IMAGE_TO_VIDEO),
    ("i2v-both", {"start_frame_url": IMG, "end_frame_url": IMG2}, Mode.IMAGE_TO_VIDEO),
    ("i2v-start-loop", {"start_frame_url": IMG, "loop": True}, Mode.IMAGE_TO_VIDEO),
    ("i2v-no-extension", {"start_frame_url": "https://img.example.com/render?id=7"}, Mode.IMAGE_TO_VIDEO),
    ("i2v-png-upper", {"start_frame_url": "http://x.example.com/A.PNG"}, Mode.IMAGE_TO_VIDEO),
    ("i2v-hdr-5s", {"start_frame_url": IMG, "hdr": True}, Mode.IMAGE_TO_VIDEO),
    ("extend-forward", {"start_frame_generation_id": GEN}, Mode.EXTEND_FORWARD),
    ("extend-forward-loop", {"start_frame_generation_id": GEN, "loop": True}, Mode.EXTEND_FORWARD),
    ("extend-backward", {"end_frame_generation_id": GEN}, Mode.EXTEND_BACKWARD),
    ("extend-empty-other-end", {"start_frame_generation_id": GEN, "end_frame_generation_id": ""}, Mode.EXTEND_FORWARD),
    ("interp-two-gens", {"start_frame_generation_id": GEN, "end_frame_generation_id": GEN2}, Mode.INTERPOLATION),
    ("interp-gen-then-url", {"start_frame_generation_id": GEN, "end_frame_url": IMG}, Mode.INTERPOLATION),
    ("interp-url-then-gen", {"start_frame_url": IMG, "end_frame_generation_id": GEN}, Mode.INTERPOLATION),
    (
        "interp-hdr",
        {"start_frame_generation_id": GEN, "end_frame_generation_id": GEN2, "hdr": True},
        Mode.INTERPOLATION,
    ),
]


@pytest.mark.parametrize(("params", "mode"), [(p, m) for _, p, m in VALID], ids=[i for i, _, _ in VALID])
def test_valid_requests_and_mode(params: dict[str, Any], mode: Mode) -> None:
    request = GenerateRequest.validate_params({"prompt": "A slow dolly shot through a misty greenhouse", **params})
    assert request.mode is mode


INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    ("blank-prompt", {"prompt": "   "}, ["prompt", "blank"]),
    ("long-prompt", {"prompt": "x" * 6001}, ["prompt", "6001", "1-6000"]),
    ("missing-prompt", {"prompt": None}, ["prompt", "is required by luma-ray-3-2-generate"]),
    ("ratio-3:1-image-only", {"aspect_ratio": "3:1"}, ["aspect_ratio", "image-only"]),
    ("ratio-2:1-image-only", {"aspect_ratio": "2:1"}, ["aspect_ratio", "image-only"]),
    ("ratio-1:2-image-only", {"aspect_ratio": "1:2"}, ["aspect_ratio", "image-only"]),
    ("ratio-1:3-image-only", {"aspect_ratio": "1:3"}, ["aspect_ratio", "image-only"]),
    ("ratio-unknown", {"aspect_ratio": "5:4"}, ["aspect_ratio", "'5:4'", "16:9"]),
    ("resolution-4k", {"resolution": "4k"}, ["resolution", "'4k'"]),
    ("duration-9s", {"duration": "9s"}, ["duration", "'9s'"]),
    ("unknown-field", {"seed": 3}, ["seed", "not a parameter"]),
    ("hdr-540p", {"hdr": True, "resolution": "540p"}, ["hdr", "540p"]),
    ("exr-without-hdr", {"exr_export": True}, ["exr_export", "requires hdr"]),
    ("10s-hdr", {"duration": "10s", "hdr": True}, ["duration=10s", "hdr"]),
    ("10s-start-url", {"duration": "10s", "start_frame_url": IMG}, ["duration=10s", "start frame"]),
    ("10s-end-url", {"duration": "10s", "end_frame_url": IMG}, ["duration=10s", "end frame"]),
    ("10s-start-gen", {"duration": "10s", "start_frame_generation_id": GEN}, ["duration=10s", "start frame"]),
    ("10s-end-gen", {"duration": "10s", "end_frame_generation_id": GEN}, ["duration=10s", "end frame"]),
    ("loop-10s", {"loop": True, "duration": "10s"}, ["loop", "10s"]),
    ("loop-hdr", {"loop": True, "hdr": True}, ["loop", "hdr"]),
    ("loop-end-url", {"loop": True, "end_frame_url": IMG}, ["loop", "end frame"]),
    ("loop-extend-backward", {"loop": True, "end_frame_generation_id": GEN}, ["loop", "forward-only"]),
    ("start-url-and-gen", {"start_frame_url": IMG, "start_frame_generation_id": GEN}, ["start_frame_url", "one way"]),
    ("end-url-and-gen", {"end_frame_url": IMG, "end_frame_generation_id": GEN}, ["end_frame_url", "one way"]),
    ("frame-ftp", {"start_frame_url": "ftp://x.example.com/a.jpg"}, ["start_frame_url", "http(s)"]),
    ("frame-not-url", {"end_frame_url": "frames/a.png"}, ["end_frame_url", "http(s)"]),
    ("frame-gif", {"start_frame_url": "https://x.example.com/a.gif"}, ["start_frame_url", ".gif", "JPEG"]),
    ("frame-mp4", {"end_frame_url": "https://x.example.com/clip.mp4?x=1"}, ["end_frame_url", ".mp4"]),
    ("extend-hdr", {"start_frame_generation_id": GEN, "hdr": True}, ["extend", "SDR only"]),
    ("extend-exr", {"end_frame_generation_id": GEN, "hdr": True, "exr_export": True}, ["SDR only"]),
    ("extend-10s", {"start_frame_generation_id": GEN, "duration": "10s"}, ["one 5s block"]),
    ("gen-id-None-string", {"start_frame_generation_id": "None"}, ["start_frame_generation_id", "XCom"]),
    (
        "interp-inherits-10s",
        {"start_frame_generation_id": GEN, "end_frame_generation_id": GEN2, "duration": "10s"},
        ["duration=10s", "start frame", "end frame"],
    ),
    (
        "interp-inherits-loop",
        {"start_frame_generation_id": GEN, "end_frame_url": IMG, "loop": True},
        ["loop", "end frame"],
    ),
    (
        "interp-inherits-hdr-540p",
        {"start_frame_url": IMG, "end_frame_generation_id": GEN, "hdr": True, "resolution": "540p"},
        ["540p"],
    ),
]


@pytest.mark.parametrize(("params", "fragments"), [(p, f) for _, p, f in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_requests_name_field_and_rule(params: dict[str, Any], fragments: list[str]) -> None:
    kwargs = {"prompt": "a clip", **params}
    with pytest.raises(LumaValidationError) as info:
        GenerateRequest.validate_params(kwargs)
    message = str(info.value)
    assert message.startswith("Invalid luma-ray-3-2-generate request")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert isinstance(info.value, ValueError)


def test_payload_carries_only_what_was_set_and_no_nulls() -> None:
    request = GenerateRequest.validate_params(
        {"prompt": "p", "resolution": "1080p", "start_frame_url": None, "hdr": None}
    )
    assert request.payload() == {"prompt": "p", "resolution": "1080p"}
    assert request.duration == "5s" and request.aspect_ratio == "16:9"  # defaults still drive rules and price


def test_payload_trims_whitespace_from_templated_values() -> None:
    request = GenerateRequest.validate_params({"prompt": "  p  ", "start_frame_generation_id": f" {GEN}\n"})
    assert request.payload() == {"prompt": "p", "start_frame_generation_id": GEN}


PRICES = [
    ({"resolution": "540p"}, "0.15", 1),
    ({}, "0.30", 1),
    ({"resolution": "1080p"}, "1.20", 1),
    ({"resolution": "540p", "duration": "10s"}, "0.30", 2),
    ({"resolution": "1080p", "duration": "10s"}, "2.40", 2),
    ({"hdr": True}, "1.20", 1),
    ({"hdr": True, "resolution": "1080p"}, "4.80", 1),
    ({"hdr": True, "exr_export": True}, "2.10", 1),
    ({"hdr": True, "exr_export": True, "resolution": "1080p"}, "8.40", 1),
    ({"start_frame_generation_id": GEN}, "0.30", 1),
    ({"end_frame_generation_id": GEN, "resolution": "1080p"}, "1.20", 1),
    ({"start_frame_url": IMG, "end_frame_generation_id": GEN, "hdr": True, "resolution": "1080p"}, "4.80", 1),
]


@pytest.mark.parametrize(("params", "usd", "blocks"), PRICES)
def test_price_table(params: dict[str, Any], usd: str, blocks: int) -> None:
    request = GenerateRequest.validate_params({"prompt": "p", **params})
    est = estimate(request)
    assert (est.cost, est.cost_usd, est.blocks, est.source) == (Decimal(usd), float(usd), blocks, "built-in")


def test_the_0_1_spellings_still_work() -> None:
    # Released 0.1 names stay importable and behave like today's; every other test uses today's names.
    from airflow_provider_luma.core.specs.generate import VideoRequest

    assert VideoRequest is GenerateRequest
    old = VideoRequest.from_params(prompt="p", resolution="1080p")
    assert old == GenerateRequest.validate_params({"prompt": "p", "resolution": "1080p"})
    assert old.to_payload() == old.payload() == {"prompt": "p", "resolution": "1080p"}
