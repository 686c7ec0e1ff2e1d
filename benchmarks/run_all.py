"""`make bench`: run every benchmark script in this folder and print its figures next to its target."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    "import_cost.py",
    "dag_test.py",
    "download.py",
    "polling_efficiency.py",
    "poll_client.py",
    "triggerer_capacity.py",
    "worker_slots.py",
    "makespan.py",
    "run_budget.py",
    "real_triggerer.py",
    "gallery.py",
    "s3_upload.py",
    "distributed_engine.py",
]


def main() -> int:
    failures = 0
    for script in SCRIPTS:
        print(f"== {script}")
        started = time.monotonic()
        failures += subprocess.run([sys.executable, str(HERE / script)], check=False).returncode != 0
        print(f"   ({time.monotonic() - started:.1f} s)\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
