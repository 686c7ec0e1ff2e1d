"""Serving a clip's video to the browser: a stored copy streamed with HTTP Range support, else a fresh
presigned URL minted through :class:`~airflow_provider_luma.hooks.LumaHook` (the API key stays on the server).

What may be opened comes only from the task instance's **delivery record** (``luma_delivery`` in its rendered
template fields, written by the worker; see :mod:`airflow_provider_luma.runtime.delivery_record`) and its rendered
``luma_conn_id``: the client names a task instance, never a path. XComs and ``task_state_store`` rows are never
read here: any REST account with the "User" role can write them, and a forged ``video_path`` would otherwise
stream a file of the api-server, a forged ``request_id`` spend this task's connection on another DAG's render.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Final
from urllib.parse import urlsplit

from airflow_provider_luma.plugins._model import DELIVERY_FIELD
from airflow_provider_luma.plugins._review import awaiting_review

CHUNK = 256 * 1024
PRESIGNED_CACHE_SECONDS = 300.0
"""A minted URL is reused this long (a player re-requests its source when seeking or re-buffering)."""

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")
_MINTED: dict[tuple[str, str], tuple[float, str]] = {}
_MINTED_LOCK = threading.Lock()


WEB_SCHEMES: Final = frozenset({"http", "https", "ftp", "ftps", "data", "blob", "javascript"})
"""Never opened from the api-server, even when recorded: the worker stores only to storage, and fetching a web
address on a viewer's behalf would make the api-server a proxy."""


class RangeNotSatisfiable(ValueError):
    """The ``Range`` header asks for bytes the file does not have (HTTP 416)."""


class VideoRefused(Exception):
    """No video can be served for this task instance: ``status`` is the HTTP status (4xx), ``message`` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class VideoPlan:
    """What the video route serves, from the delivery record: ``path`` (a stored copy) first; else, or when that
    copy is gone, a fresh URL for ``request_id`` minted with ``conn_id`` (``None`` when that is not allowed)."""

    path: str | None
    request_id: str | None
    model: str | None
    backend: str | None
    conn_id: str | None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def plan_video(fields: Mapping[str, Any], state: str | None) -> VideoPlan:
    """Decide what to serve from the rendered template fields of a task instance and its state.

    A fresh URL is minted only for a successful task instance, or one holding a finished take for review (a
    failed or running one has no finished render of its own to show), and only with the connection it rendered
    with (its rendered ``luma_conn_id``).

    :raises VideoRefused: nothing can be served (404), with the reason.
    """
    if DELIVERY_FIELD not in fields:
        raise VideoRefused(
            404,
            "This task instance has no delivery record: it ran before airflow-provider-luma recorded one (or is not "
            "a Luma task), and the gallery does not open what XComs name. Its stored file, if any, is still where "
            "the task wrote it; clear the task to record it again.",
        )
    record = fields.get(DELIVERY_FIELD)
    if not isinstance(record, Mapping):
        raise VideoRefused(404, "This task instance has not recorded a Luma render (none was bought, or not yet)")
    path, request_id = _text(record.get("video_path")), _text(record.get("request_id"))
    conn_id = _text(fields.get("luma_conn_id"))
    # A take awaiting review (review=LumaReview) is a finished render too: the worker recorded its generation.
    finished = state == "success" or awaiting_review(state, record)
    mint = request_id if request_id is not None and finished and conn_id is not None else None
    if path is None and mint is None:
        if request_id is None:
            raise VideoRefused(404, "This task instance's render has no stored copy and no request id")
        if state != "success":
            raise VideoRefused(
                404,
                f"Luma request {request_id} of this task instance has no stored copy, and the task instance is "
                f"{state or 'not started'}: a fresh URL is fetched only for a task instance that succeeded",
            )
        raise VideoRefused(404, "This task instance records no connection to fetch a fresh URL with")
    return VideoPlan(path, mint, _text(record.get("model")), _text(record.get("backend")), conn_id if mint else None)


def check_stored_uri(uri: str) -> None:
    """Refuse a recorded location the api-server must not open (a web address, a relative or redacted path).

    :raises VideoRefused: 422, naming the problem.
    """
    scheme = urlsplit(uri).scheme.lower() if "://" in uri else ""
    if scheme in WEB_SCHEMES:
        raise VideoRefused(422, f"The recorded copy is a {scheme}:// address; the gallery opens only storage paths")
    if not scheme and not uri.startswith("/"):
        raise VideoRefused(422, "The recorded copy is not an absolute storage path (is it redacted?)")


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range of a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1

    def content_range(self) -> str:
        """The ``Content-Range`` header value."""
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range of a ``Range`` header, or ``None`` for the whole file.

    Multi-range and malformed headers are ignored (whole file, as RFC 9110 allows).

    :raises RangeNotSatisfiable: the range starts beyond the end of the file (or the file is empty).
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(header)
    return ByteRange(start, end, size)


def open_stored(uri: str) -> tuple[BinaryIO, int]:
    """An open handle on a stored copy (checked by :func:`check_stored_uri` first) and its size. Opened before
    the response starts, so a problem is a status code, not a stream cut short.

    :raises FileNotFoundError: the file is gone (or is not a file).
    :raises VideoRefused: 403 when the api-server may not read it, 422 when its storage cannot be opened here.
    """
    check_stored_uri(uri)
    try:
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(uri)
        if not path.is_file():
            raise FileNotFoundError(uri)
        size = int(path.stat()["size"])
        handle: BinaryIO = path.open("rb")  # type: ignore[no-untyped-call]
    except FileNotFoundError:
        raise
    except PermissionError:
        raise VideoRefused(403, "The api-server may not read the stored copy of this clip") from None
    except Exception as exc:  # noqa: BLE001 - an unknown protocol, a missing provider, storage errors: never a 500
        raise VideoRefused(422, f"The stored copy cannot be opened here ({type(exc).__name__})") from None
    return handle, size


def iter_file(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """Yield ``length`` bytes of the open ``handle`` from ``start`` in chunks (constant memory); closes it."""
    try:
        handle.seek(start)
        left = length
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        handle.close()


def fresh_video_url(conn_id: str, request_id: str, model: str | None, backend: str | None = None) -> str | None:
    """A presigned URL for the render, minted now (or within :data:`PRESIGNED_CACHE_SECONDS`), if it is allowed.

    Returns ``None`` when the service no longer offers the video or names a URL that may not be opened
    (https only; http only to a loopback host).

    :raises VideoRefused: 409 when the connection now speaks another API than the render was bought on (its id
        means nothing there).
    """
    from airflow_provider_luma.core.jobs import JobStatus
    from airflow_provider_luma.core.media import media_url_problem
    from airflow_provider_luma.hooks import LumaHook

    key, now = (conn_id, request_id), time.monotonic()
    with _MINTED_LOCK:
        hit = _MINTED.get(key)
        if hit is not None and now - hit[0] < PRESIGNED_CACHE_SECONDS:
            return hit[1]
    hook = LumaHook(conn_id)
    speaks = str(hook.get_settings().backend)
    if backend and speaks != backend:
        raise VideoRefused(409, f"The render was bought on {backend}; connection {conn_id!r} now speaks {speaks}")
    job = hook.get_generation(request_id, model)
    url = job.video_url
    if job.status is not JobStatus.SUCCESS or not url or media_url_problem(url) is not None:
        return None
    with _MINTED_LOCK:
        for stale in [k for k, (t, _) in _MINTED.items() if now - t >= PRESIGNED_CACHE_SECONDS]:
            del _MINTED[stale]
        _MINTED[key] = (now, url)
    return url
