"""The exception tree, re-exported from :mod:`airflow_provider_luma.core.errors` (where it is drawn).

Kept so ``from airflow_provider_luma.exceptions import LumaError`` keeps working.
"""

from __future__ import annotations

from airflow_provider_luma.core.errors import *  # noqa: F403
from airflow_provider_luma.core.errors import __all__ as __all__
