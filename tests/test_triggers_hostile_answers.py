"""Hostile status answers through the real ``LumaGenerationTrigger``, on both wires (docs/security.md, "the poller").

Each case is a scripted server on 127.0.0.1 that answers the trigger's status polls with exact bytes: extra
answers behind a good one, bodies on a 204/304, answers arriving on an idle connection, compression bombs,
malformed chunk sizes, control characters in header values, answers about another render, a video URL that may
not be opened. Expected, per case: either the trigger still reports *this* render (its own generation id, never
another DAG's), or it stops after a few unusable answers in a row with a message that says the render may have
been bought and how to re-attach, long before the render's deadline. All cases of one wire run concurrently.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_luma.core.retry import MAX_UNUSABLE_ANSWERS
from airflow_provider_luma.triggers import LumaGenerationTrigger

KEY = "hostile-test-key-0123456789"
RID = "r1"
OTHER = "render-of-another-dag"
VIDEO = "http://127.0.0.1:9/own.mp4"  # loopback http: an URL the provider may open
DEADLINE = 60.0


@dataclass(frozen=True)
class Wire:
    name: str
    base_path: str
    extra: dict[str, str]

    def status(self, rid: str, state: str = "processing") -> bytes:
        if self.name == "gmi":
            return json.dumps({"request_id": rid, "status": state}).encode()
        return json.dumps({"id": rid, "state": state}).encode()

    def success(self, rid: str, url: str = VIDEO) -> bytes:
        if self.name == "gmi":
            body = {"request_id": rid, "status": "success", "generation_id": f"g-{rid}", "video_url": url}
        else:
            body = {"id": rid, "state": "completed", "output": [{"type": "video", "url": url}]}
        return json.dumps(body).encode()

    def generation_of(self, rid: str) -> str:
        return f"g-{rid}" if self.name == "gmi" else rid


WIRES = [Wire("gmi", "/api/v1/ie/requestqueue/apikey", {}), Wire("luma_agents", "/v1", {"api": "luma_agents"})]


def answer(body: bytes, *, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n" + extra
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked_with_size(size_line: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + size_line + b"\r\n" + body + b"\r\n0\r\n\r\n"


BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)

# A handler gets the poll's number (over all connections) and the writer; it writes what the server says.
Handler = Callable[[int, asyncio.StreamWriter], Awaitable[bool]]  # returns: close the connection after it


@dataclass
class Server:
    handler: Handler
    polls: int = 0
    connections: int = 0
    port: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                number, self.polls = self.polls, self.polls + 1
                if await self.handler(number, writer):
                    return
        finally:
            writer.close()


def first_then_success(wire: Wire, first: bytes) -> Handler:
    """Answer the first poll with ``first``, every later one with this render's success."""

    async def handler(number: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(first if number == 0 else answer(wire.success(RID)))
        await writer.drain()
        return False

    return handler


def always(data: Callable[[Wire], bytes], wire: Wire) -> Handler:
    async def handler(number: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(data(wire))
        await writer.drain()
        return False

    return handler


def idle_then_success(wire: Wire, unsolicited: bytes, close: bool) -> Handler:
    """Answer ``processing``, then speak out of turn on the idle connection; later polls get the success."""

    async def handler(number: int, writer: asyncio.StreamWriter) -> bool:
        if number > 0:
            writer.write(answer(wire.success(RID)))
            return False
        writer.write(answer(wire.status(RID)))
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(unsolicited)
        await writer.drain()
        return close

    return handler


def trickled_then_success(wire: Wire) -> Handler:
    async def handler(number: int, writer: asyncio.StreamWriter) -> bool:
        body = wire.success(RID)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.005)
        return False

    return handler


def cases(wire: Wire) -> dict[str, tuple[Handler, str]]:
    """case -> (server, expected): "own render" (success with this render's generation) or "stops" (error event)."""
    other = answer(wire.success(OTHER, "https://cdn.example/other.mp4"))
    return {
        "pipelined-extra-response": (first_then_success(wire, answer(wire.status(RID)) + other), "own render"),
        "204-with-body": (first_then_success(wire, b"HTTP/1.1 204 No Content\r\n\r\n" + other), "own render"),
        "304-with-body": (first_then_success(wire, b"HTTP/1.1 304 Not Modified\r\n\r\n" + other), "own render"),
        "late-answer-on-idle-connection": (idle_then_success(wire, other, close=False), "own render"),
        "408-on-idle-connection": (
            idle_then_success(wire, b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n", close=True),
            "own render",
        ),
        "trickled-body": (trickled_then_success(wire), "own render"),
        "bare-lf-head": (first_then_success(wire, answer(wire.status(RID)).replace(b"\r\n", b"\n")), "own render"),
        "gzip-bomb": (always(lambda w: answer(BOMB, extra=b"Content-Encoding: gzip\r\n"), wire), "stops"),
        "chunk-size--1": (always(lambda w: chunked_with_size(b"-1", w.status(RID)), wire), "stops"),
        "chunk-size-0x10": (always(lambda w: chunked_with_size(b"0x10", w.status(RID)), wire), "stops"),
        "chunk-size-+10": (always(lambda w: chunked_with_size(b"+10", w.status(RID)), wire), "stops"),
        "nul-in-header-value": (always(lambda w: answer(w.status(RID), extra=b"X-A: a\x00b\r\n"), wire), "stops"),
        "cr-in-header-value": (always(lambda w: answer(w.status(RID), extra=b"X-A: a\rb\r\n"), wire), "stops"),
        "lf-in-header-value": (always(lambda w: answer(w.status(RID), extra=b"X-A: a\nb\r\n"), wire), "stops"),
        "answer-for-another-render": (always(lambda w: answer(w.success(OTHER)), wire), "stops"),
        "video-url-file-scheme": (always(lambda w: answer(w.success(RID, "file:///etc/hostname")), wire), "stops"),
    }


async def run_case(
    name: str, wire: Wire, handler: Handler, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    conn_id = f"hostile_{wire.name}_{name}".replace("-", "_").replace("+", "plus")
    conn = {"conn_type": "luma", "host": f"http://127.0.0.1:{server.port}{wire.base_path}", "password": KEY}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({**conn, "extra": wire.extra}))
    now = time.time()
    trigger = LumaGenerationTrigger(
        request_id=RID, deadline=now + DEADLINE, luma_conn_id=conn_id, poll_interval=0.1, first_poll_at=now,
        submitted_at=now, backend=wire.name, model="luma-ray-3-2-generate",
    )  # fmt: skip
    try:
        events = [event.payload async for event in trigger.run()]
    finally:
        listener.close()
    assert len(events) == 1
    return events[0], server


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_hostile_answers_through_the_trigger(wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    table = cases(wire)
    results = await asyncio.gather(*(run_case(name, wire, h, monkeypatch) for name, (h, _) in table.items()))
    outcomes, wrong = {}, []
    for (name, (_, expected)), (event, server) in zip(table.items(), results, strict=True):
        if event["status"] == "success" and event["request_id"] == RID:
            got = "own render" if event["generation_id"] == wire.generation_of(RID) else "another render"
        elif event["status"] == "error" and "in a row could not be used" in str(event["message"]):
            got = "stops"
        else:
            got = f"{event['status']}: {event['message']}"
        outcomes[name] = got
        if got != expected:
            wrong.append(f"{name}: expected {expected}, got {got}")
        if got == "stops":
            # Stopped after a few unusable answers (a deadline would give a "timeout" event), with a message a user
            # can act on.
            assert event["retryable"] and "re-attaches" in event["message"] and KEY not in event["message"]
            assert server.polls <= MAX_UNUSABLE_ANSWERS * 2  # the client's one quick retry per status call
        assert KEY not in json.dumps(event)
    assert not wrong, "\n".join(wrong)
