"""What differs between the Pythons this provider runs on (3.10 → 3.13), in one place.

Python 3.11 added :class:`enum.StrEnum` and :func:`asyncio.timeout`; on 3.10 this module supplies equivalents,
and on 3.11+ it hands out the standard library's own, so nothing changes where they exist. Like the rest of
:mod:`airflow_provider_luma.core` it imports nothing from Airflow.
"""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["StrEnum", "timeout"]

if sys.version_info >= (3, 11):
    from asyncio import timeout
    from enum import StrEnum
else:
    from contextlib import asynccontextmanager

    class StrEnum(str, enum.Enum):
        """:class:`enum.StrEnum` of Python 3.11 for 3.10: members *are* their values wherever they are written.

        A plain ``(str, Enum)`` member prints as ``Mode.EDIT`` through ``str()`` on 3.10, while the values go
        into records, XComs, event payloads and log lines as ``edit``: ``__str__`` and ``__format__`` are the
        value's, as 3.11's ``StrEnum`` makes them.
        """

        def __str__(self) -> str:
            return str.__str__(self)

        def __format__(self, format_spec: str) -> str:
            return str.__format__(str.__str__(self), format_spec)

        @staticmethod
        def _generate_next_value_(name: str, start: int, count: int, last_values: list[Any]) -> str:
            return name.lower()  # auto() gives the lower-cased member name, as StrEnum's does

    @asynccontextmanager
    async def timeout(delay: float | None) -> AsyncIterator[None]:
        """``async with timeout(delay):`` like 3.11's :func:`asyncio.timeout`: raises the built-in
        :class:`TimeoutError` when the block outlasts ``delay`` seconds (``None``: no deadline).

        anyio (which httpx depends on) cancels the block at its deadline within the running task, as
        ``asyncio.timeout`` does (``asyncio.wait_for`` would run it in another task and, on 3.10, raise
        ``asyncio.TimeoutError``, which is not the built-in one).
        """
        import anyio  # imported here: only the 3.10 poll path needs it

        with anyio.fail_after(delay):
            yield
