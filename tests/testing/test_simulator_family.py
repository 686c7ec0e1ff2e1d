"""The simulator's Ray 3.2 family (generate, edit, reframe) over HTTP, and its independence from the provider.

Renders move on a :class:`ManualClock`; ``finish`` jumps far enough ahead for any render to end.
"""

from __future__ import annotations

import ast
import base64
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_luma.testing import (
    DEFAULT_TEST_API_KEY,
    GenerationRecord,
    LumaSimulator,
    LumaSimulatorServer,
    ManualClock,
    sample_mp4,
)

GENERATE, EDIT, REFRAME = "luma-ray-3-2-generate", "luma-ray-3-2-edit", "luma-ray-3-2-reframe"
T0 = 1_750_000_000.0
MP4_B64 = base64.b64encode(sample_mp4()).decode()
INLINE = {"source_data": MP4_B64, "source_media_type": "video/mp4"}
SOURCE = "<source>"  # replaced by the generation id of a completed 16:9, 5-s generate


@dataclass
class Api:
    """The simulator over HTTP, with its clock and state."""

    server: LumaSimulatorServer
    http: httpx.Client
    clock: ManualClock

    @property
    def sim(self) -> LumaSimulator:
        return self.server.simulator

    def post(self, model: str, payload: dict[str, Any]) -> httpx.Response:
        return self.http.post("/requests", json={"model": model, "payload": payload})

    def create(self, model: str, **payload: Any) -> str:
        response = self.post(model, {"prompt": "make it autumn", **payload})
        assert response.status_code == 200, response.text
        return str(response.json()["request_id"])

    def get(self, request_id: str) -> dict[str, Any]:
        response = self.http.get(f"/requests/{request_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def finish(self, request_id: str) -> dict[str, Any]:
        self.clock.advance(10_000)
        return self.get(request_id)

    def rendered(self, model: str, **payload: Any) -> tuple[str, GenerationRecord]:
        """Submit, render to success; returns the generation id and the record."""
        request_id = self.create(model, **payload)
        assert self.finish(request_id)["status"] == "success"
        record = self.sim.generation(request_id)
        assert record.generation_id is not None
        return record.generation_id, record


@pytest.fixture
def api() -> Iterator[Api]:
    clock = ManualClock(T0)
    with (
        LumaSimulatorServer(clock=clock) as server,
        httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {DEFAULT_TEST_API_KEY}"}, timeout=5.0
        ) as http,
    ):
        yield Api(server, http, clock)


