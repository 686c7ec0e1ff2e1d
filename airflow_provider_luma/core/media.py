"""Stream a finished render from its presigned URL into a sink, in constant memory, surviving URL expiry.

Airflow-free: where the bytes go is a :class:`Sink`; the Airflow side (``ObjectStoragePath``, temporary names,
rename on completion) is :mod:`airflow_provider_luma.runtime.storage`.

* What is opened: a media URL comes from a response body, so it is untrusted. Only ``https`` URLs are opened
  (``http`` only to a loopback host, where the bundled simulator runs); :func:`check_media_url` is applied when a
  body is parsed *and* again here, and the opener has no ``file:``, ``ftp:`` or ``data:`` handler and refuses
  redirects that leave the allow-list. Without this a hostile or broken response naming ``file:///etc/...``
  would copy a worker's local file into the user's bucket.

* Transport: the API calls go through httpx (:mod:`airflow_provider_luma.core.http`), but the media bytes go through
  the standard library's ``urllib.request`` (proxies from the environment, redirects and TLS included) into one
  reused 1 MiB buffer (see :func:`_body_reader`). httpx reads a socket 64 KiB at a time and copies each piece
  several times: on a 512 MiB file it ran at 27 % of a raw loopback copy; this path runs at over 80 %
  (``benchmarks/download.py``, figures in docs/performance.md).
* Memory: one 1 MiB buffer, whatever the file size.
* Expiry: presigned URLs die after about an hour and S3 answers ``403`` then. A 401/403/404/410 asks the
  ``url_source`` for a fresh URL (the worker polls the request again) and starts over, at most
  ``max_url_refreshes`` times.
* Transient trouble (dropped connection, short body, 5xx, 429) restarts the download after a short back-off, at
  most ``max_attempts`` times. Each attempt starts from byte 0 into a fresh temporary file: the API docs say
  nothing about ``Range`` support on the media host, so resuming mid-file is not attempted.
* Verification: when the host sends ``Content-Length`` (and no ``Content-Encoding``) the byte count must match.

The presigned URL is a capability and a secret: it is never logged or put in an exception, and no
``Authorization`` header is sent with it (the API key must never reach a storage host, and S3 rejects a request
carrying two kinds of authentication).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from airflow_provider_luma import __version__
from airflow_provider_luma.core.errors import LumaDownloadError, LumaMediaURLExpired

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 5.0
CHUNK_SIZE = 1 << 20
USER_AGENT = f"airflow-provider-luma/{__version__}"
_URL_REFUSED = frozenset({401, 403, 404, 410})


class LogLike(Protocol):
    """What a logger needs to offer here: stdlib loggers and Airflow's task logger both do."""

    def info(self, msg: str, /, *args: Any) -> Any:
        """Log progress."""

    def warning(self, msg: str, /, *args: Any) -> Any:
        """Log a recoverable problem."""


class Sink(Protocol):
    """Where one file's bytes go. :mod:`airflow_provider_luma.runtime.storage` implements it over
    ``ObjectStoragePath``."""

    def open(self) -> BinaryIO:
        """A fresh, empty, writable temporary file (called once per attempt)."""

    def commit(self, size: int) -> None:
        """Make the closed temporary file visible under its final name; ``size`` is the byte count written."""

    def discard(self) -> None:
        """Remove the temporary file, if any (idempotent)."""


UrlSource = Callable[[bool], str]
"""``url_source(fresh)``: the URL to fetch; ``fresh=True`` means the last one was refused, mint a new one."""


@dataclass(frozen=True)
class DownloadStats:
    """What one completed download did."""

    size: int
    seconds: float
    attempts: int
    url_refreshes: int

    @property
    def bytes_per_second(self) -> float:
        """Average rate of the successful attempt and any failed ones before it."""
        return self.size / self.seconds if self.seconds > 0 else float("inf")


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ``::1``."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def media_url_problem(url: object) -> str | None:
    """Why a media URL must not be opened (``None`` when it may): https only, http only to a loopback host."""
    if not isinstance(url, str) or not url:
        return "it is empty"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "it is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and is_loopback_host(host):
        return None
    scheme = parts.scheme or "no scheme"
    return f"its scheme is {scheme!r} to host {host or '(none)'!r}; only https (http to a loopback host) is opened"


