"""The triggerer's poll transport (core/transport.py: h11 keep-alive GETs), through the real ``AsyncLumaClient``.

A scripted HTTP server on 127.0.0.1 (raw asyncio sockets, so each test decides the exact bytes of every answer
and when a connection closes) stands in for the API: connection reuse, every HTTP/1.1 framing a server may
choose, a server that closes idle connections, timeouts, garbage, TLS verification and proxies. The hostile
answers of docs/security.md have their own table here (the client) and in tests/test_triggers_hostile_answers.py (the
trigger, both wires).
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import json
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from airflow_provider_luma.core.errors import LumaConnectionError, LumaResponseError, LumaTimeoutError
from airflow_provider_luma.core.http import AsyncLumaClient, ClientSettings
from airflow_provider_luma.core.jobs import JobStatus
from airflow_provider_luma.core.retry import RetryPolicy

KEY = "gmi-secret-key-0123456789"
BASE_PATH = "/api/v1/ie/requestqueue/apikey"
RUNNING = json.dumps({"request_id": "r1", "status": "processing"}).encode()
FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)


def content_length(body: bytes = RUNNING, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked(body: bytes = RUNNING, extension: bytes = b"", trailer: bytes = b"") -> bytes:
    half = len(body) // 2
    parts = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in (body[:half], body[half:]))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + parts + b"0\r\n" + trailer + b"\r\n"


# An answer script: (request number on this connection, request head) -> bytes to send, and whether to close after.
Script = Callable[[int, bytes], tuple[bytes, bool]]


@dataclass
class RawServer:
    script: Script
    ssl_context: ssl.SSLContext | None = None
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    port: int = 0

    custom: Callable[[RawServer, asyncio.StreamWriter], Awaitable[None]] | None = None
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def push(self, data: bytes) -> None:
        """Write ``data`` on the most recent connection, outside any request/answer exchange."""
        writer = self.writers[-1]
        writer.write(data)
        await writer.drain()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        number = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.heads.append(head)
                if self.custom is not None:
                    await self.custom(self, writer)
                    continue
                answer, close = self.script(number, head)
                number += 1
                if answer:
                    writer.write(answer)
                    await writer.drain()
                if close:
                    return
        finally:
            writer.close()

    def url(self, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host}:{self.port}{BASE_PATH}"


Start = Callable[..., Awaitable[RawServer]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Start]:
    servers: list[asyncio.Server] = []

    async def start(script: Script, ssl_context: ssl.SSLContext | None = None) -> RawServer:
        raw = RawServer(script, ssl_context)
        server = await asyncio.start_server(raw.serve, "127.0.0.1", 0, ssl=ssl_context)
        raw.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return raw

    yield start
    for server in servers:
        server.close()


def client(url: str, *, timeout: float = 5.0, ssl_context: ssl.SSLContext | None = None) -> AsyncLumaClient:
    settings = ClientSettings(base_url=url, api_key=KEY, timeout=timeout, connect_timeout=2.0, retry=FAST)
    return AsyncLumaClient(settings, ssl_context=ssl_context)


def always(answer: bytes, close: bool = False) -> Script:
    return lambda number, head: (answer, close)


async def test_polls_reuse_one_connection_and_carry_the_key_only_in_its_header(
    raw_server: Start,
) -> None:
    raw = await raw_server(always(content_length()))
    async with client(raw.url()) as luma:
        jobs = [await luma.aget_generation("r1") for _ in range(20)]
    assert {job.status for job in jobs} == {JobStatus.PROCESSING}
    assert raw.connections == 1
    request_line, *headers = raw.heads[0].decode().strip().split("\r\n")
    assert request_line == f"GET {BASE_PATH}/requests/r1 HTTP/1.1"
    sent = dict(line.split(": ", 1) for line in headers)
    assert sent["Host"] == f"127.0.0.1:{raw.port}" and sent["Authorization"] == f"Bearer {KEY}"
    assert sent["Accept"] == "application/json" and sent["User-Agent"].startswith("airflow-provider-luma/")
    assert sent["Accept-Encoding"] == "identity"  # answers come uncompressed: nothing to decode on the hot path


@pytest.mark.parametrize(
    ("answer", "close", "connections"),
    [
        pytest.param(content_length(), False, 1, id="content-length"),
        pytest.param(chunked(), False, 1, id="chunked"),
        pytest.param(chunked(extension=b";x=1", trailer=b"X-Trailer: 1\r\n"), False, 1, id="chunk-ext-and-trailer"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n" + content_length(), False, 1, id="informational-first"),
        pytest.param(content_length(extra=b"Connection: close\r\n"), True, 3, id="connection-close"),
        pytest.param(content_length(extra=b"Connection: close\r\n"), False, 3, id="close-announced-not-done"),
        pytest.param(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + RUNNING, True, 3, id="http-1.0"),
        pytest.param(content_length(extra=b"X-Folded: a\r\n b\r\n"), False, 1, id="folded-header-obs-fold"),
        pytest.param(content_length().replace(b"\r\n", b"\n"), False, 1, id="bare-lf-line-endings"),
        pytest.param(
            content_length(gzip.compress(RUNNING), extra=b"Content-Encoding: gzip\r\n"), False, 1, id="gzip-encoded"
        ),
        pytest.param(
            content_length(zlib.compress(RUNNING), extra=b"Content-Encoding: deflate\r\n"), False, 1, id="deflate"
        ),
    ],
)
async def test_every_http11_framing_reads_the_same_status(
    raw_server: Start, answer: bytes, close: bool, connections: int
) -> None:
    raw = await raw_server(always(answer, close))
    async with client(raw.url()) as luma:
        jobs = [await luma.aget_generation("r1") for _ in range(3)]
    assert [job.raw_status for job in jobs] == ["processing"] * 3
    assert raw.connections == connections


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(lambda number, head: (content_length(), True), id="closed-after-each-answer-unannounced"),
        pytest.param(lambda number, head: (b"" if number else content_length(), number > 0), id="closed-on-reuse"),
    ],
)
async def test_a_connection_the_server_dropped_is_replaced_without_an_error(
    raw_server: Start, script: Script, caplog: pytest.LogCaptureFixture
) -> None:
    raw = await raw_server(script)
    async with client(raw.url()) as luma:
        first = await luma.aget_generation("r1")
        await asyncio.sleep(0.05)  # let the close reach the client (or not: the reuse race is covered too)
        second = await luma.aget_generation("r1")
    assert first.raw_status == second.raw_status == "processing"
    assert "retrying" not in caplog.text  # a dropped idle connection is not a failed status call


async def test_a_server_that_never_answers_is_a_timeout(raw_server: Start) -> None:
    raw = await raw_server(always(b""))
    async with client(raw.url(), timeout=0.2) as luma:
        with pytest.raises(LumaTimeoutError, match=r"GET /requests/r1 failed after 2 attempt\(s\).*within 0.2 s"):
            await luma.aget_generation("r1")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        pytest.param(b"HELLO\r\n\r\n", "unreadable answer", id="not-http"),
        pytest.param(content_length(b"x" * (5 * 1024 * 1024)), "larger than", id="endless-body"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{}", "unreadable answer", id="cut-short"),
        pytest.param(content_length(extra=b"Content-Length: 3\r\n"), "Content-Length", id="two-lengths"),
        pytest.param(
            content_length().replace(b"Content-Length", b"Transfer-Encoding: gzip\r\nX-Was"),
            "Transfer-Encoding",
            id="other-transfer-coding",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70_000 + b"\r\n\r\n", "unreadable", id="endless-head"),
    ],
)
async def test_garbage_answers_are_unusable_answers_without_the_key(
    raw_server: Start, answer: bytes, problem: str
) -> None:
    raw = await raw_server(always(answer, close=True))
    async with client(raw.url()) as luma:
        with pytest.raises(LumaResponseError, match=problem) as caught:
            await luma.aget_generation("r1")
    assert KEY not in str(caught.value)
    assert caught.value.retryable  # the poll loop tries again; UnusableAnswers ends it after a few in a row


def gmi_status(request_id: str, status: str = "processing", **extra: object) -> bytes:
    return json.dumps({"request_id": request_id, "status": status, **extra}).encode()


def gzip_bomb(size: int) -> bytes:
    import gzip

    return gzip.compress(b"\0" * size, compresslevel=9)


BOMB = gzip_bomb(200 * 1024 * 1024)  # 200 MiB of zeros in about 200 KB, as in the measurement


def _extra_then(number: int, head: bytes) -> tuple[bytes, bool]:
    # The first answer arrives with a second, complete answer glued behind it (for another render).
    other = content_length(gmi_status("render-of-another-dag", "success", video_url="https://cdn.example/x.mp4"))
    return (content_length() + other if number == 0 else content_length()), False


def _body_after(status_line: bytes) -> Script:
    other = gmi_status("render-of-another-dag", "success", video_url="https://cdn.example/x.mp4")

    answered: list[bytes] = []

    def script(number: int, head: bytes) -> tuple[bytes, bool]:
        # A 204/304 has no body by definition: the bytes behind its head are not its body, and not our answer.
        answered.append(head)
        return (status_line + b"\r\n\r\n" + other if len(answered) == 1 else content_length()), False

    return script


# What a hostile or broken server may send, and what the client must make of it (docs/security.md, "the poller").
#   case id -> (script, expected outcome). "ok" = every poll reads r1's own answer, the connection that carried
#   extra bytes is not reused; "unusable, then ok" = the first poll is an unusable answer (the poll loop tries
#   again), the next ones read r1's own answer on a fresh connection.
HOSTILE: dict[str, tuple[Script, str]] = {
    "pipelined-extra-response": (_extra_then, "ok"),
    "204-with-body": (_body_after(b"HTTP/1.1 204 No Content"), "unusable, then ok"),
    "304-with-body": (_body_after(b"HTTP/1.1 304 Not Modified"), "unusable, then ok"),
    "gzip-bomb": (always(content_length(BOMB, extra=b"Content-Encoding: gzip\r\n")), "LumaResponseError"),
    "brotli-unknown-coding": (always(content_length(b"x", extra=b"Content-Encoding: br\r\n")), "LumaResponseError"),
    "chunk-size--1": (always(chunked().replace(b"\r\n\r\n", b"\r\n\r\n-1\r\n", 1)), "LumaResponseError"),
    "chunk-size-0x10": (always(chunked().replace(b"\r\n\r\n", b"\r\n\r\n0x10\r\n", 1)), "LumaResponseError"),
    "chunk-size-+10": (always(chunked().replace(b"\r\n\r\n", b"\r\n\r\n+10\r\n", 1)), "LumaResponseError"),
    "nul-in-header-value": (always(content_length(extra=b"X-A: a\x00b\r\n")), "LumaResponseError"),
    "cr-in-header-value": (always(content_length(extra=b"X-A: a\rb\r\n")), "LumaResponseError"),
    "lf-in-header-value": (always(content_length(extra=b"X-A: a\nb\r\n")), "LumaResponseError"),
    "answer-for-another-request": (always(content_length(gmi_status("render-of-another-dag"))), "LumaResponseError"),
}


@pytest.mark.parametrize(("script", "outcome"), list(HOSTILE.values()), ids=list(HOSTILE))
async def test_hostile_answers_never_pass_for_our_render(raw_server: Start, script: Script, outcome: str) -> None:
    raw = await raw_server(script)
    async with client(raw.url()) as luma:
        if outcome == "unusable, then ok":
            with pytest.raises(LumaResponseError, match="non-JSON body: ''"):  # the bytes behind the head were not read
                await luma.aget_generation("r1")
            outcome = "ok"
        if outcome == "ok":
            jobs = [await luma.aget_generation("r1") for _ in range(3)]
            assert [(job.request_id, job.status) for job in jobs] == [("r1", JobStatus.PROCESSING)] * 3
            assert raw.connections >= 2  # the connection that carried extra bytes was not reused
        else:
            with pytest.raises(LumaResponseError) as caught:
                await luma.aget_generation("r1")
            assert caught.value.retryable and KEY not in str(caught.value)


async def test_a_gzip_bomb_is_refused_in_bounded_memory(raw_server: Start) -> None:
    import tracemalloc

    raw = await raw_server(always(content_length(BOMB, extra=b"Content-Encoding: gzip\r\n")))
    async with client(raw.url()) as luma:
        tracemalloc.start()
        try:
            with pytest.raises(LumaResponseError, match="once decoded"):
                await luma.aget_generation("r1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 32 * 1024 * 1024  # the 200 MiB it would decode to are never held


async def test_an_answer_arriving_on_an_idle_connection_is_never_read_as_the_next_one(raw_server: Start) -> None:
    late = content_length(gmi_status("render-of-another-dag", "success", video_url="https://cdn.example/x.mp4"))
    timeout = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    for unsolicited in (late, timeout):
        writers: list[asyncio.StreamWriter] = []

        def script(number: int, head: bytes) -> tuple[bytes, bool]:
            return content_length(), False

        raw = await raw_server(script)
        async with client(raw.url()) as luma:
            assert (await luma.aget_generation("r1")).request_id == "r1"
            # The server speaks out of turn while the connection sits idle in the pool.
            await raw.push(unsolicited)
            await asyncio.sleep(0.05)
            job = await luma.aget_generation("r1")
        assert (job.request_id, job.status) == ("r1", JobStatus.PROCESSING)
        assert raw.connections == 2
        del writers


async def test_a_trickled_body_is_bounded_by_the_request_timeout(raw_server: Start) -> None:
    body = RUNNING + b" " * 200
    sent: list[int] = []

    async def trickle(raw: RawServer, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        count = 0
        try:
            for byte in body:  # 0.05 s a byte: the whole body would take 12 s
                writer.write(bytes([byte]))
                await writer.drain()
                count += 1
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass
        finally:
            sent.append(count)

    raw = await raw_server(always(b""))
    raw.custom = trickle
    async with client(raw.url(), timeout=0.3) as luma:
        with pytest.raises(LumaTimeoutError, match="within 0.3 s"):
            await luma.aget_generation("r1")
    await asyncio.sleep(0.2)  # let the server notice the client left
    # Each attempt gave up at its timeout: neither came close to reading the whole trickled body.
    assert len(sent) == 2 and all(count < len(body) // 2 for count in sent)


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for localhost/127.0.0.1, and a client context that trusts it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


async def test_https_polls_verify_the_servers_certificate(raw_server: Start, tmp_path: Path) -> None:
    server_tls, trusting = self_signed(tmp_path)
    raw = await raw_server(always(content_length()), ssl_context=server_tls)
    async with client(raw.url("localhost"), ssl_context=trusting) as luma:
        assert (await luma.aget_generation("r1")).raw_status == "processing"
        assert (await luma.aget_generation("r1")).raw_status == "processing"
    assert raw.connections == 1
    async with client(raw.url("localhost")) as luma:  # the default trust store does not know this certificate
        with pytest.raises(LumaConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await luma.aget_generation("r1")


async def test_a_proxied_origin_is_polled_through_the_proxy(raw_server: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = await raw_server(always(content_length()))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with client(f"http://api.invalid{BASE_PATH}") as luma:
        assert (await luma.aget_generation("r1")).raw_status == "processing"
    assert proxy.heads[0].startswith(f"GET http://api.invalid{BASE_PATH}/requests/r1 HTTP/1.1".encode())


def test_the_workers_client_caps_a_compressed_answer_too(raw_server_thread: str) -> None:
    import tracemalloc

    from airflow_provider_luma.core.http import LumaClient

    settings = ClientSettings(base_url=raw_server_thread, api_key=KEY, timeout=5.0, connect_timeout=2.0, retry=FAST)
    tracemalloc.start()
    try:
        with LumaClient(settings) as luma, pytest.raises(LumaResponseError, match="once decoded") as caught:
            luma.get_generation("r1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024 and KEY not in str(caught.value)


@pytest.fixture
def raw_server_thread() -> Iterator[str]:
    """A gzip-bomb server in a thread of its own (for the synchronous client)."""
    import socketserver
    import threading

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            self.wfile.write(content_length(BOMB, extra=b"Content-Encoding: gzip\r\n"))

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{BASE_PATH}"
    finally:
        server.shutdown()
        server.server_close()