def with_source(api: Api, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with :data:`SOURCE` replaced by a fresh completed generation."""
    if payload.get("source_generation_id") != SOURCE:
        return payload
    generation_id, _ = api.rendered(GENERATE)
    return {**payload, "source_generation_id": generation_id}


# -- payload rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "payload"),
    [
        (EDIT, {"source_generation_id": SOURCE}),
        (EDIT, {"source_generation_id": SOURCE, "resolution": "1080p", "edit_strength": "reimagine_3"}),
        (EDIT, {"source_generation_id": SOURCE, "edit_auto_controls": True, "pose_strength": "medium"}),
        (EDIT, {"source_generation_id": SOURCE, "edit_auto_controls": False, "edit_strength": "adhere_1"}),
        (EDIT, {**INLINE, "resolution": "540p"}),
        (EDIT, {**INLINE, "source_generation_id": "", "source_media_type": "video/quicktime"}),  # "" = unset
        (REFRAME, {"source_generation_id": SOURCE, "aspect_ratio": "9:16"}),
        (REFRAME, {"source_generation_id": SOURCE, "aspect_ratio": "21:9", "resolution": "1080p"}),
        (REFRAME, {**INLINE, "aspect_ratio": "16:9"}),  # an inline source's ratio is unknown: any ratio goes
    ],
)
def test_valid_edit_and_reframe_payloads_render(api: Api, model: str, payload: dict[str, Any]) -> None:
    payload = with_source(api, payload)
    request_id = api.create(model, **payload)
    body = api.finish(request_id)
    assert (body["model"], body["status"]) == (model, "success")
    assert body["payload"] == {"prompt": "make it autumn", **payload}
    assert api.sim.generation(request_id).model == model


@pytest.mark.parametrize(
    ("model", "payload", "fragments"),
    [
        (EDIT, {"source_generation_id": SOURCE, "prompt": "   "}, ["prompt", "blank"]),
        (EDIT, {"source_generation_id": SOURCE, "prompt": "x" * 6001}, ["prompt", "6001"]),
        (EDIT, {"source_generation_id": SOURCE, "prompt": None}, ["prompt: is required"]),
        (EDIT, {}, ["source_generation_id or source_data"]),
        (EDIT, {**INLINE, "source_generation_id": SOURCE}, ["source_generation_id and source_data"]),
        (EDIT, {"source_data": MP4_B64}, ["source_media_type is required"]),
        (EDIT, {"source_generation_id": SOURCE, "source_media_type": "video/mp4"}, ["source_media_type"]),
        (EDIT, {**INLINE, "source_media_type": "image/png"}, ["source_media_type", "image/png"]),
        (EDIT, {"source_generation_id": SOURCE, "resolution": "4k"}, ["resolution", "'4k'"]),
        (EDIT, {"source_generation_id": SOURCE, "edit_strength": "flex_4"}, ["edit_strength", "flex_4"]),
        (EDIT, {"source_generation_id": SOURCE, "edit_auto_controls": "yes"}, ["edit_auto_controls", "true or"]),
        (
            EDIT,
            {"source_generation_id": SOURCE, "edit_auto_controls": True, "edit_strength": "flex_1"},
            ["edit_auto_controls", "edit_strength", "mutually exclusive"],
        ),
        (EDIT, {"source_generation_id": SOURCE, "pose_strength": ""}, ["pose_strength"]),
        (EDIT, {"source_generation_id": "None"}, ["source_generation_id", "'None'"]),
        *(
            (EDIT, {"source_generation_id": SOURCE, name: value}, [name, "not a parameter of luma-ray-3-2-edit"])
            for name, value in [
                ("duration", "5s"),
                ("loop", True),
                ("hdr", True),
                ("aspect_ratio", "1:1"),
                ("frames", 120),
            ]
        ),
        (REFRAME, {"source_generation_id": SOURCE}, ["aspect_ratio: is required"]),
        (REFRAME, {"source_generation_id": SOURCE, "aspect_ratio": "5:4"}, ["aspect_ratio", "5:4"]),
        (REFRAME, {"source_generation_id": SOURCE, "aspect_ratio": "2:1"}, ["aspect_ratio", "image-only"]),
        (REFRAME, {"source_generation_id": SOURCE, "aspect_ratio": "1:1", "hdr": True}, ["hdr", "SDR only"]),
        (REFRAME, {"aspect_ratio": "1:1"}, ["source_generation_id or source_data"]),
        (REFRAME, {"source_generation_id": SOURCE, "aspect_ratio": "1:1", "seed": 1}, ["seed", "not a parameter"]),
        (REFRAME, {"source_generation_id": SOURCE, "aspect_ratio": 1.5}, ["aspect_ratio", "must be a string"]),
    ],
)
def test_invalid_edit_and_reframe_payloads_get_400_naming_the_field(
    api: Api, model: str, payload: dict[str, Any], fragments: list[str]
) -> None:
    payload = with_source(api, {"prompt": "make it autumn", **payload})
    before = len(api.sim.generations())
    response = api.post(model, {k: v for k, v in payload.items() if v is not None})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    for fragment in fragments:
        assert fragment in error
    assert len(api.sim.generations()) == before


@pytest.mark.parametrize(
    ("source_data", "fragment"),
    [
        ("not base64 at all!", "is not valid base64"),
        ("QUJD", "no 'ftyp' box"),  # valid base64 of b"ABC"
        (base64.b64encode(b"\x00\x00\x00\x18moov" + bytes(16)).decode(), "no 'ftyp' box"),
        (MP4_B64[:-3], "is not valid base64"),  # cut mid-quantum
    ],
)
@pytest.mark.parametrize("model", [EDIT, REFRAME])
def test_source_data_must_be_base64_of_an_mp4(api: Api, model: str, source_data: str, fragment: str) -> None:
    payload = {"prompt": "x", "aspect_ratio": "1:1", "source_data": source_data, "source_media_type": "video/mp4"}
    if model == EDIT:
        del payload["aspect_ratio"]
    response = api.post(model, payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("source_data: ") and fragment in error


# -- sources: completed generations only, facts carried over ------------------------------------------------------


@pytest.mark.parametrize("source_state", ["unknown", "rendering", "failed"])
@pytest.mark.parametrize("model", [EDIT, REFRAME])
def test_source_must_be_a_completed_generation_or_the_request_fails_later(
    api: Api, model: str, source_state: str
) -> None:
    generation_id = "not-a-generation"
    if source_state != "unknown":
        source = api.create(GENERATE)
        if source_state == "failed":
            api.sim.fail_now(source)
        # Generation ids are only revealed on success; a test may peek at the simulator's own record.
        generation_id = api.sim._jobs[source].generation_id
    extra = {"aspect_ratio": "1:1"} if model == REFRAME else {}
    request_id = api.create(model, source_generation_id=generation_id, **extra)
    assert api.get(request_id)["status"] == "queued"
    body = api.finish(request_id)
    reason = f"source_generation_id {generation_id!r} does not name a completed generation"
    assert (body["status"], body["error"], body["outcome"]) == (
        "failed",
        reason,
        {"error": reason, "failure_code": "invalid_request"},
    )
    record = api.sim.generation(request_id)
    assert (record.source_generation_id, record.chained_from, record.chained_from_request_ids) == (
        generation_id,
        (generation_id,),
        (),
    )


def test_chain_generate_reframe_edit_carries_ratio_and_duration(api: Api) -> None:
    first_id, first = api.rendered(GENERATE, duration="10s", aspect_ratio="9:16")
    assert (first.model, first.aspect_ratio, first.duration, first.source_generation_id) == (
        GENERATE,
        "9:16",
        "10s",
        None,
    )
    reframe_id, reframed = api.rendered(REFRAME, source_generation_id=first_id, aspect_ratio="21:9")
    assert (reframed.aspect_ratio, reframed.duration) == ("21:9", "10s")  # new ratio, source's duration
    assert (reframed.source_generation_id, reframed.chained_from_request_ids) == (first_id, (first.request_id,))
    assert reframed.finishes_at - reframed.created_at == 120  # 720p, 10 s: as a 10-s generate
    edit_id, edited = api.rendered(EDIT, source_generation_id=reframe_id, resolution="1080p")
    assert (edited.aspect_ratio, edited.duration) == ("21:9", "10s")  # keeps both
    assert edited.finishes_at - edited.created_at == 240
    assert edited.chained_from_request_ids == (reframed.request_id,)
    # An extend of the edit is one 5-s block, and a generate may chain from an edit.
    _, extended = api.rendered(GENERATE, start_frame_generation_id=edit_id)
    assert (extended.aspect_ratio, extended.duration) == ("16:9", "5s")


def test_inline_source_counts_as_five_seconds_of_unknown_ratio(api: Api) -> None:
    _, edited = api.rendered(EDIT, **INLINE)
    assert (edited.aspect_ratio, edited.duration, edited.source_generation_id) == (None, "5s", None)
    assert edited.finishes_at - edited.created_at == 60
    reframe_id, reframed = api.rendered(REFRAME, aspect_ratio="4:3", **INLINE)
    assert (reframed.aspect_ratio, reframed.duration) == ("4:3", "5s")
    _, again = api.rendered(REFRAME, aspect_ratio="1:1", source_generation_id=reframe_id)
    assert (again.aspect_ratio, again.duration) == ("1:1", "5s")


@pytest.mark.parametrize(("source_ratio", "payload"), [("16:9", {}), ("3:4", {"aspect_ratio": "3:4"})])
def test_reframe_to_the_ratio_of_a_known_source_gets_400(api: Api, source_ratio: str, payload: dict[str, Any]) -> None:
    source_id, _ = api.rendered(GENERATE, **payload)
    before = len(api.sim.generations())
    response = api.post(REFRAME, {"prompt": "x", "source_generation_id": source_id, "aspect_ratio": source_ratio})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"aspect_ratio: {source_ratio!r} is already the aspect ratio")
    assert len(api.sim.generations()) == before
    # The same ratio is fine for a source that was itself reframed to something else first.
    other_id, _ = api.rendered(REFRAME, source_generation_id=source_id, aspect_ratio="1:1")
    api.rendered(REFRAME, source_generation_id=other_id, aspect_ratio=source_ratio)


# -- responses, render times ----------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["outcome", "flat"])
@pytest.mark.parametrize("model", [EDIT, REFRAME])
def test_get_success_shape_is_the_generate_shape_with_the_model_id(api: Api, model: str, style: str) -> None:
    api.sim.configure(response_style=style)
    source_id, _ = api.rendered(GENERATE)
    extra = {"aspect_ratio": "1:1"} if model == REFRAME else {}
    request_id = api.create(model, source_generation_id=source_id, **extra)
    assert api.get(request_id)["model"] == model
    body = api.finish(request_id)
    common = {"request_id", "model", "status", "created_at", "updated_at", "queued_at", "payload"}
    if style == "flat":
        assert set(body) == common | {"generation_id", "video_url"}
        video_url, generation_id = body["video_url"], body["generation_id"]
    else:
        assert set(body) == common | {"outcome"}
        assert set(body["outcome"]) == {"generation_id", "video_url", "media_urls"}
        video_url, generation_id = body["outcome"]["video_url"], body["outcome"]["generation_id"]
        assert body["outcome"]["media_urls"] == [{"url": video_url}]
    assert (body["model"], body["payload"]["source_generation_id"]) == (model, source_id)
    assert video_url.startswith(f"{api.server.root_url}/files/{generation_id}.mp4?expires=")
    assert httpx.get(video_url).content == sample_mp4()


def test_render_seconds_for_takes_a_payload_and_a_model(api: Api) -> None:
    sim = api.sim
    assert sim.render_seconds_for({"prompt": "x"}) == 60
    assert sim.render_seconds_for({"prompt": "x", "resolution": "1080p", "hdr": True}) == 300
    source_id, _ = api.rendered(GENERATE, duration="10s")
    reframe = {"prompt": "x", "aspect_ratio": "1:1", "source_generation_id": source_id, "resolution": "540p"}
    assert sim.render_seconds_for(reframe, model=REFRAME) == 80
    assert sim.render_seconds_for(INLINE, model=EDIT) == 60
    sim.configure(time_factor=0.5)
    assert sim.render_seconds_for(reframe, model=REFRAME) == 40
    sim.configure(render_seconds=3.0)
    assert sim.render_seconds_for(reframe, model=REFRAME) == 3.0


# -- independence from the provider's own models --------------------------------------------------------------

# The cluster harness, which runs the provider, lives in tests/harness: every module of the package's testing/ is held
# to the rule, the pytest plugin and the dag.test() fixture included.
TESTING = Path(__file__).resolve().parents[2] / "airflow_provider_luma" / "testing"


def provider_imports(path: Path) -> list[str]:
    """Modules under ``airflow_provider_luma`` but outside ``.testing`` that ``path`` imports, anywhere in it."""
    package = ["airflow_provider_luma", "testing"]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # "from airflow_provider_luma import models" imports a submodule by name.
            targets = [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [
            t
            for t in targets
            if (t == "airflow_provider_luma" or t.startswith("airflow_provider_luma."))
            and t != "airflow_provider_luma.testing"
            and not t.startswith("airflow_provider_luma.testing.")
        ]
    return found


def test_simulator_imports_nothing_from_the_provider_outside_testing() -> None:
    checked = sorted(TESTING.glob("*.py"))
    assert {p.name for p in checked} >= {"_state.py", "_rules.py", "_types.py", "_server.py", "pytest_plugin.py"}
    offenders = {p.name: imports for p in checked if (imports := provider_imports(p))}
    assert offenders == {}


def test_the_import_check_sees_every_spelling(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import airflow_provider_luma.models\n"
        "from airflow_provider_luma import exceptions, testing\n"
        "from .. import client\n"
        "from ..hooks import LumaHook\n"
        "from ._types import Job\n"
        "from airflow_provider_luma.testing._rules import RULES\n"
        "def lazy():\n    from airflow_provider_luma.models import VideoRequest\n"
    )
    assert provider_imports(sample) == [
        "airflow_provider_luma.models",
        "airflow_provider_luma.exceptions",
        "airflow_provider_luma.client",
        "airflow_provider_luma.hooks.LumaHook",
        "airflow_provider_luma.models.VideoRequest",
    ]


def test_serving_loads_no_provider_module_and_no_pydantic() -> None:
    code = (
        "import sys, airflow_provider_luma.testing.__main__, airflow_provider_luma.testing._server; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic' "
        "or (m.startswith('airflow_provider_luma.') and not m.startswith('airflow_provider_luma.testing'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
