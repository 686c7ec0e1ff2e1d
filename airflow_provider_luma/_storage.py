"""Where downloaded renders go: ``output_path`` parsing, an ``ObjectStoragePath`` sink, asset URIs, UI links.

``output_path`` (templated by Airflow first) is a local path or any ``ObjectStoragePath`` URI (``file:///…``,
``s3://conn_id@bucket/key``, ...), and either

* a **folder**: it ends with ``/``, or its last segment has neither a ``{placeholder}`` nor a file suffix. Files are
  named ``{generation_id}.mp4`` (and ``{generation_id}.exr``); or
* a **file name pattern**: ``{generation_id}``, ``{request_id}``, ``{dag_id}``, ``{task_id}``, ``{run_id}``,
  ``{map_index}``, ``{mode}`` and ``{ext}`` (``mp4`` / ``exr``) are filled in. Without ``{ext}``, the EXR export takes
  the video's name with the suffix ``.exr``.

Single braces are ours; double braces are Jinja's and are rendered before this module sees the string.
"""

from __future__ import annotations

import re
import string
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_luma.exceptions import LumaValidationError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

PLACEHOLDERS = ("generation_id", "request_id", "dag_id", "task_id", "run_id", "map_index", "mode", "ext")
DEFAULT_FILE_NAME = "{generation_id}.{ext}"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@:-]")


@dataclass(frozen=True)
class OutputSpec:
    """A validated ``output_path``: the folder/pattern as a URI-capable string."""

    raw: str
    pattern: str  # the full path pattern, placeholders unresolved

    def resolve(self, ext: str, values: dict[str, Any]) -> ObjectStoragePath:
        """The final location of the ``ext`` file ("mp4" / "exr") for these placeholder values."""
        from airflow.sdk import ObjectStoragePath

        safe = {key: _UNSAFE.sub("_", str(value if value is not None else "none")) for key, value in values.items()}
        text = self.pattern.format_map({**safe, "ext": ext})
        path = ObjectStoragePath(text)
        if ext != "mp4" and "{ext}" not in self.pattern:
            path = path.with_suffix(f".{ext}")
        return path


def parse_output_path(value: Any, field: str = "output_path") -> OutputSpec | None:
    """Validate ``output_path`` (after templating, before any request): placeholders, scheme, filesystem.

    :raises LumaValidationError: naming ``field`` and the rule it breaks.
    """
    if value is None:
        return None
    raw = str(value).strip()
    if raw in ("", "None"):
        return None
    if "://" not in raw:
        # A plain local path: make it absolute now, so the worker's working directory does not matter later.
        folder = raw.endswith(("/", "\\"))
        # Not Path.as_uri(): it would percent-encode the {placeholders}.
        raw = "file://" + str(Path(raw).expanduser().absolute()) + ("/" if folder else "")
    last = raw.rstrip("/").rsplit("/", 1)[-1]
    is_folder = raw.endswith("/") or ("{" not in last and "." not in last)
    pattern = f"{raw.rstrip('/')}/{DEFAULT_FILE_NAME}" if is_folder else raw
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as exc:
        problem = f"{field}: {value!r} is not a valid pattern ({exc}); use {{name}} placeholders"
        raise LumaValidationError([problem]) from None
    unknown = sorted(n for n in names if n not in PLACEHOLDERS)
    if unknown:
        raise LumaValidationError(
            [f"{field}: unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; use {_known()}"]
        )
    spec = OutputSpec(raw=str(value), pattern=pattern)
    scheme = pattern.split("://", 1)[0]
    try:
        # Resolving the filesystem is the check: an unknown scheme, or one whose provider is not installed, fails
        # here, before any spend.
        spec.resolve("mp4", dict.fromkeys(PLACEHOLDERS, "x")).fs  # noqa: B018
    except (ValueError, ImportError) as exc:
        raise LumaValidationError(
            [f"{field}: cannot write to {scheme}:// ({exc}); install the Airflow provider for that storage"]
        ) from None
    return spec


def _known() -> str:
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


class StorageSink:
    """Writes to a hidden temporary name next to ``final`` and renames it on completion.

    Readers never see half a file under the final name: a local rename is atomic, and object stores publish an
    object only when its upload completes. A failed attempt removes its temporary file.
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        self.final = final
        self._temp: ObjectStoragePath | None = None

    def open(self) -> BinaryIO:
        """A fresh temporary file ``.<name>.<random>.part`` in the final folder."""
        self.discard()
        self.final.parent.mkdir(parents=True, exist_ok=True)
        temp = self._temp = self.final.parent / f".{self.final.name}.{uuid.uuid4().hex[:8]}.part"
        # The filesystem's own file, not ObjectStoragePath.open(): that wrapper reports hook lineage on every
        # write() call, i.e. thousands of times per file, for the temporary name. commit() reports the final one.
        handle: BinaryIO = temp.fs.open(temp.path, "wb")
        return handle

    def commit(self, size: int) -> None:
        """Rename into place and check the stored size."""
        if self._temp is None:
            raise OSError("commit() without open()")
        temp, self._temp = self._temp, None
        stored = int(temp.stat().st_size)
        if stored != size:
            temp.unlink(missing_ok=True)
            raise OSError(f"storage holds {stored} bytes of {size} written")
        temp.rename(self.final)
        _report_lineage(self.final)

    def discard(self) -> None:
        """Remove the temporary file of an abandoned attempt."""
        temp, self._temp = self._temp, None
        if temp is not None:
            try:
                temp.unlink(missing_ok=True)
            except OSError:
                pass  # best effort: the final name is untouched either way


def _report_lineage(path: ObjectStoragePath) -> None:
    """Tell Airflow's hook-lineage collector (OpenLineage, ...) about the stored file, once."""
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector

        get_hook_lineage_collector().add_output_asset(context=path, uri=asset_uri(path))
    except Exception:  # noqa: BLE001 - lineage is informational; it must never fail a paid render's delivery
        pass


def asset_uri(path: ObjectStoragePath) -> str:
    """The stored location as an Asset URI: the path's URI without the ``conn_id@`` Airflow puts in it."""
    parts = urllib.parse.urlsplit(str(path))
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme or "file", netloc, parts.path, "", ""))


_CONSOLES = {
    "s3": "https://s3.console.aws.amazon.com/s3/object/{bucket}?prefix={key}",
    "s3a": "https://s3.console.aws.amazon.com/s3/object/{bucket}?prefix={key}",
    "gs": "https://console.cloud.google.com/storage/browser/_details/{bucket}/{key}",
    "gcs": "https://console.cloud.google.com/storage/browser/_details/{bucket}/{key}",
}


def browsable_url(uri: str) -> str | None:
    """A URL a browser can open for a stored file (its cloud console page), or None (e.g. ``file://``)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return uri
    template = _CONSOLES.get(parts.scheme)
    if template is None or not parts.netloc:
        return None
    return template.format(bucket=parts.netloc, key=urllib.parse.quote(parts.path.lstrip("/")))
