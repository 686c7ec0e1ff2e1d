"""One module per model: its strict request, rules, mode, price rows, expected time and the generations it consumes.

Importing this package imports every module in it, and each spec module registers its model in
:mod:`~airflow_provider_luma.core.specs.registry` (the one list of models): a new model is a new module here and
nothing else in ``core``. :data:`SPECS` is a live view of the registry, model id → request class. Airflow-free.
"""

from __future__ import annotations

import importlib
import pkgutil

from airflow_provider_luma.core.specs.base import Mode, RenderSpec, SourceFacts, is_unset
from airflow_provider_luma.core.specs.generate import GenerateRequest
from airflow_provider_luma.core.specs.registry import SPECS, ModelInfo, model_info, models, register
from airflow_provider_luma.core.specs.sourced import EditRequest, ReframeRequest

# Every spec module registers itself on import; importing them all here means no list of them is kept anywhere.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "SPECS", "EditRequest", "GenerateRequest", "Mode", "ModelInfo", "ReframeRequest", "RenderSpec", "SourceFacts",
    "is_unset", "model_info", "models", "register",
]  # fmt: skip
