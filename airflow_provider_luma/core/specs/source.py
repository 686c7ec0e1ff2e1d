"""A video the user already has, as the source of an edit or a reframe (sent inline as ``source_data``).

GMI documents ``source_data`` (base64) + ``source_media_type`` and says "the source must be 30 seconds or shorter";
a third-party summary of Luma's docs gives 200 MB. :func:`inspect_video` checks all of it **before any spend** by
reading the file once in 1 MiB pieces: the MP4/QuickTime signature (an ``ftyp`` box), the size, the duration from
the ``mvhd`` box, and a SHA-256 that stands for the bytes in the durable record's fingerprint. The bytes are never
held in memory: the wire module streams them base64-encoded into the request body
(:func:`airflow_provider_luma.core.backends.gmi.build_submit`).

Airflow-free: the caller passes an ``opener`` (a local file or an ``ObjectStoragePath``, resolved by the Airflow
side).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from airflow_provider_luma.core.errors import LumaValidationError

SOURCE_MAX_SECONDS: Final = 30.0
SOURCE_MAX_BYTES: Final = 200 * 1024 * 1024
READ_CHUNK: Final = 1 << 20
# ISO base media brands: what GMI's example MIME type (video/mp4) covers, plus QuickTime's own brand.
_QUICKTIME_BRANDS: Final = (b"qt  ",)

Opener = Callable[[], BinaryIO]


@dataclass(frozen=True)
class VideoFile:
    """A checked source video: where it is, what it is, and a way to read it again for the request body.

    :param label: the path as the user gave it (for messages; never a secret).
    :param media_type: ``video/mp4`` or ``video/quicktime``, from the file's brand.
    :param size: bytes.
    :param sha256: hex digest of the bytes (the fingerprint stands on it, not on the path).
    :param duration_seconds: from the ``mvhd`` box, or ``None`` when the file does not say.
    """

    label: str
    media_type: str
    size: int
    sha256: str
    duration_seconds: float | None
    opener: Opener = field(repr=False, compare=False)


def inspect_video(opener: Opener, label: str, *, size: int, field_name: str = "source_video") -> VideoFile:
    """Check a source video before any spend.

    :param size: the file's size as the storage reports it (checked before a byte is read).
    :raises LumaValidationError: naming ``field_name``: empty, too large, not an MP4/QuickTime file, too long.
    """

    def invalid(rule: str) -> LumaValidationError:
        return LumaValidationError([f"{field_name}: {label!r} {rule}"])

    if size <= 0:
        raise invalid("is empty")
    if size > SOURCE_MAX_BYTES:
        raise invalid(f"is {size / 2**20:.0f} MiB; a source video may be at most {SOURCE_MAX_BYTES // 2**20} MiB")
    with opener() as handle:
        head = handle.read(12)
        if len(head) < 12 or head[4:8] != b"ftyp":
            raise invalid("is not an MP4 or QuickTime file (no 'ftyp' box at its start); send an .mp4 video")
        media_type = "video/quicktime" if head[8:12] in _QUICKTIME_BRANDS else "video/mp4"
        duration = _mvhd_duration(handle, size)
        handle.seek(0)
        digest = hashlib.sha256()
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    if duration is not None and duration > SOURCE_MAX_SECONDS + 1e-6:
        raise invalid(f"is {duration:.1f} s long; the source must be {SOURCE_MAX_SECONDS:g} seconds or shorter")
    return VideoFile(label, media_type, size, digest.hexdigest(), duration, opener)


def _mvhd_duration(handle: BinaryIO, size: int) -> float | None:
    """The movie duration in seconds from ``moov/mvhd``; ``None`` when the boxes are not where the spec says."""
    moov = _find_box(handle, 0, size, b"moov")
    if moov is None:
        return None
    mvhd = _find_box(handle, moov[0], moov[1], b"mvhd")
    if mvhd is None:
        return None
    handle.seek(mvhd[0])
    data = handle.read(32)
    if len(data) < 20:
        return None
    version = data[0]
    if version == 1 and len(data) >= 32:
        timescale, duration = struct.unpack(">IQ", data[20:32])
    else:
        timescale, duration = struct.unpack(">II", data[12:20])
    return duration / timescale if timescale else None


def _find_box(handle: BinaryIO, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """``(payload start, box end)`` of the first ``kind`` box between ``start`` and ``end`` (one level)."""
    offset = start
    while offset + 8 <= end:
        handle.seek(offset)
        header = handle.read(16)
        if len(header) < 8:
            return None
        box_size, box_type = struct.unpack(">I4s", header[:8])
        header_size = 8
        if box_size == 1 and len(header) >= 16:
            box_size, header_size = struct.unpack(">Q", header[8:16])[0], 16
        elif box_size == 0:
            box_size = end - offset
        if box_size < header_size:
            return None
        if box_type == kind:
            return offset + header_size, offset + box_size
        offset += box_size
    return None
