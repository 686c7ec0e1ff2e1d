"""Estimated cost of a ``luma-ray-3-2-generate`` request, from the model page's price table.

Billed per 5-second block at the create tier: a 10s video is two blocks, every extend call is one block.
This is an *estimate*: GMI bills from its own meter, and a failed render may or may not be refunded.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from airflow_provider_luma.models import VideoRequest

Quality = Literal["SDR", "HDR", "HDR+EXR"]

# USD per 5-s block; source: seed copy of the GMI model page ("Pricing").
PRICE_PER_BLOCK_USD: Final[dict[tuple[Quality, str], Decimal]] = {
    ("SDR", "540p"): Decimal("0.15"),
    ("SDR", "720p"): Decimal("0.30"),
    ("SDR", "1080p"): Decimal("1.20"),
    ("HDR", "720p"): Decimal("1.20"),
    ("HDR", "1080p"): Decimal("4.80"),
    ("HDR+EXR", "720p"): Decimal("2.10"),
    ("HDR+EXR", "1080p"): Decimal("8.40"),
}


def quality_of(request: VideoRequest) -> Quality:
    """SDR, HDR or HDR+EXR."""
    if request.hdr:
        return "HDR+EXR" if request.exr_export else "HDR"
    return "SDR"


def billed_blocks(request: VideoRequest) -> int:
    """Number of 5-s blocks billed: 2 for 10s, 1 for 5s and for every extend call."""
    from airflow_provider_luma.models import Mode

    if request.mode in (Mode.EXTEND_FORWARD, Mode.EXTEND_BACKWARD):
        return 1
    return 2 if request.duration == "10s" else 1


def estimate_cost(request: VideoRequest) -> Decimal:
    """Estimated USD cost of one request (exact decimal)."""
    return PRICE_PER_BLOCK_USD[(quality_of(request), request.resolution)] * billed_blocks(request)


def estimate_cost_usd(request: VideoRequest) -> float:
    """Estimated USD cost as a float rounded to cents, for XCom and logs."""
    return float(estimate_cost(request).quantize(Decimal("0.01")))
