"""When the trigger asks for a render's status: a first poll near the likely finish, then ``poll_interval``.

Pure (no Airflow or httpx imports) so the trigger, the worker and ``benchmarks/polling_efficiency.py`` share it.

The rule, for a render expected to take ``E`` seconds (:data:`EXPECTED_RENDER_SECONDS`) polled with
``poll_interval`` ``p`` (the operator's, default 10 s, always overridable):

1. **First poll** at ``min(FIRST_POLL_FRACTION * E, FIRST_POLL_MAX_INTERVALS * p)`` after submission, i.e. 60 % of
   the expected time, but never more than 15 poll intervals (so a short ``poll_interval``, as used against the
   simulator, also shortens the first wait). Nothing can be detected earlier than the render finishes, and almost
   no render finishes before 60 % of its typical time.
2. **Near the expected finish** (until ``NEAR_FINISH_UNTIL * E`` = 1.5 × E after submission) polls come every
   ``p * NEAR_FINISH_FACTOR`` (5 s for the default 10 s): this is where most renders end, so a shorter gap there
   keeps the detection delay low for a few extra calls.
3. **After that** polls come every ``p``: a render that is this late is an outlier, and waiting longer costs
   little.

With the default ``p = 10`` a 5s/720p render (``E = 60``) is polled at 36, 41, 46, ... 86 s, then 96, 106, ... s.
Measured in ``benchmarks/polling_efficiency.py`` (see ``docs/performance.md``).

**A faster clock.** Against the simulator renders take ``time_factor`` times their real time; a connection extra
``schedule_time_factor`` (set by the simulator's own connection, see :func:`parse_time_factor`) multiplies ``E``
and ``p`` alike, so the whole schedule runs at the simulator's speed (``p`` no lower than
:data:`MIN_SCALED_POLL_INTERVAL`).
"""

from __future__ import annotations

from typing import Final

# Expected seconds from submit to a terminal status, by (resolution, duration, quality).
#
# These are ESTIMATES, not measurements: no official per-resolution latency exists (see the project's API notes,
# luma-api.md §4). Sources: the GMI model page says "a 5s/720p clip is usually well under two minutes; 10s/1080p/HDR
# can run several times longer"; Segmind shows "~51.66 s" for luma-ray-3-2 (statistic unstated). We round the
# 5s/720p SDR figure to 60 s and scale it by pixels/length the way the bundled simulator does: 540p ×2/3,
# 1080p ×2, 10 s ×2, HDR ×2.5, HDR + EXR ×3. Replace with measured medians when real timings are known.
EXPECTED_RENDER_SECONDS: Final[dict[tuple[str, str, str], float]] = {
    ("540p", "5s", "sdr"): 40.0,
    ("540p", "10s", "sdr"): 80.0,
    ("720p", "5s", "sdr"): 60.0,
    ("720p", "10s", "sdr"): 120.0,
    ("720p", "5s", "hdr"): 150.0,
    ("720p", "5s", "hdr+exr"): 180.0,
    ("1080p", "5s", "sdr"): 120.0,
    ("1080p", "10s", "sdr"): 240.0,
    ("1080p", "5s", "hdr"): 300.0,
    ("1080p", "5s", "hdr+exr"): 360.0,
}
DEFAULT_EXPECTED_SECONDS: Final = 60.0
"""Used for a combination missing from the table (the model's rules forbid the others, e.g. 10 s HDR)."""

FIRST_POLL_FRACTION: Final = 0.6
FIRST_POLL_MAX_INTERVALS: Final = 15.0
NEAR_FINISH_UNTIL: Final = 1.5
NEAR_FINISH_FACTOR: Final = 0.5


def quality(hdr: bool, exr_export: bool) -> str:
    """The table's quality key: ``sdr``, ``hdr`` or ``hdr+exr``."""
    if not hdr:
        return "sdr"
    return "hdr+exr" if exr_export else "hdr"


def expected_render_seconds(resolution: str, duration: str, hdr: bool = False, exr_export: bool = False) -> float:
    """The table's estimate for a render (:data:`DEFAULT_EXPECTED_SECONDS` for an unknown combination)."""
    return EXPECTED_RENDER_SECONDS.get((resolution, duration, quality(hdr, exr_export)), DEFAULT_EXPECTED_SECONDS)


def first_poll_delay(expected_seconds: float, poll_interval: float) -> float:
    """Seconds after submission of the first status call (rule 1 of the module docstring)."""
    return max(0.0, min(FIRST_POLL_FRACTION * expected_seconds, FIRST_POLL_MAX_INTERVALS * poll_interval))


def poll_gap(elapsed: float, expected_seconds: float | None, poll_interval: float) -> float:
    """Seconds to wait after a status call made ``elapsed`` s after submission (rules 2 and 3).

    Without an expected time (``None``: triggers serialized by older versions) it is plain ``poll_interval``.
    """
    if expected_seconds is not None and elapsed < NEAR_FINISH_UNTIL * expected_seconds:
        return poll_interval * NEAR_FINISH_FACTOR
    return poll_interval


def poll_times(expected_seconds: float, poll_interval: float, until: float) -> list[float]:
    """Every status-call time (s after submission) up to and including the first one at or after ``until``.

    What the trigger does, without HTTP latency; used by the benchmark and the tests.
    """
    t = first_poll_delay(expected_seconds, poll_interval)
    times = [t]
    while t < until:
        t += poll_gap(t, expected_seconds, poll_interval)
        times.append(t)
    return times


MIN_SCALED_POLL_INTERVAL: Final = 0.05
"""The shortest poll interval a scaled schedule uses (so a ``schedule_time_factor`` of 0 cannot spin)."""


def parse_time_factor(raw: object, where: str = "schedule_time_factor") -> float:
    """The connection extra ``schedule_time_factor`` as a float in ``[0, 1]`` (unset: 1, the real clock).

    :raises ValueError: naming ``where`` and the rule, for anything else.
    """
    if raw is None or raw == "":
        return 1.0
    try:
        factor = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        factor = -1.0
    if isinstance(raw, bool) or not 0.0 <= factor <= 1.0:
        raise ValueError(f"{where}: got {raw!r}; must be a number from 0 to 1 (1 = real render times)")
    return factor


def scaled_schedule(expected_seconds: float, poll_interval: float, time_factor: float) -> tuple[float, float]:
    """``(expected_seconds, poll_interval)`` on a clock running at ``time_factor`` times real speed."""
    if time_factor >= 1.0:
        return expected_seconds, poll_interval
    return expected_seconds * time_factor, max(MIN_SCALED_POLL_INTERVAL, poll_interval * time_factor)
