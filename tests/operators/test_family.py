"""The Ray 3.2 family through the real client and the simulator: chains across generate, extend, reframe and edit in
both directions, inline source videos, prices from the connection, and what every sibling templates."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

import airflow_provider_luma.testing as testing_pkg
from airflow_provider_luma.core.specs.base import SourceFacts
from airflow_provider_luma.operators import (
    LumaDownloadVideoOperator,
    LumaEditVideoOperator,
    LumaExtendVideoOperator,
    LumaGenerateVideoOperator,
    LumaInterpolateVideoOperator,
    LumaReframeVideoOperator,
    LumaRenderOperator,
)
from airflow_provider_luma.operators._base import COMMON_TEMPLATE_FIELDS
from airflow_provider_luma.runtime.plan import upstream_source_facts
from airflow_provider_luma.testing import LumaSimulatorServer
from tests._helpers import fresh_context, make, posts, run_deferred

SAMPLE = Path(testing_pkg.__file__).with_name("sample.mp4")


async def render(cls: Any, **kwargs: Any) -> dict[str, Any]:
    return await run_deferred(lambda: make(cls, **kwargs), fresh_context())


async def test_generate_extend_reframe_edit_extend_chain(luma_conn_env: LumaSimulatorServer) -> None:
    sim = luma_conn_env.simulator
    master = await render(LumaGenerateVideoOperator, prompt="a 16:9 master", resolution="540p")
    longer = await render(
        LumaExtendVideoOperator, generation_id=master["generation_id"], prompt="on", resolution="540p"
    )
    social = await render(
        LumaReframeVideoOperator, source_generation_id=longer["generation_id"], aspect_ratio="9:16", prompt="sky"
    )
    film = await render(
        LumaEditVideoOperator, source_generation_id=social["generation_id"], prompt="35mm film", edit_strength="flex_2"
    )
    before = await render(
        LumaExtendVideoOperator, generation_id=film["generation_id"], direction="backward", prompt="an intro"
    )
    chain = [master, longer, social, film, before]
    assert [(r["model"], r["mode"]) for r in chain] == [
        ("luma-ray-3-2-generate", "text_to_video"),
        ("luma-ray-3-2-generate", "extend_forward"),
        ("luma-ray-3-2-reframe", "reframe"),
        ("luma-ray-3-2-edit", "edit"),
        ("luma-ray-3-2-generate", "extend_backward"),
    ]
    # Each result names what it was made from: the chain can be drawn from XCom alone.
    assert [r["source_generation_ids"] for r in chain] == [[], *[[r["generation_id"]] for r in chain[:-1]]]
    assert all(r["backend"] == "gmi" for r in chain)
    records = {r.generation_id: r for r in sim.generations()}
    assert records[social["generation_id"]].aspect_ratio == "9:16"  # reframe changed the ratio
    assert records[film["generation_id"]].aspect_ratio == "9:16"  # edit kept it
    sent = [e.payload for e in posts(luma_conn_env)]
    assert [s["model"] for s in sent] == [r["model"] for r in chain]
    assert sent[2]["payload"] == {
        "prompt": "sky",
        "source_generation_id": longer["generation_id"],
        "aspect_ratio": "9:16",
    }
    assert sent[3]["payload"] == {
        "prompt": "35mm film",
        "source_generation_id": social["generation_id"],
        "edit_strength": "flex_2",
    }
    assert (social["estimated_cost_usd"], film["estimated_cost_usd"]) == (None, None)  # no published price


async def test_edit_takes_a_video_the_user_already_has(luma_conn_env: LumaSimulatorServer, tmp_path: Path) -> None:
    result = await render(
        LumaEditVideoOperator, source_video=str(SAMPLE), prompt="make it autumn", edit_auto_controls=True
    )
    assert (result["model"], result["source_generation_ids"]) == ("luma-ray-3-2-edit", [])
    (sent,) = [e.payload for e in posts(luma_conn_env)]
    assert sent["payload"]["source_media_type"] == "video/mp4" and "source_generation_id" not in sent["payload"]
    assert len(sent["payload"]["source_data"]) > SAMPLE.stat().st_size  # base64 of the whole file


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [("still.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "is not an MP4"), ("missing.mp4", None, "does not exist")],
)
def test_a_bad_source_video_fails_before_any_http(
    luma_conn_env: LumaSimulatorServer, tmp_path: Path, name: str, content: bytes | None, fragment: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    op = make(LumaReframeVideoOperator, source_video=str(path), aspect_ratio="9:16", prompt="p")
    with pytest.raises(AirflowFailException, match=f"source_video: .*{fragment}"):
        op.execute(fresh_context())
    assert luma_conn_env.simulator.request_log == []


def test_unknown_price_with_a_cap_fails_before_any_http(luma_conn_env: LumaSimulatorServer) -> None:
    op = make(LumaEditVideoOperator, source_generation_id="g-1", prompt="p", max_cost_usd=1)
    with pytest.raises(AirflowFailException, match="cost of this luma-ray-3-2-edit render is unknown") as caught:
        op.execute(fresh_context())
    assert "in the Luma connection's extra" in str(caught.value)
    assert luma_conn_env.simulator.request_log == []


async def test_connection_prices_price_an_edit(
    luma_conn_env: LumaSimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = json.loads(luma_conn_env.airflow_conn_json())
    conn["extra"] = {"prices": {"luma-ray-3-2-edit": {"SDR": {"720p": 0.4}}}}
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", json.dumps(conn))
    master = await render(LumaGenerateVideoOperator, prompt="p", resolution="540p")
    # Outside a DAG run the source's duration is unknown: the estimate stays unknown rather than guessed...
    edit = await render(LumaEditVideoOperator, source_generation_id=master["generation_id"], prompt="p")
    assert edit["estimated_cost_usd"] is None
    # ...and with an inline video the duration is read from the file.
    inline = await render(LumaEditVideoOperator, source_video=str(SAMPLE), prompt="p")
    assert (inline["estimated_cost_usd"], inline["billed_blocks"]) == (0.4, 1)


class FakeTI:
    """The two XCom reads ``upstream_source_facts`` makes, over a dict of task id -> result."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        value = self.results[task_ids]
        return [v[key] for v in value] if isinstance(value, list) else value[key]


