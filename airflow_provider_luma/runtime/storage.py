"""Where downloaded renders go: ``output_path`` parsing, an ``ObjectStoragePath`` sink, asset URIs, UI links.

``output_path`` (templated by Airflow first) is an absolute local path or any ``ObjectStoragePath`` URI
(``file:///…``, ``s3://conn_id@bucket/key``, ...), and either

* a **file name pattern**, when its last segment ends in ``.mp4`` or ``.{ext}``: ``{generation_id}``,
  ``{request_id}``, ``{dag_id}``, ``{task_id}``, ``{run_id}``, ``{map_index}``, ``{mode}`` and ``{ext}``
  (``mp4`` / ``exr``) are filled in; without ``{ext}`` the EXR export takes the video's name with ``.exr``; or
* a **folder**, anything else: files are named ``{task_id}-{generation_id}.mp4`` (and ``.exr``).

Single braces are ours; double braces are Jinja's and are rendered before this module sees the string. Values
are reduced to ``[A-Za-z0-9._+=@:-]`` and ``.``/``..`` become ``_``, so no value can leave the folder.
"""

from __future__ import annotations

import io
import re
import string
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from airflow_provider_luma.core.errors import LumaValidationError
from airflow_provider_luma.core.specs.base import is_unset

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

PLACEHOLDERS = ("generation_id", "request_id", "dag_id", "task_id", "run_id", "map_index", "mode", "ext")
UNIQUE_PER_RENDER = ("generation_id", "request_id", "map_index")
DEFAULT_FILE_NAME = "{task_id}-{generation_id}.{ext}"  # a folder of clips reads by task
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@:-]")
_FILE_SUFFIXES = (".mp4", ".{ext}")


def _safe(value: Any) -> str:
    text = _UNSAFE.sub("_", str(value if value is not None else "none"))
    return "_" if text in (".", "..", "") else text


@dataclass(frozen=True)
class OutputSpec:
    """A validated ``output_path``: the folder/pattern as a URI-capable string."""

    raw: str
    pattern: str  # the full path pattern, placeholders unresolved
    names: frozenset[str]  # the placeholders it uses

    @property
    def unique_per_render(self) -> bool:
        """Whether two renders (e.g. two map indexes) always get different file names."""
        return any(name in self.names for name in UNIQUE_PER_RENDER)

    def resolve(self, ext: str, values: dict[str, Any]) -> ObjectStoragePath:
        """The final location of the ``ext`` file ("mp4" / "exr") for these placeholder values."""
        from airflow.sdk import ObjectStoragePath

        safe = {key: _safe(value) for key, value in values.items()}
        text = self.pattern.format_map({**safe, "ext": ext})
        path = ObjectStoragePath(text)
        if ext != "mp4" and "{ext}" not in self.pattern:
            path = path.with_suffix(f".{ext}")
        return path

    def static_folder(self) -> ObjectStoragePath:
        """The deepest folder that does not depend on a placeholder (where a write probe can go)."""
        from airflow.sdk import ObjectStoragePath

        static = self.pattern.split("{", 1)[0]
        return ObjectStoragePath(static.rsplit("/", 1)[0] + "/")


