"""The model registry: a sibling model is its spec module (plus its operator class and the simulator's rule tables).

A hypothetical ``luma-ray-3-2-upscale`` (a source generation and a resolution, no prompt) is declared and registered
here only, and every reader of the registry picks it up: both wires build its request, pricing prices it (or says
why not) and the gallery describes its clips; the provider info names no model at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Literal

import pytest
from pydantic import Field

from airflow_provider_luma import get_provider_info
from airflow_provider_luma.core.backends import BACKEND_NAMES, DEFAULT_BACKEND, gmi, luma_agents
from airflow_provider_luma.core.errors import LumaValidationError
from airflow_provider_luma.core.pricing import PriceTable, estimate
from airflow_provider_luma.core.specs import SPECS, ModelInfo, RenderSpec, models, register
from airflow_provider_luma.core.specs.base import GenerationId
from airflow_provider_luma.core.specs.registry import unregister
from airflow_provider_luma.plugins._model import TaskRow, is_luma_task, link_chain

UPSCALE = "luma-ray-3-2-upscale"


class UpscaleRequest(RenderSpec):
    """A hypothetical sibling: re-render a prior generation at a higher resolution (no prompt)."""

    MODEL_ID = UPSCALE
    SOURCE_FIELDS = ("source_generation_id",)

    source_generation_id: GenerationId = Field(description="The prior generation to upscale.")
    resolution: Literal["1080p", "4k"] = Field("1080p", description="The output resolution.")
    denoise: bool | None = Field(None, description="A field the native wire has no place for.")

    @property
    def mode(self) -> str:
        """Always ``upscale`` (a mode the built-in :class:`Mode` enum does not name)."""
        return "upscale"


UPSCALE_INFO = ModelInfo(
    spec=UpscaleRequest,
    title="upscale",
    native_type="video_upscale",
    modes={"upscale": "upscaled"},
    operators={"LumaUpscaleVideoOperator": "upscaled"},
    prices={"gmi": {("SDR", "1080p"): Decimal("0.50")}},
)


@pytest.fixture
def upscale() -> Iterator[ModelInfo]:
    register(UPSCALE_INFO)
    try:
        yield UPSCALE_INFO
    finally:
        unregister(UPSCALE)


def spec(**params: object) -> RenderSpec:
    return SPECS[UPSCALE].validate_params({"source_generation_id": "g-1", **params})


def test_the_registry_is_the_list_of_models(upscale: ModelInfo) -> None:
    assert SPECS[UPSCALE] is UpscaleRequest
    assert [m.model_id for m in models()][-1] == UPSCALE
    assert spec().source_generation_ids == ["g-1"]
    with pytest.raises(LumaValidationError, match="source_generation_id"):
        SPECS[UPSCALE].validate_params({"resolution": "4k"})


def test_gone_once_unregistered() -> None:
    assert UPSCALE not in SPECS
    with pytest.raises(KeyError, match="unknown Luma model 'luma-ray-3-2-upscale'"):
        SPECS[UPSCALE]


def test_gmi_wire_builds_its_request(upscale: ModelInfo) -> None:
    call = gmi.build_submit(spec(resolution="4k"))
    assert (call.method, call.path, call.model) == ("POST", "/requests", UPSCALE)
    assert call.json == {"model": UPSCALE, "payload": {"source_generation_id": "g-1", "resolution": "4k"}}


def test_native_wire_builds_its_request_without_a_prompt(upscale: ModelInfo) -> None:
    call = luma_agents.build_submit(spec(resolution="4k"))
    assert (call.method, call.path) == ("POST", "/generations")
    assert call.json == {
        "model": "ray-3.2",
        "type": "video_upscale",
        "source": {"generation_id": "g-1"},
        "video": {"resolution": "4k"},
    }


def test_native_wire_refuses_a_field_it_has_no_place_for(upscale: ModelInfo) -> None:
    assert luma_agents.unsupported(spec(resolution="4k")) == []
    assert luma_agents.unsupported(spec(denoise=True)) == ["denoise: the Luma Agents API request has no field for it"]
    assert gmi.build_submit(spec(denoise=True)).json["payload"]["denoise"] is True
    assert gmi.unsupported(spec(denoise=True)) == []


def test_pricing_reads_its_rows(upscale: ModelInfo) -> None:
    est = estimate(spec(resolution="1080p"), PriceTable())
    assert (est.cost, est.source) == (Decimal("0.50"), "built-in")
    assert estimate(spec(resolution="4k"), PriceTable()).cost is None  # no 4k row: unknown, not invented


def test_pricing_says_unpriced_where_the_backend_has_no_rows(upscale: ModelInfo) -> None:
    est = estimate(spec(), PriceTable.with_overrides(None, backend="luma_agents"))
    assert est.cost is None
    assert est.unknown_because is not None
    assert est.unknown_because.startswith(f"the Luma Agents API publishes no official video price (for {UPSCALE})")
    priced = PriceTable.with_overrides({UPSCALE: {"SDR": {"1080p": 0.7}}}, backend="luma_agents")
    assert estimate(spec(), priced).cost == Decimal("0.7")


def test_gallery_describes_its_clips(upscale: ModelInfo) -> None:
    assert is_luma_task(TaskRow("up", -1, "running", "LumaUpscaleVideoOperator"), {})
    clips = [
        {"key": "gen", "generation_id": "g-1", "source_generation_ids": [], "mode": "text_to_video"},
        {"key": "up", "generation_id": "g-2", "source_generation_ids": ["g-1"], "mode": "upscale"},
        # Not finished: no mode yet, so the operator class names the edge.
        {"key": "up2", "generation_id": None, "source_generation_ids": [], "pending_sources": ["g-1"],
         "operator": "LumaUpscaleVideoOperator"},
    ]  # fmt: skip
    assert link_chain(clips) == [
        {"from": "gen", "to": "up", "kind": "upscaled"},
        {"from": "gen", "to": "up2", "kind": "upscaled"},
    ]


def test_provider_info_names_no_model_and_every_backend() -> None:
    # Provider discovery runs inside `import airflow.sdk`: the provider info must not need the registry.
    info = get_provider_info()
    assert not any(m.model_id in str(info) or m.title in info["description"] for m in models())
    (conn,) = info["connection-types"]
    assert conn["conn-fields"]["api"]["schema"]["enum"] == [*BACKEND_NAMES, None]
    assert conn["ui-field-behaviour"]["placeholders"]["api"] == DEFAULT_BACKEND


def test_a_model_id_or_native_type_is_registered_once(upscale: ModelInfo) -> None:
    register(UPSCALE_INFO)  # the same facts again (a re-imported module) are no clash
    with pytest.raises(ValueError, match="already registered"):
        register(ModelInfo(spec=UpscaleRequest, title="x", native_type="video_x", modes={}))
    with pytest.raises(ValueError, match="native type 'video_edit'"):
        register(ModelInfo(spec=type("Other", (UpscaleRequest,), {"MODEL_ID": "other"}), title="o",
                           native_type="video_edit", modes={}))  # fmt: skip


def test_every_render_operator_names_a_registered_model() -> None:
    import airflow_provider_luma.operators as ops

    classes = [getattr(ops, name) for name in ops.__all__]
    render_ops = [c for c in classes if isinstance(c, type) and getattr(c, "MODEL_ID", None)]
    assert len(render_ops) == 5
    for cls in render_ops:
        info = next(m for m in models() if m.model_id == cls.MODEL_ID)
        assert cls.__name__ in info.operators, f"{cls.__name__} is not in {cls.MODEL_ID}'s registered operators"
