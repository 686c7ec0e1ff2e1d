"""The Airflow-free core: model specs, wire formats, the job type, the HTTP client, prices, retry and poll policies,
and media downloads.

Nothing under this package imports Airflow (``tests/test_layout.py`` enforces it), so it can be used and tested on
its own, and the Airflow side (hook, trigger, operators, worker flow) stays thin glue around it.
"""
