"""Remember how an operator method ended, for the OpenLineage methods that run after it.

Airflow's OpenLineage listener calls ``get_openlineage_facets_on_complete(task_instance)`` /
``_on_failure(task_instance)`` on the same operator object, in the same process, after ``execute`` (or a
resumption such as ``execute_complete``) returned or raised; neither call receives the result or the exception.
:func:`records_outcome` keeps both on the operator. This module is imported at DAG-parse time, so it imports only
the standard library and ``airflow.sdk.exceptions``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from airflow.providers.common.compat.sdk import TaskDeferred

F = TypeVar("F", bound=Callable[..., Any])

RESULT_ATTR = "_luma_outcome_result"
ERROR_ATTR = "_luma_outcome_error"


def records_outcome(method: F) -> F:
    """Decorate an ``execute``-like method: its return value is kept as :func:`last_result`, the exception it
    raised (deferral excepted: that is no outcome) as :func:`last_error`."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except TaskDeferred:
            raise
        except BaseException as exc:
            setattr(self, ERROR_ATTR, exc)
            raise
        setattr(self, RESULT_ATTR, result)
        return result

    return cast(F, wrapper)


def last_result(operator: object) -> Any:
    """What the operator's last recorded method returned in this process (``None`` if none did)."""
    return getattr(operator, RESULT_ATTR, None)


def last_error(operator: object) -> BaseException | None:
    """The exception the operator's last recorded method raised in this process (``None`` if none did)."""
    error = getattr(operator, ERROR_ATTR, None)
    return error if isinstance(error, BaseException) else None
