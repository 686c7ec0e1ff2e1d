"""One module per model: its strict request, rules, mode, price rows, expected time and the generations it consumes.

Importing this package imports every spec module, and each registers its model in
:mod:`~airflow_provider_luma.core.specs.registry` (the one list of models); :data:`SPECS` is a live view of it,
model id → request class. Airflow-free.
"""

from __future__ import annotations

from airflow_provider_luma.core.specs.base import Mode, RenderSpec, SourceFacts, is_unset
from airflow_provider_luma.core.specs.generate import GenerateRequest
from airflow_provider_luma.core.specs.registry import SPECS, ModelInfo, model_info, models, register
from airflow_provider_luma.core.specs.sourced import EditRequest, ReframeRequest

__all__ = [
    "SPECS", "EditRequest", "GenerateRequest", "Mode", "ModelInfo", "ReframeRequest", "RenderSpec", "SourceFacts",
    "is_unset", "model_info", "models", "register",
]  # fmt: skip
