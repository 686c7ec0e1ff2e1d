"""An httpx transport for the triggerer's status polls: keep-alive HTTP/1.1 GETs to one origin, parsed by h11.

Why it exists: one triggerer polls thousands of renders (500 status GETs a second at 5,000 renders and 10-s
polling). Through httpx's default pool most of the CPU of a poll went to httpcore's pool bookkeeping (it walks
every pooled connection and probes each idle socket with a ``poll()`` syscall on every request start and finish);
see docs/performance.md. A status poll needs none of that: one fixed origin, the same headers every time (encoded
once), and a small JSON answer. :class:`PollTransport` does exactly that for plain GETs to its origin and hands
every other request (creates, other origins) to httpx's own transport, so the client stays an
``httpx.AsyncClient`` and the HTTP/1.1 parsing is h11's (the parser httpcore itself runs on).

What a poll may trust of an answer, and what it may not (docs/security.md):

* **An answer belongs to the request it follows.** A connection is reused only when its last answer was read to
  its exact end and nothing else arrived: bytes after the end (a pipelined extra response, a body on a 204/304)
  or bytes that arrive while it is idle (a late answer, a 408 before closing) retire it, so a poll can never read
  an answer meant for another one.
* **Bounded.** A head over :data:`MAX_HEAD` bytes, a body over :data:`MAX_BODY` bytes after decoding (gzip and
  deflate are decoded here with that cap; other codings are refused), and anything h11 calls malformed (chunk
  sizes such as ``-1``, ``0x10``, ``+10``; NUL, CR or LF inside a header value; conflicting lengths) raise
  ``httpx.RemoteProtocolError``, which the retry policy treats like any unreadable answer. The whole exchange
  has one deadline (``timeout``), so a trickled body cannot hold a poll longer than that.
* **Stale connections.** A connection the server closed while idle is known to be closed (the protocol saw the
  EOF); one it closes just as it is reused fails before any response byte and the GET is sent once more on a new
  connection (a GET buys nothing).

The same TLS verification as every other client of the provider (the client's ``ssl.SSLContext``), httpx's
exception types (``httpx.ConnectError`` before a byte is sent, ``httpx.ReadError`` / ``httpx.ReadTimeout`` /
``httpx.RemoteProtocolError`` after) and an ``httpx.Response`` as the result, so the retry policy and the error
mapping in :mod:`airflow_provider_luma.core.http` see no difference. :func:`reached_through_proxy` says when an
origin is proxied (``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` not bypassed by ``NO_PROXY``); the client then
uses httpx's own transport for everything.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
import zlib
from collections import deque
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote, urlsplit

import h11
import httpx

from airflow_provider_luma.core._compat import timeout as time_limit

IDLE_EXPIRY: Final = 4.0
"""Seconds an idle connection is kept (below the common 5-s server keep-alive)."""
MAX_HEAD: Final = 64 * 1024
MAX_BODY: Final = 4 * 1024 * 1024
"""A status answer is a few hundred bytes: a larger one (after decoding) is refused, not buffered."""
_HOP_BY_HOP: Final = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class _StaleConnection(Exception):
    """A reused connection was closed by the server before any byte of the answer arrived."""


def _protocol_error(problem: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"unreadable answer to a status poll: {problem}")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: bytes go to h11 while a request is out, and retire the connection otherwise."""

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.dead = False  # closed, or spoke out of turn: never reused
        self._busy = False
        self._received = 0
        self._wakeup: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self._busy:  # an answer nobody asked for (a late one, a 408 before closing): retire the connection
            self.close()
            return
        self._received += len(data)
        if self._received > MAX_HEAD + MAX_BODY + 64 * 1024:  # framing overhead included; decoded size checked later
            self.close()
        self.h11.receive_data(data)
        self._wake()

    def eof_received(self) -> bool:
        self.dead = True
        if self._busy:
            self.h11.receive_data(b"")
            self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.dead = True
        if self._busy and self.h11.their_state is not h11.CLOSED:
            try:
                self.h11.receive_data(b"")
            except RuntimeError:  # already told about the EOF
                pass
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    # -- use ----------------------------------------------------------------------------------------------------

    def usable(self, now: float) -> bool:
        return not self.dead and self.transport is not None and now - self.idle_since <= IDLE_EXPIRY

    def close(self) -> None:
        self.dead = True
        if self.transport is not None:
            self.transport.close()

    async def get(self, request: h11.Request, *, reused: bool) -> httpx.Response:
        """Send ``request`` (a GET) and read its answer; the connection is left reusable only if it may be."""
        assert self.transport is not None
        self._busy, self._received = True, 0
        try:
            self.transport.write(self.h11.send(request) + (self.h11.send(h11.EndOfMessage()) or b""))
            status, headers, body = await self._read(reused)
        finally:
            self._busy = False
        # Exactly one answer, read to its end, and nothing after it: only then may the next poll use it.
        trailing, _ = self.h11.trailing_data
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE and not trailing and not self.dead:
            self.h11.start_next_cycle()
        else:
            self.close()
        # The body is decoded already: headers that described its encoding would make httpx decode it again.
        return httpx.Response(status, headers=[h for h in headers if h[0].lower() not in _HOP_BY_HOP], content=body)

    async def _read(self, reused: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        status, headers, chunks, size, started = 0, [], [], 0, False
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if self.dead and not self._received:  # closed before a byte of the answer: nothing was read
                    if reused:
                        raise _StaleConnection from None
                    raise httpx.RemoteProtocolError("Server disconnected without sending a response.") from None
                raise _protocol_error(str(exc)) from None
            if event is h11.NEED_DATA:
                loop = asyncio.get_running_loop()
                self._wakeup = loop.create_future()
                await self._wakeup
                continue
            if isinstance(event, h11.ConnectionClosed):
                if reused and not started:
                    raise _StaleConnection
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            started = True
            if isinstance(event, h11.Response):
                status, headers = event.status_code, list(event.headers.raw_items())
                if sum(len(name) + len(value) + 4 for name, value in headers) > MAX_HEAD:
                    # h11 bounds a head that arrives in pieces; one that arrived whole is bounded here.
                    raise _protocol_error(f"a head larger than {MAX_HEAD} bytes")
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    raise _protocol_error(f"larger than {MAX_BODY} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, decode_body(b"".join(chunks), headers)
            # h11.InformationalResponse (1xx): the final answer follows


class CappedDecoder:
    """Undoes an answer's ``Content-Encoding`` piece by piece, never producing more than ``limit`` bytes.

    gzip and deflate (zlib or raw) are decoded with zlib's ``max_length``, so a compression bomb is refused after
    ``limit`` bytes instead of being inflated to the end; any other coding is refused. Used on whole bodies here
    and on streamed ones by :mod:`airflow_provider_luma.core.http`.

    :raises httpx.RemoteProtocolError: an unknown coding, a broken stream, or more than ``limit`` bytes.
    """

    def __init__(self, headers: Iterable[tuple[bytes, bytes]], limit: int = MAX_BODY) -> None:
        self.limit, self.size = limit, 0
        self.parts: list[bytes] = []
        codings = [
            token.strip().lower()
            for name, value in headers
            if name.lower() == b"content-encoding"
            for token in value.split(b",")
            if token.strip() and token.strip().lower() != b"identity"
        ]
        if len(codings) > 1 or any(c not in (b"gzip", b"x-gzip", b"deflate") for c in codings):
            raise _protocol_error(f"unsupported Content-Encoding {b', '.join(codings)!r}")
        self._coding = codings[0] if codings else None
        self._zlib: Any = None

    def feed(self, data: bytes) -> None:
        """Decode one piece of the body as sent."""
        if self._coding is None:
            self._keep(data)
            return
        if self._zlib is None:
            raw_deflate = self._coding == b"deflate" and data[:1] and (data[0] & 0x0F) != 8
            wbits = -zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS | (16 if self._coding != b"deflate" else 0)
            self._zlib = zlib.decompressobj(wbits)
        try:
            self._keep(self._zlib.decompress(data, self.limit + 1 - self.size))
            while self._zlib.unconsumed_tail:
                self._keep(self._zlib.decompress(self._zlib.unconsumed_tail, self.limit + 1 - self.size))
        except zlib.error as exc:
            raise _protocol_error(f"broken {self._coding.decode()} body ({exc})") from None

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise _protocol_error(f"larger than {self.limit} bytes once decoded")
        self.parts.append(data)

    def body(self) -> bytes:
        """Everything decoded so far."""
        return b"".join(self.parts)


def decode_body(body: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """``body`` with its ``Content-Encoding`` undone, at most :data:`MAX_BODY` bytes (see :class:`CappedDecoder`)."""
    decoder = CappedDecoder(headers)
    decoder.feed(body)
    return decoder.body()


class PollTransport(httpx.AsyncBaseTransport):
    """Plain GETs to ``base_url``'s origin over h11 keep-alive connections; everything else through ``fallback``.

    :param base_url: the API's base URL; its origin is the only one served here.
    :param headers: the headers every poll carries (auth, user agent), encoded once.
    :param timeout: seconds one whole exchange (connect, send, read) may take.
    :param connect_timeout: seconds a new connection may take.
    :param max_connections: idle connections kept at most (the client's semaphore bounds how many are in use).
    :param ssl_context: the TLS context for an https origin (the client's; never a default one of our own).
    :param fallback: httpx's transport for the rest (creates, redirects elsewhere).
    """

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
        ssl_context: ssl.SSLContext | None,
        fallback: httpx.AsyncBaseTransport,
    ) -> None:
        url = urlsplit(base_url)
        self._scheme, self._host = url.scheme, url.hostname or ""
        self._tls = url.scheme == "https"
        self._port = url.port or (443 if self._tls else 80)
        if self._tls and ssl_context is None:
            raise ValueError("an https origin needs the client's TLS context")
        self._ssl = ssl_context if self._tls else None
        self._prefix = url.path.rstrip("/")
        netloc = f"[{self._host}]" if ":" in self._host else self._host  # an IPv6 literal
        netloc = netloc if url.port is None else f"{netloc}:{url.port}"
        wire = {"Host": netloc, **headers, "Accept-Encoding": "identity"}
        # Validated and encoded once (h11 refuses CR, LF and NUL in a value; the message never quotes one).
        self._headers = h11.Request(method="GET", target="/", headers=list(wire.items())).headers
        self._signature = _own_headers(headers.items())
        self._timeout, self._connect_timeout = timeout, connect_timeout
        self._idle: deque[_Connection] = deque(maxlen=max_connections)
        self._fallback = fallback
        self._closed = False

    @property
    def is_closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """httpx's entry point: plain GETs to our origin with our headers here, anything else to the fallback."""
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        plain = (
            request.method == "GET"
            and (url.scheme, url.host, port) == (self._scheme, self._host, self._port)
            and request.headers.get("content-length") in (None, "0")
            and _own_headers(request.headers.multi_items()) == self._signature
        )
        if not plain:
            return await self._fallback.handle_async_request(request)
        return await self._exchange(url.raw_path, url.path)

    async def get(self, path: str) -> httpx.Response:
        """``GET {base path}{path}`` with the fixed headers; raises httpx transport errors like httpx would."""
        target = (self._prefix + quote(path, safe="/:@!$&'()*+,;=~?")).encode("ascii")
        return await self._exchange(target, path)

    async def _exchange(self, target: bytes, label: str) -> httpx.Response:
        request = h11.Request(method=b"GET", target=target, headers=self._headers)
        connection, reused = self._checkout()
        try:
            async with time_limit(self._timeout):
                if connection is None:
                    connection = await self._connect()
                try:
                    response = await connection.get(request, reused=reused)
                except _StaleConnection:
                    connection.close()
                    connection = await self._connect()
                    response = await connection.get(request, reused=False)
        except (TimeoutError, OSError, h11.ProtocolError) as exc:
            if connection is not None:
                connection.close()
            raise _as_httpx_error(exc, label, self._timeout) from None
        except BaseException:  # httpx errors, or cancelled mid-request: the connection's state is unknown
            if connection is not None:
                connection.close()
            raise
        self._checkin(connection)
        return response

    def _checkout(self) -> tuple[_Connection | None, bool]:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used one: least likely to have expired
            if connection.usable(now):
                return connection, True
            connection.close()
        return None, False

    def _checkin(self, connection: _Connection) -> None:
        if self._closed or connection.dead:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        if len(self._idle) == self._idle.maxlen:
            self._idle.popleft().close()
        self._idle.append(connection)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with time_limit(self._connect_timeout):
                _, connection = await loop.create_connection(
                    _Connection, self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._tls else None,
                )  # fmt: skip
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {self._host}:{self._port} timed out") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS verification (ssl.SSLError is an OSError)
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        return connection

    async def aclose(self) -> None:
        """Close every idle connection and the fallback; connections in use are closed when they come back."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        await self._fallback.aclose()


_HTTPX_ADDS: Final = frozenset({"host", "accept-encoding", "connection", "content-length"})


def _own_headers(items: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """The headers that make a request what it is (those httpx adds by itself left out)."""
    return frozenset((name.lower(), value) for name, value in items if name.lower() not in _HTTPX_ADDS)


def _as_httpx_error(exc: Exception, path: str, timeout: float) -> httpx.TransportError:
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(f"no answer to GET {path} within {timeout:g} s")
    if isinstance(exc, h11.ProtocolError):
        return _protocol_error(str(exc))
    return httpx.ReadError(f"{type(exc).__name__}: {exc}")


def reached_through_proxy(base_url: str) -> bool:
    """True when httpx would send requests to ``base_url`` through a proxy from the environment
    (``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY``, unless ``NO_PROXY`` names the host)."""
    url = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(url.hostname or "")  # on Linux: NO_PROXY from the environment