def parse_output_path(value: Any, field: str = "output_path", *, resolve: bool = True) -> OutputSpec | None:
    """Validate ``output_path`` (after templating, before any request): shape, placeholders, filesystem.

    :param resolve: also check that the scheme's filesystem is installed (``False`` at DAG-parse time, where
        importing a storage provider would slow every parse).

    :raises LumaValidationError: naming ``field`` and the rule it breaks.
    """
    if is_unset(value):
        return None
    raw = str(value).strip()

    given = raw

    def invalid(rule: str) -> LumaValidationError:
        return LumaValidationError([f"{field}: got {given!r}; {rule}"])

    if "\\" in raw or re.match(r"^[A-Za-z]:", raw):
        raise invalid("use forward slashes and a POSIX path or a URI (workers run on Linux)")
    if "?" in raw or "#" in raw:
        raise invalid("'?' and '#' are not allowed (they would end the path part of the stored file's URI)")
    if "://" not in raw:
        if raw.startswith("~"):
            raw = str(Path(raw).expanduser()) + ("/" if raw.endswith("/") else "")
        if not raw.startswith("/"):
            raise invalid("a local path must be absolute: execute() and its resumption may run in different workers")
        raw = "file://" + raw  # not Path.as_uri(): it would percent-encode the {placeholders}
    last = raw.rstrip("/").rsplit("/", 1)[-1]
    is_file = not raw.endswith("/") and last.lower().endswith(_FILE_SUFFIXES)
    pattern = raw if is_file else f"{raw.rstrip('/')}/{DEFAULT_FILE_NAME}"
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise invalid(f"it is not a valid pattern ({exc}); use {{name}} placeholders") from None
    names = frozenset(name for name, _, _ in fields)
    unknown = sorted(n for n in names if n not in PLACEHOLDERS)
    if unknown:
        raise invalid(f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; use {_known()}")
    if any(spec or conv for _, spec, conv in fields):
        raise invalid("format specs and conversions ({name:03d}, {name!r}) are not supported; use plain {name}")
    spec = OutputSpec(raw=str(value), pattern=pattern, names=names)
    probe = spec.pattern.format_map(dict.fromkeys(PLACEHOLDERS, "x"))
    if "{" in probe or "}" in probe:
        raise invalid("it has braces left over, e.g. Jinja {{ ... }} in a field that was not templated")
    if not resolve:
        return spec
    scheme = pattern.split("://", 1)[0]
    try:
        # Resolving the filesystem is the check: an unknown scheme, or one whose provider is not installed, fails
        # here, before any spend.
        spec.resolve("mp4", dict.fromkeys(PLACEHOLDERS, "x")).fs  # noqa: B018
    except (ValueError, ImportError) as exc:
        raise invalid(f"cannot write to {scheme}:// ({exc}); install the Airflow provider for that storage") from None
    return spec


def probe_writable(spec: OutputSpec, field: str = "output_path") -> None:
    """Create the static part of the folder and write, then delete, a tiny probe file there, before any spend.

    Catches missing buckets, bad credentials, read-only filesystems (``http://``) and permissions while nothing
    has been paid for yet.

    :raises LumaValidationError: naming ``field``, the folder and the storage error.
    """
    folder = spec.static_folder()
    probe = folder / f".luma-write-probe-{uuid.uuid4().hex[:8]}"
    try:
        ensure_folder(folder)
        with probe.fs.open(probe.path, "wb") as handle:
            handle.write(b"")
        probe.unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types; all mean "cannot store here"
        raise LumaValidationError(
            [f"{field}: cannot write to {folder} ({type(exc).__name__}: {exc}); nothing was submitted"]
        ) from None


def ensure_folder(folder: ObjectStoragePath) -> None:
    """Create a local folder (and its parents). Object stores have no folders, and ``mkdir`` there could even
    create a bucket (s3fs does for a missing one), so nothing is done for them."""
    if (folder.protocol or "file") in ("file", "local"):
        folder.mkdir(parents=True, exist_ok=True)


def _known() -> str:
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


class StorageSink:
    """Makes a file visible under ``final`` only once it is complete; a failed attempt leaves nothing behind.

    * Local filesystems: writes a hidden temporary file ``.<name>.<random>.part`` next to ``final`` and renames it
      into place (``os.rename`` is atomic).
    * S3 (s3fs): writes straight to the final key. S3 has no rename: s3fs's ``mv`` is a server-side copy plus a
      delete, so a temporary object would cost a second full write, show up in listings and be left behind by a
      kill between the copy and the delete. S3 itself never shows a partial object: a ``PutObject`` appears
      whole, and a multipart upload (s3fs switches to one once the data exceeds its 50 MiB block) appears only
      when it is completed. s3fs publishes at ``close()``, so the handle given out does not pass ``close()`` on:
      :meth:`commit` closes the s3fs file once the byte count is checked, and :meth:`discard` drops its buffer
      and aborts its multipart upload instead. A worker killed mid-upload leaves only an invisible incomplete
      upload (an ``AbortIncompleteMultipartUpload`` lifecycle rule removes those).
    * Any other filesystem (GCS, Azure, memory, ...): the temporary name and ``rename`` of the local case. gcsfs
      also offers a deferred commit, but it is not tested here.
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        self.final = final
        self._temp: ObjectStoragePath | None = None
        self._upload: Any = None  # the unpublished s3fs file of a direct write to the final key

    def open(self) -> BinaryIO:
        """A fresh, empty, writable file that nobody can see under the final name yet."""
        self.discard()
        fs = self.final.fs
        if _publishes_on_close(fs):
            self._upload = fs.open(self.final.path, "wb")
            return cast(BinaryIO, _Unpublished(self._upload))
        ensure_folder(self.final.parent)
        self._sweep()
        temp = self._temp = self.final.parent / f".{self.final.name}.{uuid.uuid4().hex[:8]}.part"
        # The filesystem's own file, not ObjectStoragePath.open(): that wrapper reports hook lineage on every
        # write() call, i.e. thousands of times per file, for the temporary name. commit() reports the final one.
        handle: BinaryIO = temp.fs.open(temp.path, "wb")
        return handle

    def commit(self, size: int) -> None:
        """Publish the file under its final name and check the stored size."""
        if self._upload is not None:
            upload, self._upload = self._upload, None
            if int(upload.tell()) != size:
                _abort(upload)
                raise OSError(f"storage received {int(upload.tell())} bytes of {size}")
            try:
                upload.close()  # one PUT, or the last part and CompleteMultipartUpload: the object appears whole
            except BaseException:
                _abort(upload)
                raise
            stored = int(self.final.stat().st_size)
            if stored != size:
                self.final.unlink(missing_ok=True)
                raise OSError(f"storage holds {stored} bytes of {size} written")
            _report_lineage(self.final)
            return
        temp = self._temp
        if temp is None:
            raise OSError("commit() without open()")
        stored = int(temp.stat().st_size)
        if stored != size:
            raise OSError(f"storage holds {stored} bytes of {size} written")  # discard() removes the temp file
        temp.rename(self.final)
        self._temp = None
        _report_lineage(self.final)

    def _sweep(self) -> None:
        """Remove temporary files an earlier, killed attempt left for the same final name."""
        try:
            for stale in self.final.parent.glob(f".{self.final.name}.*.part"):
                stale.unlink(missing_ok=True)
        except Exception:  # noqa: BLE001 - best effort: a leftover temp file never shadows the final name
            pass

    def discard(self) -> None:
        """Remove the temporary file, or abort the upload, of an abandoned attempt."""
        upload, self._upload = self._upload, None
        if upload is not None:
            _abort(upload)
        temp, self._temp = self._temp, None
        if temp is not None:
            try:
                temp.unlink(missing_ok=True)
            except OSError:
                pass  # best effort: the final name is untouched either way


def _publishes_on_close(fs: Any) -> bool:
    """Whether ``fs`` is S3 through s3fs, whose files publish the object at ``close()`` (see :class:`StorageSink`)."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return any(p in _OBJECT_STORE_FILES and _file_class(p) is not None for p in protocols)


def _abort(upload: Any) -> None:
    """Throw an unpublished s3fs file away: abort its multipart upload, drop its buffer, and mark it closed, or
    fsspec's ``__del__`` would ``close()`` it, i.e. publish what was written so far."""
    try:
        upload.discard()
    except Exception:  # noqa: BLE001 - best effort: an incomplete upload is invisible anyway
        pass
    upload.closed = True


_OBJECT_STORE_FILES = {"s3": "s3fs.core:S3File", "s3a": "s3fs.core:S3File"}


def _file_class(protocol: str) -> Any:
    import importlib

    module, _, name = _OBJECT_STORE_FILES[protocol].partition(":")
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


class _Unpublished(io.RawIOBase):
    """The writable side of an unpublished S3 upload: closing it does not publish anything.

    ``download()`` closes what it writes to (also when a transfer fails midway); the upload is completed only by
    :meth:`StorageSink.commit`, or aborted by :meth:`StorageSink.discard`.
    """

    def __init__(self, upload: Any) -> None:
        self._upload = upload

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return int(self._upload.write(data))


def _report_lineage(path: ObjectStoragePath) -> None:
    """Tell Airflow's hook-lineage collector (OpenLineage, ...) about the stored file, once."""
    try:
        from airflow.providers.common.compat.sdk import get_hook_lineage_collector

        get_hook_lineage_collector().add_output_asset(context=path, uri=asset_uri(path))
    except Exception:  # noqa: BLE001 - lineage is informational; it must never fail a paid render's delivery
        pass


def asset_uri(path: ObjectStoragePath | str) -> str:
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
