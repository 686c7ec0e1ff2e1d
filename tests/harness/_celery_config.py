"""Celery configuration of :class:`~tests.harness.distributed.DistributedAirflowCluster`.

Airflow's default configuration plus Celery's ``imports``: the worker imports the provider and the S3
filesystem before it forks its pool, and every task process (forked from a pool process by Airflow's supervisor)
inherits them. Without it each task process imports the amazon provider, boto3 and s3fs anew: about 0.8 s of
CPU on an idle core, 3 s on a loaded 2-core machine, in every worker slot of every render.

Point ``[celery] celery_config_options`` at ``CELERY_CONFIG`` to use it; a deployment can do the same with its
own module list.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from airflow_provider_luma.core.http import default_ssl_context

WARM_IMPORTS = (
    "airflow_provider_luma.operators",
    "airflow_provider_luma.runtime.flow",
    "airflow_provider_luma.runtime.resume",
    "airflow_provider_luma.runtime.delivery",
    "airflow_provider_luma.runtime.progress",
    "airflow_provider_luma.runtime.polling",
    "airflow_provider_luma.runtime.end_in_trigger",
    "airflow_provider_luma.hooks",
    "airflow_provider_luma.triggers",
    "airflow_provider_luma.core.backends.gmi",
    "airflow_provider_luma.core.backends.luma_agents",
    "airflow_provider_luma.core.schedule",
    "airflow.providers.amazon.aws.fs.s3",
    "airflow.providers.amazon.aws.hooks.s3",
    "s3fs",
    # Imported by Airflow's task runner in every task process (found with PYTHONPROFILEIMPORTTIME=1 on the
    # workers: whatever a task log shows as imported was paid after the fork): a few ms each, per workload.
    "airflow.sdk.execution_time.cache",
    "airflow.providers.standard.operators.empty",
    "airflow.sdk.lineage",
    "airflow.providers.common.compat.assets",
    "airflow.providers.common.io.version_compat",
)

CELERY_CONFIG: dict[str, Any] = {**DEFAULT_CELERY_CONFIG, "imports": WARM_IMPORTS}

# The worker imports this module before it forks its pool: every task process inherits one TLS context instead
# of loading the CA bundle for its first HTTP client.
default_ssl_context()
