"""Media files of the simulator: the bundled sample MP4, presigned-URL signatures and chunked bodies.

Pure: no sockets, no simulator state.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from typing import Final

CHUNK_SIZE: Final = 1 << 20
"""Bodies are streamed in pieces of this size (1 MiB), so a 512 MB download never sits in memory."""

MP4_CONTENT_TYPE: Final = "video/mp4"
EXR_CONTENT_TYPE: Final = "image/x-exr"

# An OpenEXR file starts with the magic number 76 2f 31 01 and a version field; the rest is a readable marker.
# Nothing in the provider decodes EXR, so a recognisable stub is enough.
EXR_BYTES: Final = b"v/1\x01\x02\x00\x00\x00" + b"simulated EXR export from airflow_provider_luma.testing\n" * 4

_ZEROS: Final = bytes(CHUNK_SIZE)


@functools.cache
def sample_mp4() -> bytes:
    """The bundled sample video: 2 s, 320x180, H.264 test pattern (``sample.mp4`` next to this module)."""
    return files("airflow_provider_luma.testing").joinpath("sample.mp4").read_bytes()


def sign(secret: bytes, filename: str, expires: int) -> str:
    """HMAC-SHA256 (hex) of ``filename`` and its expiry, as an S3 presigned URL carries."""
    return hmac.new(secret, f"{filename}:{expires}".encode(), hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, filename: str, expires: int, signature: str) -> bool:
    """Constant-time check of a signature made by :func:`sign`."""
    return hmac.compare_digest(sign(secret, filename, expires), signature)


@dataclass(frozen=True)
class MediaBody:
    """A file to serve: its type, exact size, and a generator of chunks that adds up to ``size`` bytes.

    ``head`` is sent first; the remaining ``size - len(head)`` bytes are padding made on the fly.
    """

    content_type: str
    size: int
    head: bytes

    def chunks(self) -> Iterator[bytes]:
        """Yield the body in pieces of at most :data:`CHUNK_SIZE` bytes."""
        for start in range(0, len(self.head), CHUNK_SIZE):
            yield self.head[start : start + CHUNK_SIZE]
        remaining = self.size - len(self.head)
        while remaining > 0:
            n = min(remaining, CHUNK_SIZE)
            yield _ZEROS[:n]
            remaining -= n


def mp4_body(size: int | None = None) -> MediaBody:
    """The sample MP4, optionally grown (or cut) to exactly ``size`` bytes.

    Growing appends an MP4 ``free`` box, which players skip, so the padded file still plays; only its header is
    kept in memory, the zeros are generated while streaming. Cutting below the sample size (or padding by fewer
    than 8 bytes, too few for a box header) gives a byte-exact body that is no longer a valid MP4.
    """
    sample = sample_mp4()
    if size is None or size == len(sample):
        return MediaBody(MP4_CONTENT_TYPE, len(sample), sample)
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    if size < len(sample):
        return MediaBody(MP4_CONTENT_TYPE, size, sample[:size])
    return MediaBody(MP4_CONTENT_TYPE, size, sample + _free_box_header(size - len(sample)))


def exr_body() -> MediaBody:
    """The stub EXR export."""
    return MediaBody(EXR_CONTENT_TYPE, len(EXR_BYTES), EXR_BYTES)


def _free_box_header(box_size: int) -> bytes:
    """Header of a ``free`` box that spans ``box_size`` bytes in total (empty when too small for a box)."""
    if box_size < 8:
        return b""
    if box_size <= 0xFFFFFFFF:
        return struct.pack(">I4s", box_size, b"free")
    # Boxes of 4 GiB or more use the 64-bit "largesize" form: size field 1, then the real size.
    return struct.pack(">I4sQ", 1, b"free", box_size)