class FakeTask:
    upstream_task_ids = {"master", "fanout"}


@pytest.mark.parametrize(
    ("generation_id", "facts"),
    [
        ("g-master", SourceFacts("16:9", 10.0)),
        ("g-map-1", SourceFacts("9:16", 5.0)),  # a mapped upstream: the matching element's facts
        ("g-elsewhere", SourceFacts()),  # not made by an upstream task of this run: unknown
    ],
)
def test_source_facts_come_from_the_upstream_task_that_made_the_clip(generation_id: str, facts: SourceFacts) -> None:
    results = {
        "master": {"generation_id": "g-master", "aspect_ratio": "16:9", "duration": "10s"},
        "fanout": [
            {"generation_id": "g-map-0", "aspect_ratio": "1:1", "duration": "5s"},
            {"generation_id": "g-map-1", "aspect_ratio": "9:16", "duration": "5s"},
        ],
    }
    context = {"ti": FakeTI(results), "task": FakeTask()}
    assert upstream_source_facts(context, generation_id) == facts


SIBLINGS = [
    LumaGenerateVideoOperator,
    LumaExtendVideoOperator,
    LumaInterpolateVideoOperator,
    LumaEditVideoOperator,
    LumaReframeVideoOperator,
    LumaDownloadVideoOperator,
]


@pytest.mark.parametrize("cls", SIBLINGS, ids=lambda c: c.__name__)
def test_every_parameter_a_sibling_accepts_is_templated(cls: type[Any]) -> None:
    own = [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        # asset_alias becomes an outlet when the DAG is parsed, before anything is templated.
        if name not in ("self", "asset_alias") and p.kind is p.KEYWORD_ONLY
    ]
    assert set(own) <= set(cls.template_fields), set(own) - set(cls.template_fields)
    if issubclass(cls, LumaRenderOperator):
        assert set(COMMON_TEMPLATE_FIELDS) <= set(cls.template_fields)


async def test_interpolate_renders_a_templated_hdr(luma_conn_env: LumaSimulatorServer) -> None:
    first = await render(LumaGenerateVideoOperator, prompt="p")

    def factory() -> LumaInterpolateVideoOperator:
        op = make(LumaInterpolateVideoOperator, start=first["generation_id"], end="https://x/e.png", prompt="p",
                  hdr="{{ params.hdr }}", resolution="720p")  # fmt: skip
        op.hdr = "true"  # what templating renders from params={"hdr": True}
        return op

    result = await run_deferred(factory, fresh_context())
    assert (result["mode"], result["hdr"]) == ("interpolation", True)
    assert posts(luma_conn_env)[-1].payload["payload"]["hdr"] is True
