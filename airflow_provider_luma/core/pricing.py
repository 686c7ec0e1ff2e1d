"""Estimated cost of a render: per 5-second block, by model, quality and resolution.

The built-in rows are those each model registers per backend (:mod:`airflow_provider_luma.core.specs.registry`):
today the GMI model page's, for ``luma-ray-3-2-generate`` only. GMI publishes **no** price for edit or reframe,
and Luma's own API none at all, so those estimates are unknown (``None``), never invented. An account's own prices
(negotiated, provisioned, or simply the ones for edit and reframe) come from the connection's extra and
**replace** the built-in table of each model they name::

    {"prices": {"luma-ray-3-2-edit": {"SDR": {"720p": 0.40, "1080p": 1.60}},
                "luma-ray-3-2-generate": {"SDR": {"720p": 0.25}}}}

(USD per 5-s block; qualities ``SDR``, ``HDR``, ``HDR+EXR``). This is an *estimate*: the service bills from its own
meter, and a failed render may or may not be refunded. Airflow-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from airflow_provider_luma.core.backends import DEFAULT_BACKEND
from airflow_provider_luma.core.errors import LumaBudgetExceeded, LumaConfigurationError, LumaValidationError
from airflow_provider_luma.core.specs.base import RESOLUTIONS, RenderSpec, SourceFacts, is_unset
from airflow_provider_luma.core.specs.registry import PriceKey, built_in_prices

QUALITIES: Final = ("SDR", "HDR", "HDR+EXR")


def __getattr__(name: str) -> Any:
    # BUILT_IN_PRICES (0.2) is now read from the model registry, so a model registered later is included.
    if name == "BUILT_IN_PRICES":
        return built_in_prices(DEFAULT_BACKEND)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PRICE_HINT: Final = (
    'put your account\'s price in the Luma connection\'s extra, e.g. {"prices": {"%s": {"%s": {"%s": 0.40}}}} '
    "(USD per 5-s block)"
)


@dataclass(frozen=True)
class PriceTable:
    """Prices by model; :attr:`from_connection` names the models whose table came from the connection."""

    prices: Mapping[str, Mapping[PriceKey, Decimal]] = field(default_factory=lambda: built_in_prices(DEFAULT_BACKEND))
    from_connection: frozenset[str] = frozenset()
    backend: str = DEFAULT_BACKEND

    @classmethod
    def with_overrides(cls, raw: Any, conn_id: str = "luma_default", backend: str = DEFAULT_BACKEND) -> PriceTable:
        """The backend's built-in table with the models named in a connection's ``prices`` extra replaced.

        Built-in rows are those each model registers for ``backend``: the native Luma Agents API publishes no
        official video prices (only third-party figures exist), so there every estimate is unknown unless the
        connection supplies prices.

        :raises LumaConfigurationError: naming the connection and the entry that is not a price.
        """
        built_in: Mapping[str, Mapping[PriceKey, Decimal]] = built_in_prices(backend)
        if raw in (None, "", {}):
            return cls(built_in, backend=backend)
        if not isinstance(raw, dict):
            raise LumaConfigurationError(f"Airflow connection {conn_id!r}: extra 'prices' must be an object")
        prices: dict[str, Mapping[PriceKey, Decimal]] = dict(built_in)
        for model, by_quality in raw.items():
            table: dict[PriceKey, Decimal] = {}
            for quality, by_resolution in (by_quality or {}).items() if isinstance(by_quality, dict) else [(0, 0)]:
                where = f"Airflow connection {conn_id!r}: prices.{model}.{quality}"
                if quality not in QUALITIES or not isinstance(by_resolution, dict):
                    raise LumaConfigurationError(
                        f"{where}: expected {{quality: {{resolution: USD per 5-s block}}}} with quality one of "
                        f"{', '.join(QUALITIES)}"
                    )
                for resolution, value in by_resolution.items():
                    if resolution not in RESOLUTIONS:
                        raise LumaConfigurationError(f"{where}.{resolution}: not one of {', '.join(RESOLUTIONS)}")
                    table[(quality, resolution)] = _usd(value, f"{where}.{resolution}")
            prices[str(model)] = table
        return cls(prices, frozenset(str(m) for m in raw), backend)


@dataclass(frozen=True)
class Estimate:
    """What a render is expected to cost, or why that is unknown.

    :param cost: USD, or ``None`` (see :attr:`unknown_because`).
    :param blocks: 5-s blocks billed, or ``None`` when they depend on an unknown source duration.
    :param per_block: USD per block from the table, when the table has a price.
    :param source: ``"connection"``, ``"built-in"`` or ``None``.
    """

    model: str
    quality: str
    resolution: str
    blocks: int | None
    per_block: Decimal | None
    source: str | None
    unknown_because: str | None = None

    @property
    def cost(self) -> Decimal | None:
        """Exact USD, or ``None``."""
        if self.per_block is None or self.blocks is None:
            return None
        return self.per_block * self.blocks

    @property
    def cost_usd(self) -> float | None:
        """USD rounded to cents (for XCom and logs), or ``None``."""
        cost = self.cost
        return None if cost is None else float(cost.quantize(Decimal("0.01")))

    def describe(self) -> str:
        """``$0.30 (1 block(s) x $0.30, SDR 720p, built-in table)`` or why it is unknown."""
        if self.cost is None:
            return f"unknown ({self.unknown_because})"
        return (
            f"${self.cost:.2f} ({self.blocks} block(s) x ${self.per_block}, {self.quality} {self.resolution}, "
            f"{self.source} prices)"
        )


def estimate(spec: RenderSpec, table: PriceTable | None = None, source: SourceFacts | None = None) -> Estimate:
    """Estimate one render's cost from ``table`` (built-in prices by default)."""
    table = table or PriceTable()
    model, quality, resolution = spec.MODEL_ID, spec.quality, spec.resolution_label
    blocks = spec.billed_blocks(source or SourceFacts())
    prices = table.prices.get(model)
    per_block = prices.get((quality, resolution)) if prices is not None else None
    where = "connection" if model in table.from_connection else "built-in"
    reason = None
    if prices is None:
        from airflow_provider_luma.core.backends import backend_named  # the wire modules import httpx

        reason = backend_named(table.backend).NO_PRICE % model + "; " + PRICE_HINT % (model, quality, resolution)
    elif per_block is None:
        reason = f"the {where} price table has no {quality} {resolution} price for {model}; " + PRICE_HINT % (
            model,
            quality,
            resolution,
        )
    elif blocks is None:
        reason = (
            "the source video's duration is unknown (it did not come from an upstream Luma task of this run), so "
            "the number of 5-s blocks billed is unknown"
        )
    return Estimate(model, quality, resolution, blocks, per_block, where if per_block is not None else None, reason)


