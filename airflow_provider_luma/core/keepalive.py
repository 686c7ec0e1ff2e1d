"""A lean keep-alive HTTP/1.1 GET path for the triggerer's status polls (asyncio streams + h11).

Why it exists: one triggerer polls thousands of renders (500 status GETs a second at 5,000 renders and 10-s
polling). Through ``httpx.AsyncClient`` most of the CPU of a poll went to httpcore's pool bookkeeping (it walks
every pooled connection and probes each idle socket with a ``poll()`` syscall on every request start and finish)
and to building and merging URL objects; see docs/performance.md. A status poll needs none of that: one fixed
origin, one request line, the same headers every time, and a small JSON answer. This module does exactly that and
nothing else.

What it keeps from httpx: the same TLS verification (``httpx.create_ssl_context()``: certifi, or ``SSL_CERT_FILE``
/ ``SSL_CERT_DIR``), the same exception types (``httpx.ConnectError`` before a byte is sent,
``httpx.ReadError`` / ``httpx.ReadTimeout`` / ``httpx.RemoteProtocolError`` after), so the retry policy and error
mapping in :mod:`airflow_provider_luma.core.http` are unchanged, and an ``httpx.Response`` as the result (content
decoding, ``.json()``, headers). What it leaves to httpx: everything else. :func:`reached_through_proxy` says when
an origin is proxied (``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` not bypassed by ``NO_PROXY``), and
the client then sends its polls through httpx as before.

Connections are kept idle for at most :data:`IDLE_EXPIRY` seconds (below the common 5-s server keep-alive). A
connection the server closed while idle is noticed without a syscall (the event loop already watches the socket:
``at_eof()``); one the server closes just as we reuse it fails before any response byte and the GET is sent once
more on a new connection (a GET buys nothing, so this is always safe).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
from collections import deque
from urllib.parse import quote, urlsplit

import h11
import httpx

IDLE_EXPIRY = 4.0
MAX_BODY = 4 * 1024 * 1024  # a status answer is a few hundred bytes; refuse to buffer an endless one


class _StaleConnection(Exception):
    """A reused connection was closed by the server before any byte of the answer arrived."""


class _Connection:
    __slots__ = ("reader", "writer", "h11", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing() or now - self.idle_since > IDLE_EXPIRY)

    def close(self) -> None:
        self.writer.close()

    async def get(self, target: bytes, headers: list[tuple[bytes, bytes]], *, reused: bool) -> httpx.Response:
        conn = self.h11
        self.writer.write(conn.send(h11.Request(method=b"GET", target=target, headers=headers)))
        conn.send(h11.EndOfMessage())
        status, response_headers, body, size, started = 0, [], [], 0, False
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.reader.read(65536)
                except (ConnectionResetError, BrokenPipeError) as exc:
                    if reused and not started:
                        raise _StaleConnection from exc
                    raise
                if not data and reused and not started:
                    raise _StaleConnection
                started = started or bool(data)
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                status, response_headers = event.status_code, event.headers.raw_items()
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    raise httpx.RemoteProtocolError(f"status answer larger than {MAX_BODY} bytes")
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            # h11.InformationalResponse (1xx): keep reading the final answer
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:  # the server said "Connection: close" (or HTTP/1.0): this connection is spent
            self.writer.close()
        return httpx.Response(status, headers=response_headers, content=b"".join(body))


class LeanGetPool:
    """Keep-alive GETs to one origin, with fixed headers. The caller bounds concurrency (``max_connections``
    idle connections are kept at most; the client's semaphore keeps more from being opened)."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        url = urlsplit(base_url)
        self._host = url.hostname or ""
        self._tls = url.scheme == "https"
        self._port = url.port or (443 if self._tls else 80)
        self._ssl = (ssl_context or httpx.create_ssl_context()) if self._tls else None
        self._prefix = url.path.rstrip("/")
        netloc = self._host if url.port is None else f"{self._host}:{url.port}"
        if ":" in self._host:  # IPv6 literal
            netloc = f"[{self._host}]" if url.port is None else f"[{self._host}]:{url.port}"
        wire = {"Host": netloc, **headers}
        self._headers = [(k.encode("ascii"), v.encode("latin-1")) for k, v in wire.items()]
        self._timeout, self._connect_timeout = timeout, connect_timeout
        self._idle: deque[_Connection] = deque(maxlen=max_connections)
        self._closed = False

    @property
    def is_closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    async def get(self, path: str) -> httpx.Response:
        """``GET {base path}{path}``; raises httpx transport exceptions like ``httpx.AsyncClient`` would."""
        target = (self._prefix + quote(path, safe="/:@!$&'()*+,;=~")).encode("ascii")
        connection, reused = self._checkout()
        try:
            async with asyncio.timeout(self._timeout):
                if connection is None:
                    connection = await self._connect()
                try:
                    response = await connection.get(target, self._headers, reused=reused)
                except _StaleConnection:
                    connection.close()
                    connection = await self._connect()
                    response = await connection.get(target, self._headers, reused=False)
        except (TimeoutError, OSError, h11.ProtocolError) as exc:
            if connection is not None:
                connection.close()
            raise _as_httpx_error(exc, path, self._timeout) from None
        except BaseException:  # httpx errors from connecting, or cancelled mid-request: state unknown
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
        if self._closed or connection.writer.is_closing():
            connection.close()
            return
        connection.idle_since = time.monotonic()
        if len(self._idle) == self._idle.maxlen:
            self._idle.popleft().close()
        self._idle.append(connection)

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._tls else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {self._host}:{self._port} timed out") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS verification (ssl.SSLError is an OSError)
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        """Close every idle connection; connections in use are closed when they come back."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()


def _as_httpx_error(exc: Exception, path: str, timeout: float) -> httpx.TransportError:
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(f"no answer to GET {path} within {timeout:g} s")
    if isinstance(exc, h11.ProtocolError):
        return httpx.RemoteProtocolError(str(exc))
    return httpx.ReadError(f"{type(exc).__name__}: {exc}")


def reached_through_proxy(base_url: str) -> bool:
    """True when httpx would send requests to ``base_url`` through a proxy from the environment
    (``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY``, unless ``NO_PROXY`` names the host)."""
    url = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(url.hostname or "")  # on Linux: NO_PROXY from the environment
