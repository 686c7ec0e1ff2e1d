"""A video the user already has, opened as the source of an edit or a reframe (the Airflow side of
:mod:`airflow_provider_luma.core.specs.source`): an absolute local path or an ``ObjectStoragePath`` URI.

A fresh start inspects the file once (:func:`open_source_video`: type, size, duration, SHA-256); a resubmission
after a rate-limit wait reopens it by name from the durable record (:func:`reopen_source_video`) without reading
it, since the bytes are read again anyway when the request is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_luma.core.errors import LumaValidationError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_luma.core.specs.source import VideoFile


def _locate(value: Any, field: str) -> tuple[ObjectStoragePath, int]:
    """The file as an ``ObjectStoragePath`` and its size.

    :raises LumaValidationError: naming ``field``: relative path, missing or unreadable file.
    """
    from airflow.sdk import ObjectStoragePath

    raw = str(value).strip()
    if "://" not in raw:
        if raw.startswith("~"):
            raw = str(Path(raw).expanduser())
        if not raw.startswith("/"):
            raise LumaValidationError([f"{field}: got {raw!r}; a local path must be absolute"])
        raw = "file://" + raw
    try:
        path = ObjectStoragePath(raw)
        return path, int(path.stat().st_size)
    except FileNotFoundError:
        raise LumaValidationError([f"{field}: {value!s} does not exist"]) from None
    except (OSError, ValueError) as exc:
        raise LumaValidationError([f"{field}: {value!s} cannot be read ({type(exc).__name__}: {exc})"]) from None


def _opener(path: ObjectStoragePath) -> Any:
    def opener() -> BinaryIO:
        handle: BinaryIO = path.open("rb")  # type: ignore[no-untyped-call]
        return handle

    return opener


def open_source_video(value: Any, field: str = "source_video") -> VideoFile:
    """Check a user's video for use as an edit/reframe source.

    The file is read once, in pieces, to check its type and duration and hash it; it is read again, streamed, only
    when the request is sent.

    :raises LumaValidationError: naming ``field``: relative path, missing file, not an MP4, too large or long.
    """
    from airflow_provider_luma.core.specs.source import inspect_video

    path, size = _locate(value, field)
    return inspect_video(_opener(path), str(value), size=size, field_name=field)


def reopen_source_video(facts: Mapping[str, Any], field: str = "source_video") -> VideoFile:
    """The source video a durable record describes (``label``, ``media_type``, ``size``, ``sha256``,
    ``duration_seconds``), to send again without inspecting or hashing it.

    :raises LumaValidationError: naming ``field`` when the file is gone or its size changed since it was checked
        (the render would then not be the one whose digest is recorded).
    """
    from airflow_provider_luma.core.specs.source import VideoFile

    label = str(facts["label"])
    path, size = _locate(label, field)
    if size != int(facts["size"]):
        raise LumaValidationError(
            [f"{field}: {label} changed since this task first checked it ({facts['size']} bytes, now {size})"]
        )
    duration = facts.get("duration_seconds")
    return VideoFile(
        label, str(facts["media_type"]), size, str(facts["sha256"]), None if duration is None else float(duration),
        _opener(path),
    )  # fmt: skip
