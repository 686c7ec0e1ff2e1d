"""One module per model: its strict request, rules, mode, price key, expected time and the generations it consumes.

:data:`SPECS` maps each GMI model id to its request class. Airflow-free.
"""

from __future__ import annotations

from typing import Final

from airflow_provider_luma.core.specs.base import Mode, RenderSpec, SourceFacts, is_unset
from airflow_provider_luma.core.specs.generate import GenerateRequest
from airflow_provider_luma.core.specs.sourced import EditRequest, ReframeRequest

SPECS: Final[dict[str, type[RenderSpec]]] = {
    cls.MODEL_ID: cls for cls in (GenerateRequest, EditRequest, ReframeRequest)
}

__all__ = ["SPECS", "EditRequest", "GenerateRequest", "Mode", "ReframeRequest", "RenderSpec", "SourceFacts", "is_unset"]
