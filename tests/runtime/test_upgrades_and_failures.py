"""Upgrades never pay twice (records and triggers written by 0.1.0 resume), a failure that sent nothing never looks
billed, one poll-error classifier, messages that name what is wrong, and media URLs that are never opened."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_luma.core.errors import LumaDownloadError, LumaValidationError
from airflow_provider_luma.core.http import LumaClient
from airflow_provider_luma.core.media import download, media_client
from airflow_provider_luma.core.specs import GenerateRequest
from airflow_provider_luma.hooks import LumaHook
from airflow_provider_luma.operators import LumaGenerateVideoOperator
from airflow_provider_luma.runtime.record import RECORD_VERSION, STATE_KEY, fingerprint
from airflow_provider_luma.testing import Fault, LumaSimulatorServer
from airflow_provider_luma.triggers import LumaGenerationTrigger
from tests._helpers import MemoryStateStore, make, posts, run_deferred

FIXTURES = json.loads((Path(__file__).parents[1] / "fixtures" / "v0_1_state.json").read_text())


def with_record(record: dict[str, Any]) -> dict[str, Any]:
    store = MemoryStateStore()
    store.values[STATE_KEY] = record
    return {"task_state_store": store}


async def test_a_record_written_by_0_1_re_attaches_without_a_new_create(luma_conn_env: LumaSimulatorServer) -> None:
    entry = FIXTURES["records"][0]
    assert entry["record"]["phase"] == "submitted" and "version" not in entry["record"]
    in_flight = LumaHook().submit_generation(GenerateRequest.validate_params(entry["params"])).request_id
    context = with_record({**entry["record"], "request_id": in_flight})
    result = await run_deferred(lambda: make(**entry["params"]), context)
    assert result["request_id"] == in_flight
    assert len(posts(luma_conn_env)) == 1, "only the render 0.1 bought; the upgrade bought nothing"
    assert context["task_state_store"].values[STATE_KEY]["version"] == RECORD_VERSION  # rewritten in the new shape


def test_an_ambiguous_record_written_by_0_1_still_fails_loudly(luma_conn_env: LumaSimulatorServer) -> None:
    entry = FIXTURES["records"][1]
    with pytest.raises(AirflowFailException, match="may exist and be billed"):
        make(**entry["params"]).execute(with_record(entry["record"]))
    assert luma_conn_env.simulator.request_log == []


async def test_a_trigger_serialized_by_0_1_still_runs(luma_conn_env: LumaSimulatorServer) -> None:
    classpath, kwargs = FIXTURES["trigger"]
    assert classpath == "airflow_provider_luma.triggers.LumaGenerationTrigger"
    request_id = LumaHook().submit_generation(GenerateRequest.validate_params({"prompt": "p"})).request_id
    now = time.time()
    kwargs = {**kwargs, "request_id": request_id, "deadline": now + 60, "first_poll_at": now, "submitted_at": now}
    trigger = LumaGenerationTrigger(**kwargs)
    assert (trigger.backend, trigger.model) == ("gmi", None)
    (event,) = [e.payload async for e in trigger.run()]
    assert (event["status"], event["request_id"]) == ("success", request_id)


def test_the_fingerprint_is_what_is_sent_so_a_new_optional_field_changes_nothing() -> None:
    class LaterRelease(GenerateRequest):
        new_knob: str | None = None  # an optional parameter a later release might add

    params = {"prompt": "p", "resolution": "540p"}
    now, later = GenerateRequest.validate_params(params), LaterRelease.validate_params(params)
    assert later.payload() == now.payload() == params
    assert fingerprint(later, "gmi") == fingerprint(now, "gmi")
    assert fingerprint(now, "gmi") != fingerprint(GenerateRequest.validate_params({**params, "loop": True}), "gmi")


# -- a failure that sent nothing is never reported as possibly billed ------------------------------------------


@pytest.mark.parametrize(
    ("conn", "fragment"),
    [
        (None, "Airflow connection 'nope' is not defined"),
        ({"conn_type": "luma", "host": "http://127.0.0.1:9/x"}, "has no API key"),
    ],
    ids=["missing-connection", "missing-key"],
)
def test_a_connection_problem_is_not_a_possible_charge_on_any_try(
    luma_conn_env: LumaSimulatorServer, monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any] | None, fragment: str
) -> None:
    if conn is not None:
        monkeypatch.setenv("AIRFLOW_CONN_NOPE", json.dumps(conn))
    context = {"task_state_store": MemoryStateStore()}
    for _try in (1, 2, 3):
        with pytest.raises(AirflowFailException) as caught:
            make(prompt="p", luma_conn_id="nope").execute(context)
        text = str(caught.value)
        assert fragment in text and "nothing was sent" in text
        assert "billed" not in text and "Luma rejected" not in text
    assert context["task_state_store"].values.get(STATE_KEY, {}).get("phase") != "submitting"
    assert luma_conn_env.simulator.request_log == []


def test_a_refused_connection_is_not_called_a_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused before a byte is sent.
    conn = {"conn_type": "luma", "host": "http://127.0.0.1:9/api", "password": "k-123456"}
    monkeypatch.setenv("AIRFLOW_CONN_LUMA_DEFAULT", json.dumps(conn))
    # The client binds time.sleep as its default ``sleep`` when the module is loaded: patch that default.
    slept: list[float] = []
    monkeypatch.setitem(LumaClient.__init__.__kwdefaults__, "sleep", slept.append)
    with pytest.raises(AirflowException) as caught:
        make(prompt="p").execute({"task_state_store": MemoryStateStore()})
    assert slept, "a refused connection is retried (nothing was sent, so a retry cannot buy twice)"
    assert "Could not reach Luma (nothing was accepted)" in str(caught.value)
    assert "Luma rejected" not in str(caught.value)


@pytest.mark.parametrize("deferrable", [True, False], ids=["trigger", "worker-loop"])
async def test_a_402_while_polling_stops_at_once_in_trigger_and_worker(
    luma_conn_env: LumaSimulatorServer, deferrable: bool
) -> None:
    sim = luma_conn_env.simulator
    op = make(prompt="p", deferrable=deferrable, timeout=60)
    sim.inject(Fault.http_error(402, "Insufficient credits", on="poll", times=5))
    with pytest.raises((AirflowFailException, TaskDeferred)) as caught:
        op.execute({"task_state_store": MemoryStateStore()})
    if deferrable:
        assert isinstance(caught.value, TaskDeferred)
        (event,) = [e.payload async for e in caught.value.trigger.run()]
        assert (event["status"], event["retryable"]) == ("error", False)
        assert "Insufficient credits" in event["message"]
    else:
        assert "Insufficient credits" in str(caught.value)
    # Five 402s are queued: a loop that polled on (until the deadline) would meet more than the first.
    polls = [e for e in sim.request_log if e.method == "GET"]
    assert [e.status for e in polls] == [402], "a permanent poll error must not be polled again"


def test_output_path_errors_name_output_path_not_the_model(luma_conn_env: LumaSimulatorServer) -> None:
    with pytest.raises(LumaValidationError) as parsed:  # a literal: the DAG file's import fails
        make(prompt="p", output_path="relative/clips/")
    assert str(parsed.value).startswith("output_path: got 'relative/clips/'")
    op = make(prompt="p", output_path="{{ params.folder }}")
    op.output_path = "relative/clips/"  # as templating renders it
    with pytest.raises(AirflowFailException) as caught:
        op.execute({"task_state_store": MemoryStateStore()})
    assert str(caught.value).startswith("output_path: got 'relative/clips/'")


# -- media URLs from a response are untrusted ------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.opened = 0

    def open(self) -> Any:
        self.opened += 1
        raise AssertionError("nothing may be written")

    def commit(self, size: int) -> None: ...
    def discard(self) -> None: ...


@pytest.mark.parametrize("url", ["file:///etc/hostname", "ftp://127.0.0.1/x.mp4", "data:video/mp4;base64,AAAA"])
def test_non_https_media_urls_are_never_opened(url: str) -> None:
    sink = _Sink()
    with pytest.raises(LumaDownloadError, match="is not opened") as caught:
        download(media_client(), lambda fresh: url, sink, label="video")
    assert sink.opened == 0 and url not in str(caught.value)


@pytest.mark.parametrize("location", ["file:///etc/hostname", "ftp://127.0.0.1/v.mp4", "http://example.com/v.mp4"])
def test_a_redirect_off_the_allow_list_is_refused(location: str) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.end_headers()

        def log_message(self, *args: Any) -> None: ...

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sink = _Sink()
        # urllib itself refuses file: redirects (HTTP 302 error); ftp: and plain http: reach our check.
        with pytest.raises(LumaDownloadError, match="redirected to a URL that is not opened|HTTP 302"):
            download(media_client(), lambda fresh: f"http://127.0.0.1:{server.server_port}/v.mp4", sink, label="v")
        assert sink.opened == 0
    finally:
        server.shutdown()


def test_the_operators_import_nothing_heavy() -> None:
    assert LumaGenerateVideoOperator.__module__ == "airflow_provider_luma.operators.generate"
