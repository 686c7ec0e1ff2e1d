"""Nested request shapes for the native API's rule tables: objects, arrays, ImageRefs and their value checkers.

A shape table lists, per JSON object, the keys it accepts and a node for each: a value checker (as in
:mod:`._rules`), a nested :class:`Shape`, a :class:`ListOf` or an ImageRef (:class:`Ref`). :func:`visit` walks a
body against it and names every problem by its path (``video.keyframes[3].url``). Pure: no state, no sockets.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

# The GMI tables' checkers serve the values both APIs share (generation ids, frame URLs, MP4 data).
from airflow_provider_luma.testing._rules import (
    PROMPT_LIMIT,
    Checker,
    _frame_url,
    _generation_id,
    _json_type,
    _mp4_base64,
    _string,
)

REF_WAYS: Final = ("generation_id", "url", "data")
"""The ways an ImageRef can name its media (``file_id`` needs ``/v1/files``, which is not modelled)."""


@dataclass
class Findings:
    """Problems found so far: ``invalid`` ones answer 400, ``rejected`` ones (bad media data) 422."""

    invalid: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


@dataclass(frozen=True)
class Shape:
    """A JSON object: its accepted keys and their nodes; any other key is refused (with a hint, if one is given).

    ``null`` means "not set" for every key, as on GMI.
    """

    fields: Mapping[str, Node]
    required: tuple[str, ...] = ()
    hints: Mapping[str, str] = field(default_factory=dict)
    of: str = ""

    def check(self, value: Any, path: str, out: Findings) -> None:
        """Add what is wrong with ``value`` (found at ``path``) to ``out``."""
        if not isinstance(value, dict):
            out.invalid.append(f"{path}: must be an object, got {_json_type(value)}")
            return
        given = {key: item for key, item in value.items() if item is not None}
        out.invalid += [f"{_at(path, key)}: is required" for key in self.required if key not in given]
        for key, item in given.items():
            node = self.fields.get(key)
            if node is None:
                hint = self.hints.get(key, "")
                where = f" for {self.of}" if self.of else ""
                out.invalid.append(f"{_at(path, key)}: is not a parameter{where}{f' ({hint})' if hint else ''}")
            else:
                visit(node, item, _at(path, key), out)


@dataclass(frozen=True)
class ListOf:
    """A JSON array of ``low``..``high`` items, each checked by ``item``; ``unique`` refuses repeated items."""

    item: Node
    low: int
    high: int
    unique: bool = False

    def check(self, value: Any, path: str, out: Findings) -> None:
        """Add what is wrong with ``value`` (found at ``path``) to ``out``."""
        if not isinstance(value, list):
            out.invalid.append(f"{path}: must be an array, got {_json_type(value)}")
            return
        if not self.low <= len(value) <= self.high:
            out.invalid.append(f"{path}: has {len(value)} entries; must have {self.low}-{self.high}")
        if self.unique and len({repr(item) for item in value}) != len(value):
            out.invalid.append(f"{path}: entries must be unique")
        for index, item in enumerate(value):
            visit(self.item, item, _at(path, index), out)


@dataclass(frozen=True)
class Ref:
    """An ``ImageRef``: exactly one of ``ways`` (``generation_id``, ``url``, ``data`` + ``media_type``).

    :param media: ``"image"`` (frames) or ``"video"`` (edit and reframe sources, which need ``media_type`` with a
        ``url`` too).
    """

    media: str
    ways: tuple[str, ...] = REF_WAYS

    def check(self, value: Any, path: str, out: Findings) -> None:
        """Add what is wrong with ``value`` (found at ``path``) to ``out``."""
        if not isinstance(value, dict):
            out.invalid.append(f"{path}: must be an object with one of {', '.join(self.ways)}")
            return
        given = {key: item for key, item in value.items() if item not in (None, "")}
        for key in sorted(set(given) - {*REF_WAYS, "media_type"}):
            # file_id needs the /v1/files endpoints (SDK 0.5.0), which the simulator does not serve.
            why = "files are not modelled by this simulator" if key == "file_id" else "not an ImageRef field"
            out.invalid.append(f"{_at(path, key)}: is not supported ({why})")
        ways = [way for way in REF_WAYS if way in given]
        for way in (w for w in ways if w not in self.ways):
            out.invalid.append(f"{_at(path, way)}: is not accepted here; give one of {', '.join(self.ways)}")
        if len(ways) != 1:
            out.invalid.append(f"{path}: give exactly one of {', '.join(self.ways)} (got {len(ways)})")
        needs_type = "data" in given or (self.media == "video" and "url" in given)
        if needs_type and "media_type" not in given:
            out.invalid.append(f"{_at(path, 'media_type')}: is required with {_at(path, ways[0])}")
        checks: dict[str, Checker] = {
            "generation_id": _string(_generation_id),
            "url": _string(_frame_url if self.media == "image" else _video_url),
            "media_type": _string(lambda text: _media_type(text, self.media)),
        }
        for key, checker in checks.items():
            if key in given and (problem := checker(given[key])) is not None:
                out.invalid.append(f"{_at(path, key)}: {problem}")
        if "data" in given:
            data_problem = (image_base64 if self.media == "image" else _string(_mp4_base64))(given["data"])
            if data_problem is not None:  # bad media data is a 422 on the native API
                out.rejected.append(f"{_at(path, 'data')}: {data_problem}")


Node = Checker | Shape | ListOf | Ref
"""One entry of a shape table: a value checker, or a nested object, array or ImageRef."""


def visit(node: Node, value: Any, path: str, out: Findings) -> None:
    """Check ``value`` against ``node``, adding problems named by ``path`` to ``out``."""
    if isinstance(node, Shape | ListOf | Ref):
        node.check(value, path, out)
    elif (problem := node(value)) is not None:
        out.invalid.append(f"{path}: {problem}")


# -- value checkers the GMI tables do not have ----------------------------------------------------------------


def native_prompt(value: Any) -> str | None:
    """A prompt of 1-6000 characters, with Luma's own message."""
    if not isinstance(value, str):
        return f"must be a string, got {_json_type(value)}"
    # Luma's documented 400 text, verbatim.
    return (
        None if 1 <= len(value.strip()) <= PROMPT_LIMIT else f"Prompt must be between 1 and {PROMPT_LIMIT} characters"
    )


