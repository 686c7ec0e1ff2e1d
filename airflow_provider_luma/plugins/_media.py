"""Serving a clip's video to the browser: a stored copy streamed with HTTP Range support, else a fresh
presigned URL minted through :class:`~airflow_provider_luma.hooks.LumaHook` (the API key stays on the server).

Only locations recorded in the task instance's own result (``video_path``, ``request_id``) are used: the client
names a task instance, never a path.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

CHUNK = 256 * 1024
PRESIGNED_CACHE_SECONDS = 300.0
"""A minted URL is reused this long (a player re-requests its source when seeking or re-buffering)."""

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")
_MINTED: dict[tuple[str, str], tuple[float, str]] = {}
_MINTED_LOCK = threading.Lock()


class RangeNotSatisfiable(ValueError):
    """The ``Range`` header asks for bytes the file does not have (HTTP 416)."""


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


def open_stored(uri: str) -> tuple[Any, int]:
    """The ``ObjectStoragePath`` of a stored copy and its size.

    :raises FileNotFoundError: the file is gone.
    """
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(uri)
    if not path.is_file():
        raise FileNotFoundError(uri)
    return path, int(path.stat()["size"])


def iter_file(path: Any, start: int, length: int) -> Iterator[bytes]:
    """Yield ``length`` bytes of ``path`` from ``start`` in chunks (constant memory)."""
    handle: BinaryIO = path.open("rb")
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


def fresh_video_url(conn_id: str, request_id: str, model: str | None) -> str | None:
    """A presigned URL for the render, minted now (or within :data:`PRESIGNED_CACHE_SECONDS`), if it is allowed.

    Returns ``None`` when the service no longer offers the video or names a URL that may not be opened
    (https only; http only to a loopback host).
    """
    from airflow_provider_luma.core.jobs import JobStatus
    from airflow_provider_luma.core.media import media_url_problem
    from airflow_provider_luma.hooks import LumaHook

    key, now = (conn_id, request_id), time.monotonic()
    with _MINTED_LOCK:
        hit = _MINTED.get(key)
        if hit is not None and now - hit[0] < PRESIGNED_CACHE_SECONDS:
            return hit[1]
    job = LumaHook(conn_id).get_generation(request_id, model)
    url = job.video_url
    if job.status is not JobStatus.SUCCESS or not url or media_url_problem(url) is not None:
        return None
    with _MINTED_LOCK:
        for stale in [k for k, (t, _) in _MINTED.items() if now - t >= PRESIGNED_CACHE_SECONDS]:
            del _MINTED[stale]
        _MINTED[key] = (now, url)
    return url
