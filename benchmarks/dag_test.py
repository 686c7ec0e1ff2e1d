"""How long a user's ``pytest`` command for a three-render chained DAG takes with the ``luma_airflow`` fixture.

Runs the README's testing example (``tests/user_example/test_weekly_social_cut.py``: generate → extend → extend at
540p through ``dag.test()``) as a user would, ``pytest`` in a fresh interpreter with a fresh ``AIRFLOW_HOME``,
``--runs`` times, and prints per phase the minimum and median over the runs and the machine's load:

* start-up: interpreter, ``import pytest``, the plugins' entry points (until the session starts);
* collection: importing the test module, i.e. Airflow (``airflow.sdk``) and the provider's operators;
* fixture set-up: the first test's fixtures (database template copied from the machine's cache, Airflow's
  in-process Execution API started, the simulator, the test's home, the module's DAGs registered);
* the test: ``dag.test()`` and its asserts (three renders of ~0.4 s each on the simulator's clock);
* the end: teardown, pytest's exit, the interpreter's shutdown;
* the whole command's wall time (target <= 10 s with ``--copies 1``).

Bytecode: installed packages normally carry ``.pyc`` files (pip compiles them at install; Python writes them on
first import), so the timed runs use a bytecode cache (``PYTHONPYCACHEPREFIX`` under the temp dir) filled by one
untimed run. ``--no-bytecode`` times a shell with ``PYTHONDONTWRITEBYTECODE=1`` and nothing compiled instead:
every run then compiles Airflow from source (~5 s more on a 2-core machine).

    python benchmarks/dag_test.py [--runs 5] [--copies 1] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
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
PHASES = ("start-up", "collection", "fixture set-up", "test (per test, median)", "end", "whole command")

# A pytest plugin (loaded with -p) that writes when each phase ended, on the wall clock the parent also reads.
TIMER_PLUGIN = """
import json, os, time
_marks = {}
def pytest_sessionstart(session): _marks["session"] = time.time()
def pytest_collection_finish(session): _marks["collected"] = time.time()
def pytest_runtest_logreport(report):
    _marks.setdefault(report.when, []).append(report.duration)
def pytest_sessionfinish(session): _marks["finished"] = time.time()
def pytest_unconfigure(config):
    with open(os.environ["LUMA_BENCH_MARKS"], "w") as out:
        json.dump(_marks, out)
"""


def _environment(folder: Path, bytecode: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPYCACHEPREFIX"))}
    env["AIRFLOW_HOME"] = str(folder / "home")  # a user's shell: no ~/airflow, nothing migrated
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder / "plugin"), env.get("PYTHONPATH", "")) if p)
    env["LUMA_BENCH_MARKS"] = str(folder / "marks.json")
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "airflow-provider-luma-bench-pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(folder / "no-pycache")  # empty: no .pyc from an earlier run is read
    return env


def one_run(copies: int, bytecode: bool) -> dict[str, float]:
    """One ``pytest`` command in a fresh folder; the seconds of each phase."""
    folder = Path(tempfile.mkdtemp(prefix="luma-bench-dagtest-"))
    try:
        tests = folder / "tests"
        tests.mkdir()
        for i in range(copies):
            shutil.copy(EXAMPLE, tests / f"test_copy_{i}.py")
        (folder / "plugin").mkdir()
        (folder / "plugin" / "luma_bench_timer.py").write_text(TIMER_PLUGIN)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "luma_bench_timer", "tests"]
        started = time.time()
        proc = subprocess.run(command, cwd=folder, env=_environment(folder, bytecode), capture_output=True, text=True)
        ended = time.time()
        if proc.returncode != 0:
            raise RuntimeError(f"pytest failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        marks = json.loads((folder / "marks.json").read_text())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    setups, calls = marks["setup"], marks["call"]
    return dict(
        zip(
            PHASES,
            (
                marks["session"] - started,
                marks["collected"] - marks["session"],
                setups[0],
                statistics.median(calls),
                ended - marks["finished"],
                ended - started,
            ),
            strict=True,
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed pytest commands (default 5)")
    parser.add_argument("--copies", type=int, default=1, help="copies of the test in each command (default 1)")
    parser.add_argument("--no-bytecode", action="store_true", help="no .pyc: compile every module in every run")
    args = parser.parse_args()
    bytecode = not args.no_bytecode
    load_before = os.getloadavg()
    if bytecode:
        one_run(args.copies, bytecode)  # untimed: fills the bytecode cache (and the database template's cache)
    runs = [one_run(args.copies, bytecode) for _ in range(args.runs)]
    load_after = os.getloadavg()
    mode = "bytecode cached" if bytecode else "no bytecode (PYTHONDONTWRITEBYTECODE=1)"
    print(f"pytest of the three-render chained DAG, {args.copies} test(s) per command, {args.runs} runs, {mode}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} CPUs)")  # fmt: skip
    print(f"{'phase':<26}{'min s':>8}{'median s':>10}   all")
    for phase in PHASES:
        values = [run[phase] for run in runs]
        every = ", ".join(f"{v:.2f}" for v in values)
        print(f"{phase:<26}{min(values):>8.2f}{statistics.median(values):>10.2f}   {every}")
    whole = statistics.median(run["whole command"] for run in runs)
    if args.copies != 1:  # the target is for one test; more copies add their own test and set-up each
        print(f"whole command, median {whole:.2f} s (the <= {TARGET_SECONDS:.0f} s target is for --copies 1)")
        return 0
    verdict = "met" if whole <= TARGET_SECONDS else "MISSED"
    print(f"whole command, median {whole:.2f} s: target <= {TARGET_SECONDS:.0f} s {verdict}")
    return 0 if whole <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
