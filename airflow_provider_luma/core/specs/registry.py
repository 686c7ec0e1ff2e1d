"""The model registry: the one list of the models this provider can render, and what each declares about itself.

Each spec module ends with :func:`register` of a :class:`ModelInfo`: its request class (fields, rules, mode, expected
render time, the fields that name source generations), its native API ``type``, its built-in price rows per
backend, the operator classes that render it and how its clips relate to their sources in the gallery. Everything
that needs a list of models reads it from here: the operators and the pre-flight (:data:`SPECS`), both wires,
pricing, the gallery (:mod:`airflow_provider_luma.plugins._model`) and the provider info. A sibling model is one
spec module, its operator class and the simulator's rule tables.

Airflow-free and stdlib-only at import (the spec classes arrive by registration).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from airflow_provider_luma.core.specs.base import RenderSpec

PriceKey = tuple[str, str]
"""``(quality, resolution)``, e.g. ``("SDR", "720p")``."""

PriceRows = Mapping[PriceKey, Decimal]
"""USD per 5-s block by quality and resolution."""


@dataclass(frozen=True)
class ModelInfo:
    """Everything the provider knows about one model besides its request class's own fields and rules.

    :param spec: the strict request class; its ``MODEL_ID`` is the model id (as GMI's queue names it).
    :param title: a short word for lists and the provider description (``"edit"``).
    :param native_type: the native Luma Agents API's ``type`` for this model (``"video_edit"``).
    :param modes: each render mode the model produces → how such a clip relates to its sources in the gallery
        (``"edited"``), or ``""`` for a clip made from nothing earlier.
    :param operators: the operator classes (by class name) that render it → the gallery's edge label for a clip
        whose mode is not known yet (``""``: none). Names, not classes: the core never imports Airflow.
    :param prices: built-in price rows by backend name (``"gmi"``); a backend without rows here prices this model
        only from the connection's ``prices`` extra.
    :param doc_url: the model's documentation page.
    """

    spec: type[RenderSpec]
    title: str
    native_type: str
    modes: Mapping[str, str]
    operators: Mapping[str, str] = field(default_factory=dict)
    prices: Mapping[str, PriceRows] = field(default_factory=dict)
    doc_url: str | None = None

    @property
    def model_id(self) -> str:
        """The model id (GMI's name for it, also the XCom ``model``)."""
        return self.spec.MODEL_ID


_MODELS: dict[str, ModelInfo] = {}


def register(info: ModelInfo) -> ModelInfo:
    """Add a model (its spec module calls this once, at import).

    :raises ValueError: when another spec already registered the id or the native ``type``.
    """
    known = _MODELS.get(info.model_id)
    if known is not None and known != info:
        raise ValueError(f"model {info.model_id!r} is already registered by {known.spec.__qualname__}")
    clash = [m.model_id for m in _MODELS.values() if m.native_type == info.native_type and m.model_id != info.model_id]
    if clash:
        raise ValueError(f"native type {info.native_type!r} of {info.model_id!r} is already {clash[0]!r}'s")
    _MODELS[info.model_id] = info
    return info


def unregister(model_id: str) -> None:
    """Remove a model (tests that register a hypothetical one)."""
    _MODELS.pop(model_id, None)


def models() -> tuple[ModelInfo, ...]:
    """Every registered model, in registration order."""
    return tuple(_MODELS.values())


def model_info(model_id: str) -> ModelInfo:
    """The registered facts of ``model_id``.

    :raises KeyError: naming the known models, for an id no spec registered.
    """
    try:
        return _MODELS[model_id]
    except KeyError:
        raise KeyError(f"unknown Luma model {model_id!r}; known: {', '.join(_MODELS)}") from None


def built_in_prices(backend: str) -> dict[str, PriceRows]:
    """The built-in price rows a backend's models have, by model id (models without rows are left out)."""
    return {m.model_id: m.prices[backend] for m in _MODELS.values() if backend in m.prices}


class _Specs(Mapping[str, "type[RenderSpec]"]):
    """A live, read-only view of the registry as ``{model id: request class}`` (the 0.2 ``SPECS`` dict)."""

    def __getitem__(self, model_id: str) -> type[RenderSpec]:
        return model_info(model_id).spec

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_MODELS))

    def __len__(self) -> int:
        return len(_MODELS)

    def __repr__(self) -> str:
        return f"SPECS({', '.join(_MODELS)})"


SPECS: Final[Mapping[str, type[RenderSpec]]] = _Specs()
"""Each registered model id → its request class."""

__all__ = [
    "SPECS", "ModelInfo", "PriceKey", "PriceRows", "built_in_prices", "model_info", "models", "register",
    "unregister",
]  # fmt: skip
