"""Whose turn it is to decide on the run budget: Lamport's bakery algorithm over registers.

Airflow gives tasks no lock and no atomic counter, only registers: each task instance writes its own XComs and
reads everyone's (Task SDK ``XCom.set``/``XCom.get_all``, each one committed row). Lamport's bakery algorithm
(1974) gives mutual exclusion with exactly that: no pool, no database lock, no extra service. A capped task takes
a ticket one above every ticket it sees, then waits until no task of the run is still choosing one and no lower
ticket is queued. Then it alone reads what the run has bought, decides, and leaves the queue. Only this decision
is serialised: each task's create request, wait in the triggerer, finishing step and download run in parallel.

One register per task instance, XCom :data:`TURN_KEY`, a :class:`Turn`::

    queued  (ticket > 0)  --accept-->  submitting  --create answered-->  bought
        |                                  |
        +--refuse / error-->  left         +--provably not accepted-->  withdrawn

``choosing`` is set while a ticket is being picked (the bakery's "doorway"). A task instance that stops answering
(killed while queued; Airflow clears a task's XComs only when its next try starts) would block the queue, so a
waiting task rewrites its register every :data:`BEAT_SECONDS` and others stop waiting for one that has not changed
for ``stale_after`` seconds. The budget then counts the silent task's estimate as held (it can only make the cap
stricter) and checks its own decision again after recording it (:mod:`.money`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal, Protocol

TURN_KEY: Final = "luma_budget_turn"
"""The XCom key of a capped task's register (see :class:`Turn`)."""
BEAT_SECONDS: Final = 10.0
STALE_AFTER_SECONDS: Final = 60.0
MAX_WAIT_SECONDS: Final = 300.0
"""The longest a task waits for its turn in all: registers that keep changing (a forged one rewritten by a REST
user) must not hold a worker slot forever."""
FIRST_PAUSE, MAX_PAUSE = 0.02, 0.2

TurnPhase = Literal["queued", "left", "submitting", "bought", "withdrawn"]


@dataclass(frozen=True)
class Turn:
    """One task instance's register.

    :param task_id: and ``map_index``: whose register it is (the tie-break between equal tickets).
    :param choosing: a ticket is being picked.
    :param ticket: the place in the queue; 0 when not queued.
    :param usd: this render's estimate (``None``: unpriced).
    :param phase: see the module's diagram.
    :param beat: rewritten while waiting, so others can tell a slow task from a silent one.
    """

    task_id: str
    map_index: int
    choosing: bool = False
    ticket: int = 0
    usd: float | None = None
    phase: TurnPhase = "queued"
    beat: int = 0

    @property
    def order(self) -> tuple[int, str, int]:
        """The bakery's total order: ticket first, then who."""
        return self.ticket, self.task_id, self.map_index

    @property
    def who(self) -> tuple[str, int]:
        return self.task_id, self.map_index

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: Any) -> Turn | None:
        """The register read back from XCom, or None for anything else (a forged or foreign value is ignored)."""
        if not isinstance(value, dict):
            return None
        try:
            turn = cls(**value)
        except TypeError:
            return None
        valid = (
            isinstance(turn.task_id, str)
            and isinstance(turn.map_index, int)
            and isinstance(turn.ticket, int)
            and turn.phase in ("queued", "left", "submitting", "bought", "withdrawn")
            and (turn.usd is None or is_usd(turn.usd))
        )
        return turn if valid else None


class TurnTimeout(Exception):
    """No turn within :data:`MAX_WAIT_SECONDS`; the message names who was ahead."""


class Registers(Protocol):
    """Where the registers live: this task instance writes its own and reads the others' of the run."""

    def write(self, turn: Turn) -> None:
        """Write this task instance's register (visible to every later read)."""

    def read_others(self) -> list[Turn]:
        """Every other capped task instance's register in this run."""


class Queue:
    """This task instance's place in the run's budget queue.

    :param registers: the run's registers.
    :param me: this task instance's register (``task_id``, ``map_index``, ``usd``).
    :param log: where waiting is reported.
    :param stale_after: seconds after which an unchanged register no longer holds up the queue.
    :param clock: and ``sleep``: monotonic time (patched in tests).
    """

    def __init__(
        self,
        registers: Registers,
        me: Turn,
        log: Any,
        *,
        stale_after: float = STALE_AFTER_SECONDS,
        max_wait: float = MAX_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.registers, self.me, self.log = registers, me, log
        self.stale_after, self.max_wait, self.clock, self.sleep = stale_after, max_wait, clock, sleep
        self.silent: dict[tuple[str, int], Turn] = {}
        """Registers this task stopped waiting for (see the module docstring)."""

    def enter(self) -> None:
        """Take a ticket and wait until it is this task's turn.

        :raises TurnTimeout: no turn within ``max_wait`` seconds.
        """
        self._write(replace(self.me, choosing=True, ticket=0, phase="queued"))
        ticket = 1 + max((t.ticket for t in self.registers.read_others()), default=0)
        self._write(replace(self.me, choosing=False, ticket=ticket, phase="queued"))
        seen: dict[tuple[str, int], tuple[Turn, float]] = {}
        pause, last_beat, waited = FIRST_PAUSE, self.clock(), False
        give_up = last_beat + self.max_wait
        while True:
            now = self.clock()
            blockers = [t for t in self.registers.read_others() if self._blocks(t, seen, now)]
            if not blockers:
                break
            if now >= give_up:
                ahead = ", ".join(f"{t.task_id}[{t.map_index}]" for t in sorted(blockers, key=lambda t: t.order)[:5])
                raise TurnTimeout(
                    f"no turn to decide on the run budget within {self.max_wait:.0f} s: {len(blockers)} other "
                    f"render(s) of this run stayed ahead ({ahead})"
                )
            if not waited:
                first = min(blockers, key=lambda t: t.order)
                self.log.info(
                    "Run budget: waiting for %d other render(s) of this run to decide first (ticket %d; %s[%d] is "
                    "ahead)", len(blockers), ticket, first.task_id, first.map_index,
                )  # fmt: skip
                waited = True
            if now - last_beat >= BEAT_SECONDS:
                self._write(replace(self.me, beat=self.me.beat + 1))
                last_beat = now
            self.sleep(pause)
            pause = min(MAX_PAUSE, pause * 1.5)

    def leave(self, phase: TurnPhase) -> None:
        """Leave the queue (or move on after it): ``submitting`` once accepted, ``left`` when refused."""
        self._write(replace(self.me, choosing=False, ticket=0, phase=phase))

    def beat(self) -> None:
        """Tell the others this task is alive (while it waits inside its turn)."""
        self._write(replace(self.me, beat=self.me.beat + 1))

    def _write(self, turn: Turn) -> None:
        self.registers.write(turn)
        self.me = turn

    def _blocks(self, other: Turn, seen: dict[tuple[str, int], tuple[Turn, float]], now: float) -> bool:
        if not (other.choosing or (other.ticket and other.order < self.me.order)):
            return False
        before = seen.get(other.who)
        if before is None or before[0] != other:
            seen[other.who] = (other, now)
            return True
        if now - before[1] < self.stale_after:
            return True
        if other.who not in self.silent:
            self.silent[other.who] = other
            self.log.warning(
                "Run budget: %s[%d] has not changed its place in the queue for %.0f s; no longer waiting for it and "
                "counting its estimate as held, so the cap stays safe but may refuse a render that would fit",
                other.task_id, other.map_index, now - before[1],
            )  # fmt: skip
        return False


def is_usd(value: Any) -> bool:
    """A finite, non-negative amount (what our own code writes as an estimate); ``bool`` is not a number here."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
