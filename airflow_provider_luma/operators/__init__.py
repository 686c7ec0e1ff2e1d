"""Operators that render Luma Ray 3.2 videos: generate, extend, interpolate, edit, reframe, and download.

Importing this package is what a DAG file does at parse time, so its modules import only ``airflow.sdk``: the HTTP
client, the hook, the pydantic specs and the trigger are imported inside methods.

Every render operator returns (and, with ``multiple_outputs``, pushes as separate XCom keys) a dict with at least
``generation_id``, ``request_id``, ``model``, ``backend``, ``mode``, ``source_generation_ids``, ``video_url``,
``exr_url``, ``video_path``, ``exr_path``, ``estimated_cost_usd`` and ``billed_blocks``, so
``task.output["generation_id"]`` chains into the next render, in any order across the family.
"""

from __future__ import annotations

from airflow_provider_luma.operators._base import DEFAULT_ASSET_ALIAS, LumaRenderOperator, LumaVideoLink
from airflow_provider_luma.operators.download import LumaDownloadVideoOperator
from airflow_provider_luma.operators.generate import (
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaInterpolateVideoOperator,
)
from airflow_provider_luma.operators.review import LumaReview
from airflow_provider_luma.operators.sourced import LumaEditVideoOperator, LumaReframeVideoOperator

__all__ = [
    "DEFAULT_ASSET_ALIAS",
    "LumaDownloadVideoOperator",
    "LumaEditVideoOperator",
    "LumaExtendVideoOperator",
    "LumaGenerateVideoOperator",
    "LumaInterpolateVideoOperator",
    "LumaReframeVideoOperator",
    "LumaRenderOperator",
    "LumaReview",
    "LumaVideoLink",
]
