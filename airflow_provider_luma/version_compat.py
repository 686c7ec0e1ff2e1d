"""What differs between the Airflow 3 releases this provider runs on (3.0 → 3.3), in one place.

Names that merely moved between releases (``BaseHook``, ``conf``, the task exceptions, ``mask_secret``, the
listener and lineage entry points) come from :mod:`airflow.providers.common.compat.sdk`, as first-party providers
import them: it tries the Task SDK first and falls back to the older home. What this module adds is what
common-compat does not cover:

==============================  ==========================================  =========================================
difference                      3.3                                         older
==============================  ==========================================  =========================================
durable record of a render      ``task_state_store`` (3.3+)                 a Variable per task instance
                                                                            (:class:`VariableStateStore`)
gallery tab and nav entry       ``external_views`` (3.1+)                   3.0: the gallery pages only, by URL
human review (HITL)             ``airflow.providers.standard`` HITL (3.1+)  3.0: :func:`require` fails at DAG import
==============================  ==========================================  =========================================

The flags are the installed Airflow's, read once at import. :func:`require` is how a feature that cannot exist on
the running version fails at DAG import with the version it needs.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from airflow.providers.common.compat.version_compat import (
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
    get_base_airflow_version_tuple,
)

__all__ = [
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AIRFLOW_VERSION",
    "VariableStateStore",
    "get_async_extra_dejson",
    "require",
    "variable_key",
]

AIRFLOW_VERSION: Final = get_base_airflow_version_tuple()
"""The installed Airflow's ``(major, minor, micro)``."""

VARIABLE_PREFIX: Final = "luma_render."


def require(feature: str, minimum: tuple[int, int]) -> None:
    """Raise a clear error when ``feature`` needs a newer Airflow than the one installed.

    :raises RuntimeError: naming the feature, the version it needs and the one installed.
    """
    if AIRFLOW_VERSION[:2] < minimum:
        installed = ".".join(map(str, AIRFLOW_VERSION))
        raise RuntimeError(f"{feature} needs Airflow {minimum[0]}.{minimum[1]} or newer; this is Airflow {installed}.")


def variable_key(dag_id: str, task_id: str, run_id: str, map_index: int, prefix: str = VARIABLE_PREFIX) -> str:
    """The Variable that holds one task instance's record on Airflow < 3.3 (``prefix``: which record; the review
    state of a reviewed render has its own, ``luma_review.``).

    A digest, not the ids themselves: Variable keys are at most 250 characters and the three ids may each be
    that long. The Variable's description names the task instance for a person reading the Variables page.
    """
    identity = json.dumps([dag_id, task_id, run_id, map_index])
    return prefix + hashlib.sha256(identity.encode()).hexdigest()[:40]


class VariableStateStore:
    """The part of 3.3's ``task_state_store`` the durable record uses, kept in an Airflow Variable.

    Why a Variable: a new try must read what an earlier try wrote, from the worker, through the Task SDK. XComs are
    cleared when a new try starts; a Variable is not, and every Airflow 3 release reads and writes Variables from a
    task. It is kept after the render is delivered, as ``task_state_store`` is: clearing a successful task then
    reuses its render instead of buying it again. ``retention`` is honoured on read (an older record counts as
    absent, as 3.3 prunes it); deleting stale Variables is left to the deployment (``airflow variables delete``).
    """

    def __init__(self, ti: Any, prefix: str = VARIABLE_PREFIX) -> None:
        map_index = getattr(ti, "map_index", -1)  # one reading for the key and the description
        self._key = variable_key(ti.dag_id, ti.task_id, ti.run_id, map_index, prefix)
        self._describes = f"Luma render record of {ti.dag_id}.{ti.task_id} run {ti.run_id} [{map_index}]"

    @property
    def key(self) -> str:
        """The Variable's key."""
        return self._key

    def get(self, key: str) -> Any:
        """The value stored under ``key`` (the record's state key), or None when absent or past its retention."""
        from airflow.sdk import Variable

        raw = Variable.get(self._key, default=None)
        if raw is None:
            return None
        try:
            stored = json.loads(raw)
        except (TypeError, ValueError):
            return None  # not ours: treated like a foreign record, i.e. absent
        if not isinstance(stored, dict) or key not in stored:
            return None
        expires = stored.get("expires_at")
        if isinstance(expires, str) and datetime.fromisoformat(expires) < datetime.now(timezone.utc):
            return None
        return stored[key]

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        """Store ``value`` under ``key``, readable until ``retention`` from now (forever when None)."""
        from airflow.sdk import Variable

        stored: dict[str, Any] = {key: value}
        if retention is not None:
            stored["expires_at"] = (datetime.now(timezone.utc) + retention).isoformat()
        Variable.set(self._key, json.dumps(stored), description=self._describes)


async def get_async_extra_dejson(conn: Any) -> dict[str, Any]:
    """A connection's extra as a dict, read without blocking the event loop on the supervisor.

    common-compat's function of this name (1.23+); Python 3.10 resolves common-compat 1.20, which lacks it, so
    this is its logic: ``aextra_dejson`` where the connection has it (3.3.2+), else ``extra_dejson`` in a thread.
    """
    try:
        from airflow.providers.common.compat.connection import get_async_extra_dejson as compat
    except ImportError:
        if hasattr(conn, "aextra_dejson"):
            return dict(await conn.aextra_dejson())
        from asgiref.sync import sync_to_async

        return dict(await sync_to_async(lambda: conn.extra_dejson)())
    return await compat(conn)
