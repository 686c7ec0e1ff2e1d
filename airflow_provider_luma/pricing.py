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


def parse_max_cost(value: object, field: str = "max_cost_usd") -> Decimal | None:
    """``max_cost_usd`` as a Decimal (None = no cap); templated strings such as ``"2.50"`` or ``"$2.50"`` work.

    :raises LumaValidationError: when it is not a non-negative number.
    """
    from decimal import InvalidOperation

    from airflow_provider_luma.exceptions import LumaValidationError
    from airflow_provider_luma.models import is_unset

    if is_unset(value):
        return None
    if isinstance(value, bool):
        raise LumaValidationError([f"{field}: got {value!r}; must be a number of US dollars, e.g. 2.50"])
    try:
        cap = Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation:
        raise LumaValidationError([f"{field}: got {value!r}; must be a number of US dollars, e.g. 2.50"]) from None
    if not cap.is_finite() or cap < 0:
        raise LumaValidationError([f"{field}: got {value!r}; must be a finite amount of US dollars >= 0"])
    return cap


def check_budget(request: VideoRequest, cap: Decimal | None) -> None:
    """Refuse a request whose estimated cost is above ``cap``, naming what drives the price.

    :raises LumaBudgetExceeded: estimate > cap.
    """
    from airflow_provider_luma.exceptions import LumaBudgetExceeded

    if cap is None:
        return
    cost = estimate_cost(request)
    if cost <= cap:
        return
    quality, blocks = quality_of(request), billed_blocks(request)
    per_block = PRICE_PER_BLOCK_USD[(quality, request.resolution)]
    drivers = (
        f"resolution={request.resolution}, duration={request.duration}, hdr={request.hdr}, "
        f"exr_export={request.exr_export}, mode={request.mode.value}"
    )
    raise LumaBudgetExceeded(
        f"Estimated cost ${cost:.2f} is above max_cost_usd=${cap:.2f}: {blocks} block(s) x ${per_block} "
        f"({quality} {request.resolution}) from {drivers}. Nothing was submitted. Lower the resolution, duration, "
        "HDR or EXR, or raise max_cost_usd."
    )
