"""Import cost of ``airflow_provider_luma.operators`` on top of ``import airflow.sdk`` (what a DAG file pays).

Runs ``python -X importtime`` in fresh interpreters, takes the cumulative time of the operators module's own
import line (everything it pulls in that ``airflow.sdk`` did not), and compares it with
``apache-airflow-providers-http``'s ``HttpOperator`` measured the same way. Prints the median of N runs.

    python benchmarks/import_cost.py [--runs 9]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys

TARGET_MS = 50.0
LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")
FORBIDDEN = ("airflow_provider_luma.core.http", "airflow_provider_luma.hooks", "airflow_provider_luma.testing",
             "fastapi", "uvicorn")  # fmt: skip


def measure(module: str) -> tuple[float, set[str]]:
    """Cumulative import ms of ``module`` after airflow.sdk, and the modules it added."""
    code = (
        f"import airflow.sdk, sys; before = set(sys.modules); import {module}; print(sorted(set(sys.modules) - before))"
    )
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    cumulative_us = 0
    for line in proc.stderr.splitlines():
        match = LINE.match(line)
        if match and match.group(4) == module and len(match.group(3)) <= 1:
            cumulative_us = int(match.group(2))
    added = set(eval(proc.stdout.strip().splitlines()[-1]))  # noqa: S307 - our own subprocess's list literal
    return cumulative_us / 1000.0, added


def median_ms(module: str, runs: int) -> tuple[float, set[str]]:
    samples, added = [], set()
    for _ in range(runs):
        ms, added = measure(module)
        samples.append(ms)
    return statistics.median(samples), added


# A DAG file with ten literal renders: what parse-time validation adds when the DAG is built (the first operator
# also imports the specs), next to the same DAG built from EmptyOperator.
_BUILD = """
import time, airflow.sdk, pendulum
from airflow.sdk import DAG
t0 = time.perf_counter()
{imports}
with DAG("bench", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    for i in range(10):
        {ctor}
print((time.perf_counter() - t0) * 1000)
"""


def build_ms(runs: int, ours: bool) -> float:
    """Median ms to import and build a ten-task DAG, with Luma operators (``ours``) or EmptyOperator."""
    if ours:
        imports = "from airflow_provider_luma.operators import LumaGenerateVideoOperator"
        ctor = 'LumaGenerateVideoOperator(task_id=f"t{i}", prompt="p", resolution="1080p", hdr=True, duration="5s")'
    else:
        imports = "from airflow.providers.standard.operators.empty import EmptyOperator"
        ctor = 'EmptyOperator(task_id=f"t{i}")'
    code = _BUILD.format(imports=imports, ctor=ctor)
    samples = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    ours, added = median_ms("airflow_provider_luma.operators", args.runs)
    ref, _ = median_ms("airflow.providers.http.operators.http", args.runs)
    leaked = sorted(m for m in added if m.startswith(FORBIDDEN))
    print(f"import airflow_provider_luma.operators (after airflow.sdk): {ours:7.1f} ms   target <= {TARGET_MS:.0f} ms")
    print(f"import airflow.providers.http.operators.http (reference):  {ref:7.1f} ms")
    print(f"ratio ours / http provider: {ours / ref if ref else float('nan'):.2f}")
    print(f"modules added by the operators import: {len(added)}; forbidden among them: {leaked or 'none'}")
    built, empty = build_ms(args.runs, True), build_ms(args.runs, False)
    print(f"build a 10-render DAG with literal values checked at parse time: {built:7.1f} ms "
          f"(10 EmptyOperators: {empty:.1f} ms; +{(built - empty) / 10:.1f} ms per render task)")  # fmt: skip
    ok = ours <= TARGET_MS and not leaked
    print("RESULT:", "PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
