"""A still frame of a stored take (a JPEG), for the review request's Markdown body (``GET /luma/still/...``).

Airflow writes a task instance's HITL body once, at its first take; the image it names is this route, which reads
the task instance's **delivery record** at view time, so it always shows the latest take's stored copy.

The stored copy is untrusted input to a video decoder (a User-role account cannot choose which file is opened, see
:mod:`._media`, but the bytes came from the service): PyAV's FFmpeg opens it with the MP4/QuickTime demuxer only (no
format probing, so a playlist or concat file cannot make FFmpeg open other files or URLs; no external data
references), reads at most :data:`MAX_READ_BYTES` of it, demuxes at most :data:`MAX_PACKETS` packets, refuses
frames over :data:`MAX_PIXELS`, and keeps the first decodable frame. Any failure is a 422, never a 500.

PyAV is the optional extra ``stills`` (``pip install "airflow-provider-luma[stills]"``); without it the route
answers 404. It is imported only here, on the api-server's first still request.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import Any, BinaryIO, Final

from airflow_provider_luma.plugins._media import VideoRefused

STILL_WIDTH: Final = 640
"""The still's width at most (the UI shows body images at up to 300 px; twice that stays sharp on HiDPI screens)."""
MAX_READ_BYTES: Final = 64 * 1024 * 1024
"""Bytes of the stored copy the decoder may read (its index and first frames are far less; a 4K clip is larger)."""
MAX_PACKETS: Final = 120
"""Packets demuxed while looking for the first decodable frame."""
MAX_PIXELS: Final = 4096 * 4096
"""Frames larger than this are not decoded (Luma renders at most 4K, 3840 x 2160)."""
MAX_CONCURRENT: Final = 2
"""Stills decoded at once by one api-server process (the rest get a 503 at once: a waiting request would hold a
thread of the pool Airflow's own sync endpoints share)."""
MISSING_DECODER: Final = (
    'No still: the api-server has no video decoder (pip install "airflow-provider-luma[stills]" installs PyAV)'
)

_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT)


class _CappedReader:
    """A read-only file object that ends (reads ``b""``) once ``cap`` bytes were read in total; seeks are free."""

    def __init__(self, handle: BinaryIO, cap: int) -> None:
        self._handle, self._left = handle, cap

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""  # to the decoder, the end of the file: no frame found is a 422 below
        data = self._handle.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()


def decoder() -> Any:
    """The ``av`` module (PyAV), imported on first use.

    :raises VideoRefused: 404 when PyAV is not installed.
    """
    try:
        import av
    except ImportError:
        raise VideoRefused(404, MISSING_DECODER) from None
    return av


def make_still(handle: BinaryIO) -> bytes:
    """A JPEG of the first decodable video frame of the MP4/QuickTime file open in ``handle`` (closed here), at
    most :data:`STILL_WIDTH` wide.

    :raises VideoRefused: 404 without PyAV, 503 when the api-server is busy decoding others, 422 when the file is
        not an MP4 with a decodable video frame within the caps.
    """
    try:
        av = decoder()
        if not _SLOTS.acquire(blocking=False):
            raise VideoRefused(503, "No still: the api-server is busy decoding others; try again")
        try:
            return _first_frame_jpeg(av, _CappedReader(handle, MAX_READ_BYTES))
        finally:
            _SLOTS.release()
    except VideoRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - a hostile or broken file: any decoder error is the file's, never a 500
        raise VideoRefused(422, f"No still: the stored copy cannot be decoded ({type(exc).__name__})") from None
    finally:
        handle.close()


def _first_frame_jpeg(av: Any, source: _CappedReader) -> bytes:
    # "mov" is FFmpeg's MP4/QuickTime demuxer: naming it skips format probing; its data references stay disabled.
    with av.open(source, mode="r", format="mov", options={"enable_drefs": "0"}) as container:
        if not container.streams.video:
            raise VideoRefused(422, "No still: the stored copy has no video stream")
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if width * height > MAX_PIXELS:
            raise VideoRefused(422, f"No still: a {width}x{height} frame is over the decoder's size limit")
        for count, packet in enumerate(container.demux(stream), start=1):
            if count > MAX_PACKETS:
                break
            for frame in packet.decode():
                return _jpeg(av, frame)
    raise VideoRefused(422, f"No still: no decodable video frame in the first {MAX_PACKETS} packets")


def _jpeg(av: Any, frame: Any) -> bytes:
    if frame.width * frame.height > MAX_PIXELS or frame.width <= 0 or frame.height <= 0:
        raise VideoRefused(422, "No still: the first frame is over the decoder's size limit")
    width = min(STILL_WIDTH, frame.width) // 2 * 2  # yuv 4:2:0 wants even sizes
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    packets = encoder.encode(frame.reformat(width=width, height=height, format="yuvj420p")) + encoder.encode(None)
    return b"".join(bytes(p) for p in packets)
