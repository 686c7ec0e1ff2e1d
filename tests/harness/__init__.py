"""This project's Airflow test harness: throw-away deployments for the end-to-end suites, benchmarks and the demo.

Test-side code, not shipped in the wheel (users get the simulator and its fixtures from
:mod:`airflow_provider_luma.testing`):

- :mod:`tests.harness.cluster`: :class:`~tests.harness.cluster.LocalAirflowCluster`, scheduler + dag-processor +
  triggerer + api-server on SQLite with LocalExecutor (``tests/e2e``, ``scripts/demo.py``, most benchmarks).
- :mod:`tests.harness.distributed`: :class:`~tests.harness.distributed.DistributedAirflowCluster`, PostgreSQL +
  Redis + CeleryExecutor with two workers and two triggerers (``tests/distributed``); it needs the ``dev`` extra
  (celery, psycopg2, the postgres provider).
- :mod:`tests.harness._services`: PostgreSQL, Redis and moto's S3 server as local processes.
- :mod:`tests.harness._celery_config` and :mod:`tests.harness._auth`: loaded by dotted path inside the Airflow
  processes (``[celery] celery_config_options``, ``[core] auth_manager``); the harness puts the checkout on their
  ``PYTHONPATH`` so they can.

Import it as ``tests.harness`` from the checkout's root (an editable install and pytest's ``pythonpath`` setting
both put the root on ``sys.path``); benchmarks and scripts insert the root themselves.
"""
