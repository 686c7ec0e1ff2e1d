"""The Python-version seam (:mod:`airflow_provider_luma.core._compat`) behaves the same on every Python.

The enums' members are written into records, XComs, trigger events and log lines; on each Python they must read
as their values, exactly as 3.11's ``enum.StrEnum`` writes them.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging

import pytest

from airflow_provider_luma.core._compat import StrEnum, timeout
from airflow_provider_luma.core.jobs import JobStatus
from airflow_provider_luma.core.specs.base import Mode
from airflow_provider_luma.runtime.record import Phase

MEMBERS = [*JobStatus, *Mode, *Phase]


@pytest.mark.parametrize("member", MEMBERS, ids=repr)
def test_a_member_is_written_as_its_value_everywhere(member: StrEnum) -> None:
    value = member.value
    assert type(value) is str
    assert member == value and hash(member) == hash(value)
    assert str(member) == value
    assert f"{member}" == value
    assert f"{member:>20}" == f"{value:>20}"
    assert "%s" % member == value  # noqa: UP031
    assert "{}".format(member) == value  # noqa: UP032
    assert json.dumps({"status": member}) == json.dumps({"status": value})
    assert repr(member) == f"<{type(member).__name__}.{member.name}: {value!r}>"
    assert type(member)(value) is member


def test_a_log_line_carries_the_value(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("luma.test").info("render %s is %s", "r1", JobStatus.PROCESSING)
    assert caplog.messages == ["render r1 is processing"]


def test_auto_gives_the_lower_cased_name() -> None:
    class Colour(StrEnum):
        DEEP_RED = enum.auto()

    assert Colour.DEEP_RED == "deep_red" and str(Colour.DEEP_RED) == "deep_red"


async def test_timeout_raises_the_builtin_timeout_error_and_leaves_the_task_usable() -> None:
    with pytest.raises(TimeoutError):  # the built-in one: on 3.10 asyncio.TimeoutError is another class
        async with timeout(0.01):
            await asyncio.sleep(30)
    # no cancellation is left pending on the task: the next await goes through
    assert await asyncio.sleep(0, result="after") == "after"


async def test_timeout_lets_a_block_that_finishes_in_time_return() -> None:
    async with timeout(30):
        await asyncio.sleep(0)
    async with timeout(None):
        await asyncio.sleep(0)
