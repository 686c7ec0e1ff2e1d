"""An auth manager for tests that denies chosen users chosen DAGs (everything else as SimpleAuthManager).

Configure it with ``[core] auth_manager = tests.harness._auth.DenyDagAuthManager`` and
``LUMA_TEST_DENIED_DAGS="user:dag_id,other:dag_id"`` in the api-server's environment (``*`` for every user).
"""

from __future__ import annotations

import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

DENIED_DAGS_ENV = "LUMA_TEST_DENIED_DAGS"


def denied_pairs() -> set[tuple[str, str]]:
    """``{(user, dag_id)}`` from :data:`DENIED_DAGS_ENV`."""
    pairs = set()
    for item in os.environ.get(DENIED_DAGS_ENV, "").split(","):
        user, sep, dag_id = item.strip().partition(":")
        if sep and user and dag_id:
            pairs.add((user, dag_id))
    return pairs


class DenyDagAuthManager(SimpleAuthManager):
    """SimpleAuthManager that refuses the ``(user, dag_id)`` pairs of ``LUMA_TEST_DENIED_DAGS``, every method."""

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        """Deny listed pairs; otherwise SimpleAuthManager's role rules."""
        dag_id = getattr(details, "id", None)
        name = user.get_name()
        if dag_id and ((name, dag_id) in denied_pairs() or ("*", dag_id) in denied_pairs()):
            return False
        return bool(super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details))