def any_string(value: Any) -> str | None:
    """Any JSON string (``user_id`` is opaque to the API)."""
    return None if isinstance(value, str) else f"must be a string, got {_json_type(value)}"


def frame_index(value: Any) -> str | None:
    """A non-negative integer; the grid's end depends on the duration, a cross-field rule."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer frame index, got {_json_type(value)}"
    return None if value >= 0 else f"got {value}; frame indexes start at 0"


def number(low: float | None, high: float | None) -> Checker:
    """A JSON number from ``low`` to ``high`` (``None``: unbounded)."""

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {_json_type(value)}"
        if (low is not None and value < low) or (high is not None and value > high):
            return f"got {value}; must be {'any number' if low is None else low} to {high}"
        return None

    return check


def _video_url(text: str) -> str | None:
    parts = urlsplit(text)
    # The simulator never fetches it; such a source counts as an inline one (5 s, unknown ratio).
    return None if parts.scheme in ("http", "https") and parts.netloc else f"{text!r} is not an http(s) URL"


def _media_type(text: str, media: str) -> str | None:
    kind, _, subtype = text.partition("/")
    return None if kind == media and subtype else f"got {text!r}; must be an {media} media type such as {media}/..."


def image_base64(value: Any) -> str | None:
    """Base64 of a JPEG, PNG or WebP image."""
    if not isinstance(value, str):
        return f"must be a string, got {_json_type(value)}"
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    if data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n" or data[8:12] == b"WEBP":
        return None
    return "does not decode to a JPEG, PNG or WebP image"