class _AllowListRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to URLs that pass :func:`media_url_problem` (urllib would follow one to ftp)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        problem = media_url_problem(newurl)
        if problem:
            raise LumaDownloadError(f"storage redirected to a URL that is not opened: {problem}", transient=False)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def media_client() -> urllib.request.OpenerDirector:
    """An opener for presigned media URLs: http(s) handlers only, checked redirects, proxies from the environment,
    no API key."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        _AllowListRedirects(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    opener.addheaders = [("User-Agent", USER_AGENT)]
    return opener


def human_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def download(
    client: urllib.request.OpenerDirector,
    url_source: UrlSource,
    sink: Sink,
    *,
    label: str,
    max_attempts: int = 4,
    max_url_refreshes: int = 3,
    timeout: float = 60.0,
    sleep: Callable[[float], None] | None = None,
    logger: LogLike | None = None,
) -> DownloadStats:
    """Copy one media file into ``sink``; returns its size and how it went.

    :param client: from :func:`media_client`.
    :param timeout: seconds any single connect or read may block.
    :param label: what is downloaded, for logs and errors (e.g. ``"video of generation g-1"``); never the URL.
    :raises LumaMediaURLExpired: the URL was still refused after ``max_url_refreshes`` fresh ones.
    :raises LumaDownloadError: the download kept failing, or failed in a way a retry cannot fix (other 4xx).
    """
    logger = logger or log
    sleep = sleep or time.sleep  # looked up per call, so tests can patch time.sleep
    started, attempts, refreshes = time.monotonic(), 0, 0
    url = url_source(False)
    while True:
        attempts += 1
        try:
            size = _stream_once(client, url, sink, label, logger, timeout)
        except LumaMediaURLExpired as exc:
            sink.discard()
            if refreshes >= max_url_refreshes:
                raise
            refreshes += 1
            attempts -= 1  # a refused URL is not a failed transfer
            logger.warning("%s; asking the service for a fresh URL (%d of %d)", exc, refreshes, max_url_refreshes)
            url = url_source(True)
            continue
        except LumaDownloadError as exc:
            sink.discard()
            if not exc.transient or attempts >= max_attempts:
                raise
            delay = min(2.0**attempts, 30.0)
            logger.warning("%s; starting over in %.0f s (attempt %d of %d)", exc, delay, attempts + 1, max_attempts)
            sleep(delay)
            continue
        except BaseException:
            sink.discard()
            raise
        return DownloadStats(size, time.monotonic() - started, attempts, refreshes)


def _stream_once(
    client: urllib.request.OpenerDirector, url: str, sink: Sink, label: str, logger: LogLike, timeout: float
) -> int:
    """One GET of ``url`` into a fresh temporary file, committed only when complete."""
    problem = media_url_problem(url)
    if problem:
        raise LumaDownloadError(f"{label}: the service gave a media URL that is not opened: {problem}", transient=False)
    try:
        response = client.open(urllib.request.Request(url), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        status = exc.code
        if status in _URL_REFUSED:
            refused = f"{label}: storage refused the presigned URL (HTTP {status})"
            raise LumaMediaURLExpired(refused, status_code=status) from None
        transient = status == 429 or status >= 500
        answered = f"{label}: storage answered HTTP {status}"
        raise LumaDownloadError(answered, status_code=status, transient=transient) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, bad status lines
        raise LumaDownloadError(f"{label}: could not connect ({_describe(exc, url)})") from None
    except ValueError as exc:  # not a URL urllib can fetch; its message would quote the URL
        raise LumaDownloadError(f"{label}: unusable media URL ({_describe(exc, url)})", transient=False) from None
    with response:
        expected = _expected_size(response)
        try:
            handle = sink.open()
        except OSError as exc:
            raise LumaDownloadError(f"{label}: could not create the file in storage ({exc})", transient=False) from exc
        received = _copy(response, handle, label, expected, logger, url)
    if expected is not None and received != expected:
        raise LumaDownloadError(f"{label}: got {received} bytes but the server announced {expected}")
    try:
        sink.commit(received)
    except OSError as exc:
        raise LumaDownloadError(f"{label}: could not store the file ({exc})", transient=False) from exc
    return received


def _describe(exc: BaseException, url: str) -> str:
    """``TypeName: text`` with the URL (a secret) and anything after a ``?`` taken out."""
    text = str(getattr(exc, "reason", None) or exc).replace(url, "<media url>").split("?", 1)[0]
    return f"{type(exc).__name__}: {text}"


def _expected_size(response: http.client.HTTPResponse) -> int | None:
    """The announced size, when the byte count we receive must equal it (no content encoding in between)."""
    if (response.getheader("Content-Encoding") or "identity").lower() != "identity":
        return None
    try:
        return int(response.getheader("Content-Length") or "")
    except ValueError:
        return None


def _copy(
    response: http.client.HTTPResponse,
    handle: BinaryIO,
    label: str,
    expected: int | None,
    logger: LogLike,
    url: str,
) -> int:
    """Write the body out as it arrives, through one reused 1 MiB buffer, logging progress every few seconds.

    A body cut short ends with a read returning 0 early; the caller's byte-count check catches it.
    """
    read = _body_reader(response, expected)
    buffer = memoryview(bytearray(CHUNK_SIZE))
    received, started = 0, time.monotonic()
    next_report = started + PROGRESS_EVERY_SECONDS
    total = f" of {human_bytes(expected)}" if expected is not None else ""
    with handle:
        while True:
            try:
                n = read(buffer if expected is None else buffer[: min(CHUNK_SIZE, expected - received)])
            except (OSError, http.client.HTTPException) as exc:
                raise LumaDownloadError(f"{label}: transfer failed ({_describe(exc, url)})") from None
            if not n:
                return received
            chunk = buffer[:n]
            try:
                handle.write(chunk)  # file objects copy what they are given, so the buffer can be reused
            except OSError as exc:
                # Not transient: a full disk stays full; an Airflow retry later may still succeed.
                raise LumaDownloadError(f"{label}: writing to storage failed ({exc})", transient=False) from exc
            received += n
            now = time.monotonic()
            if now >= next_report:
                next_report = now + PROGRESS_EVERY_SECONDS
                share = f" ({100 * received // expected} %)" if expected else ""
                rate = received / max(now - started, 1e-9)
                logger.info(
                    "Downloading %s: %s%s%s, %s/s", label, human_bytes(received), total, share, human_bytes(rate)
                )


def _body_reader(response: http.client.HTTPResponse, expected: int | None) -> Callable[[memoryview], int]:
    """How to read the body into a buffer: ``readinto1`` on the socket reader for a plain sized body.

    ``HTTPResponse.read1`` allocates a new bytes object per chunk (page faults for every MiB, which halved the
    throughput on a busy machine) and ``HTTPResponse.readinto`` always fills the whole buffer (fixed 1 MiB writes
    now and then stalled ext4 for a second). ``readinto1`` on the response's buffered socket reader puts what
    arrived into the reused buffer, as a raw socket copy does. That is only the body when the body is sent as is
    with a ``Content-Length`` (``expected``); chunked or unsized bodies go through ``HTTPResponse.readinto``.
    """
    socket_reader = getattr(response, "fp", None)
    if expected is None or response.chunked or not hasattr(socket_reader, "readinto1"):
        return response.readinto
    return socket_reader.readinto1  # type: ignore[union-attr,no-any-return]
