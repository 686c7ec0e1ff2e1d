"""How long a user's ``dag.test()`` of a three-render chained DAG takes with the ``luma_airflow`` fixture.

Runs the README's testing example (``tests/user_example/test_weekly_social_cut.py``: generate → extend → extend,
540p, each task deferring and resuming through Airflow's in-process triggerer) under pytest in a fresh
interpreter, three copies in one session, and prints each test's ``call`` time (the ``dag.test()`` and its
asserts), the one-off session setup (migrated database template, Airflow's in-process API) and the wall time.

    python benchmarks/dag_test.py [--copies 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "user_example" / "test_weekly_social_cut.py"
TARGET_SECONDS = 10.0
DURATION = re.compile(r"^([\d.]+)s (setup|call)\s+(\S+)", re.MULTILINE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="luma-bench-dagtest-"))
    for i in range(args.copies):
        shutil.copy(EXAMPLE, folder / f"test_copy_{i}.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(folder / "home")  # a user's shell: no ~/airflow, nothing migrated
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0", str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.monotonic() - started
    shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-2000:])
        return 1
    calls = [float(s) for s, phase, _ in DURATION.findall(proc.stdout) if phase == "call"]
    setups = sorted((float(s) for s, phase, _ in DURATION.findall(proc.stdout) if phase == "setup"), reverse=True)
    median = statistics.median(calls)
    verdict = "met" if median <= TARGET_SECONDS else "MISSED"
    print(f"three-render chained DAG, dag.test() per test: {', '.join(f'{c:.1f}' for c in calls)} s "
          f"(median {median:.1f} s; target <= {TARGET_SECONDS:.0f} s: {verdict})")  # fmt: skip
    print(f"one-off session setup (first test's fixtures): {setups[0]:.1f} s; whole pytest run: {wall:.1f} s")
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
