"""What the runtime needs from the Airflow task, as small protocols, and two helpers over the task context.

The runtime never imports an operator (``tests/test_layout.py``): a render's flow gets the task as a
:class:`RenderTask` and its options as a :class:`~airflow_provider_luma.runtime.plan.RenderPlan`. Any object with
these members will do, which is what lets a test drive the flow without an operator.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from airflow_provider_luma.core.pricing import PriceTable
    from airflow_provider_luma.core.specs.base import RenderSpec, SourceFacts


class DeliveryTask(Protocol):
    """A task that stores a render: it logs, and shows what it bought in its link and delivery record."""

    @property
    def log(self) -> Any:
        """The task's logger."""

    luma_video_link: str | None
    """What the "Luma video" link opens (set once the render is done)."""

    luma_delivery: dict[str, str | None] | None
    """The rendered field the gallery trusts (:mod:`airflow_provider_luma.runtime.delivery_record`)."""


class RenderTask(DeliveryTask, Protocol):
    """A task that buys a render: it also defers and runs the DAG-wide pre-flight before buying."""

    def defer(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: timedelta | None = None,
    ) -> NoReturn:
        """Hand the wait to the triggerer (``BaseOperator.defer``)."""

    def preflight_problems(self, context: Any, spec: RenderSpec, source: SourceFacts, table: PriceTable) -> list[str]:
        """Every problem the DAG's literal values make certain before this task buys (empty: go ahead)."""


def context_get(context: Any, key: str) -> Any:
    """``context[key]``, or None when the context (a plain dict in tests, ``dag.test``) does not have it."""
    try:
        return context[key]
    except (KeyError, TypeError):
        return None


def fail_or_retry(exc: BaseException, message: str | None = None) -> AirflowException:
    """The Airflow exception for a Luma error: permanent ones skip the task's remaining retries."""
    text = message or str(exc)
    return AirflowException(text) if getattr(exc, "retryable", False) else AirflowFailException(text)
