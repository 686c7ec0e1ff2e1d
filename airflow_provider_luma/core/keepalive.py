"""A lean keep-alive HTTP/1.1 GET path for the triggerer's status polls (asyncio streams, one prebuilt request).

Why it exists: one triggerer polls thousands of renders (500 status GETs a second at 5,000 renders and 10-s
polling). Through ``httpx.AsyncClient`` most of the CPU of a poll went to httpcore's pool bookkeeping (it walks
every pooled connection and probes each idle socket with a ``poll()`` syscall on every request start and finish)
and to building and merging URL objects; see docs/performance.md. A status poll needs none of that: one fixed
origin, one request line, the same headers every time (built once, as bytes), and a small JSON answer, read by a
strict HTTP/1.1 response reader. This module does exactly that and nothing else.

What it keeps from httpx: the same TLS verification (the client's context, ``default_ssl_context()``: certifi,
or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), the same exception types (``httpx.ConnectError`` before a byte is sent,
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

import httpx

IDLE_EXPIRY = 4.0
MAX_BODY = 4 * 1024 * 1024  # a status answer is a few hundred bytes; refuse to buffer an endless one


class _StaleConnection(Exception):
    """A reused connection was closed by the server before any byte of the answer arrived."""


def _protocol_error(problem: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"unreadable answer to a status poll: {problem}")


def _parse_head(head: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, HTTP version and raw headers of a response head (which ends with an empty line)."""
    status_line, *lines = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise _protocol_error(f"not an HTTP/1.x status line: {status_line[:60]!r}")
    headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):  # no folding, no blanks
            raise _protocol_error(f"malformed header line {line[:60]!r}")
        headers.append((name, value.strip(b" \t")))
    return int(parts[1]), parts[0], headers


class _Connection:
    """One keep-alive connection. Reads answers strictly: ``Content-Length``, ``chunked`` or (without either)
    up to the connection's end; 1xx answers are skipped; anything else is a protocol error."""

    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing() or now - self.idle_since > IDLE_EXPIRY)

    def close(self) -> None:
        self.writer.close()

    async def get(self, request: bytes, *, reused: bool) -> httpx.Response:
        self.writer.write(request)
        head = b""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status, version, headers = _parse_head(head)
            while 100 <= status < 200:  # informational (100 Continue, 103 Early Hints): the answer follows
                status, version, headers = _parse_head(await self.reader.readuntil(b"\r\n\r\n"))
            body, keep_alive = await self._body(status, version, headers)
        except asyncio.IncompleteReadError as exc:
            if reused and not head and not exc.partial:
                raise _StaleConnection from None
            if not head:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.") from None
            raise _protocol_error("the server closed the connection before the whole answer was sent") from None
        except (ConnectionResetError, BrokenPipeError):
            if reused and not head:
                raise _StaleConnection from None
            raise
        except asyncio.LimitOverrunError:
            raise _protocol_error("a line longer than 64 KiB") from None
        if not keep_alive:
            self.writer.close()
        return httpx.Response(status, headers=headers, content=body)

    async def _body(self, status: int, version: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bool]:
        lengths: set[bytes] = set()
        codings: list[bytes] = []
        tokens: set[bytes] = set()
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                lengths.add(value)
            elif lower == b"transfer-encoding":
                codings.append(value.lower())
            elif lower == b"connection":
                tokens.update(token.strip() for token in value.lower().split(b","))
        keep_alive = version == b"HTTP/1.1" and b"close" not in tokens
        if status in (204, 304):
            return b"", keep_alive
        if codings:
            if codings != [b"chunked"] or lengths:
                raise _protocol_error(f"unsupported framing (Transfer-Encoding {b', '.join(codings)!r})")
            return await self._chunked(), keep_alive
        if lengths:
            (length,) = lengths if len(lengths) == 1 else (b"",)
            if not length.isdigit():
                raise _protocol_error(f"Content-Length {b', '.join(sorted(lengths))!r}")
            if int(length) > MAX_BODY:
                raise _protocol_error(f"larger than {MAX_BODY} bytes")
            return await self.reader.readexactly(int(length)), keep_alive
        body = await self.reader.read(MAX_BODY + 1)  # no length: the body ends with the connection
        while len(body) <= MAX_BODY and (more := await self.reader.read(MAX_BODY + 1 - len(body))):
            body += more
        if len(body) > MAX_BODY:
            raise _protocol_error(f"larger than {MAX_BODY} bytes")
        return body, False

    async def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = (await self.reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _protocol_error(f"chunk size {size_line[:20]!r}") from None
            if size == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, ignored
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise _protocol_error(f"larger than {MAX_BODY} bytes")
            chunks.append(await self.reader.readexactly(size))
            if await self.reader.readexactly(2) != b"\r\n":
                raise _protocol_error("a chunk longer than its size")


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
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        url = urlsplit(base_url)
        self._host = url.hostname or ""
        self._tls = url.scheme == "https"
        self._port = url.port or (443 if self._tls else 80)
        if self._tls and ssl_context is None:
            raise ValueError("an https origin needs the client's TLS context")
        self._ssl = ssl_context if self._tls else None
        self._prefix = url.path.rstrip("/")
        netloc = self._host if url.port is None else f"{self._host}:{url.port}"
        if ":" in self._host:  # IPv6 literal
            netloc = f"[{self._host}]" if url.port is None else f"[{self._host}]:{url.port}"
        wire = {"Host": netloc, **headers}
        for name, value in wire.items():
            if any(char in value for char in "\r\n\0"):  # never the value: it may be the API key
                raise ValueError(f"HTTP header {name} contains a line break or NUL")
        fields = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in wire.items())
        self._request_tail = b" HTTP/1.1\r\n" + fields + b"\r\n"  # the same for every poll
        self._timeout, self._connect_timeout = timeout, connect_timeout
        self._idle: deque[_Connection] = deque(maxlen=max_connections)
        self._closed = False

    @property
    def is_closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    async def get(self, path: str) -> httpx.Response:
        """``GET {base path}{path}``; raises httpx transport exceptions like ``httpx.AsyncClient`` would."""
        request = b"GET " + (self._prefix + quote(path, safe="/:@!$&'()*+,;=~")).encode("ascii") + self._request_tail
        connection, reused = self._checkout()
        try:
            async with asyncio.timeout(self._timeout):
                if connection is None:
                    connection = await self._connect()
                try:
                    response = await connection.get(request, reused=reused)
                except _StaleConnection:
                    connection.close()
                    connection = await self._connect()
                    response = await connection.get(request, reused=False)
        except (TimeoutError, OSError) as exc:
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
    return httpx.ReadError(f"{type(exc).__name__}: {exc}")


def reached_through_proxy(base_url: str) -> bool:
    """True when httpx would send requests to ``base_url`` through a proxy from the environment
    (``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY``, unless ``NO_PROXY`` names the host)."""
    url = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(url.hostname or "")  # on Linux: NO_PROXY from the environment
