"""What every model spec shares: the base request class, render modes, source facts and the common field rules.

A spec module holds everything about one model: its fields (named exactly as the GMI payload names them), its
rules, its mode, its price key, its expected render time and which generations it consumes. Requests are strict
(``extra="forbid"``): a field the model does not take is an error, never silently sent. Build them with
:meth:`RenderSpec.validate_params` to get a :class:`LumaValidationError` with one line per broken rule, each naming
its field, instead of a raw pydantic error.

Airflow-free (a test enforces it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from airflow_provider_luma.core._compat import StrEnum
from airflow_provider_luma.core.errors import LumaValidationError

if TYPE_CHECKING:
    from typing_extensions import Self

VIDEO_ASPECT_RATIOS: Final = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
IMAGE_ONLY_ASPECT_RATIOS: Final = ("3:1", "2:1", "1:2", "1:3")
RESOLUTIONS: Final = ("540p", "720p", "1080p")
PROMPT_MAX_CHARS: Final = 6000
BLOCK_SECONDS: Final = 5

Resolution = Literal["540p", "720p", "1080p"]
Quality = Literal["SDR", "HDR", "HDR+EXR"]

_UNSET_TEXTS: Final = ("", "None", "null")


def is_unset(value: object) -> bool:
    """True for ``None`` and for what a missing value renders to in a template: ``""``, ``"None"``, ``"null"``."""
    return value is None or (isinstance(value, str) and value.strip() in _UNSET_TEXTS)


class Mode(StrEnum):
    """What kind of render a request asks for (``mode`` in every result)."""

    TEXT_TO_VIDEO = "text_to_video"
    IMAGE_TO_VIDEO = "image_to_video"
    EXTEND_FORWARD = "extend_forward"
    EXTEND_BACKWARD = "extend_backward"
    INTERPOLATION = "interpolation"
    EDIT = "edit"
    REFRAME = "reframe"
    KEYFRAMES = "keyframes"


@dataclass(frozen=True)
class SourceFacts:
    """What is known about a source video (from the upstream Luma task's result, or read from a local file).

    ``None`` means unknown: rules that need the fact are skipped, and a price that needs it is unknown.
    """

    aspect_ratio: str | None = None
    duration_seconds: float | None = None

    @property
    def blocks(self) -> int | None:
        """5-s blocks a render that follows this source's duration is billed for (``None``: unknown)."""
        if self.duration_seconds is None:
            return None
        return max(1, math.ceil(self.duration_seconds / BLOCK_SECONDS - 1e-9))

    @property
    def duration(self) -> str | None:
        """The duration as the API writes it (``"5s"``), when known."""
        if self.duration_seconds is None:
            return None
        return f"{self.duration_seconds:g}s"


UNKNOWN_SOURCE: Final = SourceFacts()


def check_prompt(value: str) -> str:
    """1-6000 characters, not blank (pydantic already stripped it)."""
    if not value:
        raise ValueError("prompt must not be blank (1-6000 characters)")
    if len(value) > PROMPT_MAX_CHARS:
        raise ValueError(f"prompt is {len(value)} characters; the limit is 1-{PROMPT_MAX_CHARS} characters")
    return value


def check_video_ratio(value: str) -> str:
    """One of the six video ratios; the image-only ones get their own message."""
    if value in IMAGE_ONLY_ASPECT_RATIOS:
        raise ValueError(f"aspect_ratio {value!r} is image-only; video accepts {', '.join(VIDEO_ASPECT_RATIOS)}")
    if value not in VIDEO_ASPECT_RATIOS:
        raise ValueError(f"aspect_ratio {value!r} is not one of {', '.join(VIDEO_ASPECT_RATIOS)}")
    return value


def check_generation_id(value: str | None) -> str | None:
    """``""`` means "not set" (the model pages document it as the default); ``"None"`` is a broken template."""
    if not value:
        return None
    if value in ("None", "null"):
        raise ValueError(
            f"generation id is the string {value!r}: the upstream XCom it was templated from is probably missing"
        )
    if "/" in value or any(ch.isspace() for ch in value):
        raise ValueError(f"generation id {value!r} contains '/' or whitespace; pass the id a Luma task returned")
    return value


Prompt = Annotated[str, AfterValidator(check_prompt)]
VideoRatio = Annotated[str, AfterValidator(check_video_ratio)]
GenerationId = Annotated[str | None, AfterValidator(check_generation_id)]


class RenderSpec(BaseModel):
    """Base of every model's request: strict, frozen, stripped strings.

    Subclasses set :attr:`MODEL_ID` and override the derived facts below. Fields the caller did not set are left
    out of :meth:`payload`, so the service applies its own default and no ``null`` is ever sent.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, arbitrary_types_allowed=True)

    MODEL_ID: ClassVar[str]
    RENDER_TIME_FACTOR: ClassVar[float] = 1.0
    """Expected render time relative to a generate render of the same output (an estimate; see schedule.py)."""
    NON_PAYLOAD_FIELDS: ClassVar[frozenset[str]] = frozenset()
    """Fields that are checked but never sent (e.g. an inline video streamed separately by the wire module)."""
    NATIVE_ONLY: ClassVar[frozenset[str]] = frozenset()
    """Fields only the native Luma Agents API takes (the GMI backend rejects them before any request)."""
    SOURCE_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Fields that name a prior generation this render is made from (read by :attr:`source_generation_ids`)."""

    # -- derived facts (overridden per model) ------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """The render mode: a :class:`Mode` for the built-in models; a model may name its own (declared in its
        :class:`~airflow_provider_luma.core.specs.registry.ModelInfo`)."""
        raise NotImplementedError

    @property
    def source_generation_ids(self) -> list[str]:
        """The prior generations this render is made from (for chaining, the cost report and the gallery)."""
        return [str(value) for name in self.SOURCE_FIELDS if (value := getattr(self, name, None))]

    @property
    def quality(self) -> Quality:
        """The price table's quality row."""
        return "SDR"

    @property
    def resolution_label(self) -> str:
        """The price table's resolution column (the payload's resolution or the model's default)."""
        return str(getattr(self, "resolution", "720p"))

    def billed_blocks(self, source: SourceFacts = UNKNOWN_SOURCE) -> int | None:
        """5-s blocks this render is billed for (``None`` when it depends on an unknown source duration)."""
        return 1

    def known_source(self, upstream: SourceFacts) -> SourceFacts:
        """What is known about the source video: by default what the upstream task's result says."""
        return upstream

    def output_facts(self, source: SourceFacts = UNKNOWN_SOURCE) -> SourceFacts:
        """Ratio and duration of the clip this render produces, as far as they are known."""
        return UNKNOWN_SOURCE

    def expected_seconds(self, source: SourceFacts = UNKNOWN_SOURCE) -> float:
        """Expected seconds from submit to a terminal status (drives the poll schedule)."""
        from airflow_provider_luma.core.schedule import expected_render_seconds

        out = self.output_facts(source)
        duration = "10s" if (out.duration_seconds or 5.0) > 5.0 else "5s"
        hdr, exr = self.quality != "SDR", self.quality == "HDR+EXR"
        return expected_render_seconds(self.resolution_label, duration, hdr, exr) * self.RENDER_TIME_FACTOR

    def source_problems(self, source: SourceFacts) -> list[str]:
        """Rules that need facts about the source (e.g. reframe must change the ratio); none by default."""
        return []

    def describe(self) -> str:
        """One line for logs: the settings that drive time and price."""
        return f"{self.resolution_label} {self.quality}"

    def price_drivers(self) -> str:
        """The fields the price depends on, as ``name=value`` (for the budget message)."""
        return f"resolution={self.resolution_label}, quality={self.quality}, mode={self.mode}"

    # -- what is sent ----------------------------------------------------------------------------------------

    def payload(self) -> dict[str, Any]:
        """The JSON ``payload`` to send: only fields the caller set, never ``null``."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True, exclude=set(self.NON_PAYLOAD_FIELDS))

    def fingerprint_payload(self) -> dict[str, Any]:
        """What identifies this render for the durable record: the payload as sent, inline media as a digest."""
        return self.payload()

    # -- construction ------------------------------------------------------------------------------------------

    @classmethod
    def validate_params(cls, params: dict[str, Any], source: SourceFacts = UNKNOWN_SOURCE) -> Self:
        """Build and validate a request; ``None`` values mean "not set".

        :param source: what is known about the source video, for rules that depend on it.
        :raises LumaValidationError: naming every field and rule the parameters break.
        """
        given = {k: v for k, v in params.items() if v is not None}
        try:
            spec = cls.model_validate(given)
        except ValidationError as exc:
            raise LumaValidationError.from_pydantic(exc, cls.MODEL_ID) from None
        problems = spec.source_problems(source)
        if problems:
            raise LumaValidationError(problems, subject=f"{cls.MODEL_ID} request")
        return spec

    # -- 0.1 names ----------------------------------------------------------------------------------------------

    @classmethod
    def from_params(cls, **params: Any) -> Self:
        """The 0.1 spelling of :meth:`validate_params` (keyword arguments, no source facts)."""
        return cls.validate_params(params)

    def to_payload(self) -> dict[str, Any]:
        """The 0.1 spelling of :meth:`payload`."""
        return self.payload()


def combination_error(problems: list[str]) -> None:
    """Raise the problems of a model validator as one ``ValueError`` (pydantic reports it without a field)."""
    if problems:
        # Dedupe while keeping order: several rules can name the same pair of fields.
        raise ValueError("; ".join(dict.fromkeys(problems)))