def parse_max_cost(value: object, field: str = "max_cost_usd") -> Decimal | None:
    """``max_cost_usd`` as a Decimal (None = no cap); templated strings such as ``"2.50"`` or ``"$2.50"`` work.

    :raises LumaValidationError: when it is not a non-negative number.
    """
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


def check_budget(spec: RenderSpec, est: Estimate, cap: Decimal | None, field: str = "max_cost_usd") -> None:
    """Refuse a render whose estimate is above ``cap`` (or unknown while a cap is set), naming what drives it.

    ``field`` names the cap in the message (``max_cost_usd``, or ``max_run_cost_usd`` for the run's).

    :raises LumaBudgetExceeded: estimate > cap, or no estimate.
    """
    if cap is None:
        return
    cost = est.cost
    if cost is None:
        raise LumaBudgetExceeded(
            f"{field}=${cap:.2f} is set but the cost of this {spec.MODEL_ID} render is unknown: "
            f"{est.unknown_because}. Nothing was submitted. Supply a price, or remove {field} from this task."
        )
    if cost <= cap:
        return
    raise LumaBudgetExceeded(
        f"Estimated cost ${cost:.2f} is above {field}=${cap:.2f}: {est.blocks} block(s) x ${est.per_block} "
        f"({est.quality} {est.resolution}) from {spec.price_drivers()}. Nothing was submitted. Lower the "
        f"resolution, duration, HDR or EXR, or raise {field}."
    )


def _usd(value: Any, where: str) -> Decimal:
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        price = Decimal(-1)
    if isinstance(value, bool) or not price.is_finite() or price < 0:
        raise LumaConfigurationError(f"{where}: got {value!r}; must be a non-negative number of US dollars")
    return price
