# The README's two commands are `make demo` and `make test`; everything installs itself into .venv.
PYTHON ?= python3
# Which Airflow the environment runs: 3.3 (the newest, the default, in .venv), 3.2, 3.1 or 3.0, e.g.
# `AIRFLOW_VERSION=3.0 make demo`; a full version such as 3.0.6 names its minor release. Each minor release has its
# own lock (requirements/constraints/airflow-3.X.txt → requirements/airflow-3.X.lock, `make lock`) and venv.
AIRFLOW_VERSION ?= 3.3
AIRFLOW_MINOR := $(word 1,$(subst ., ,$(AIRFLOW_VERSION))).$(word 2,$(subst ., ,$(AIRFLOW_VERSION)))
AIRFLOW_MINORS := 3.0 3.1 3.2 3.3
ifeq ($(filter $(AIRFLOW_MINOR),$(AIRFLOW_MINORS)),)
$(error AIRFLOW_VERSION=$(AIRFLOW_VERSION): this provider runs on Airflow $(AIRFLOW_MINORS))
endif
ifeq ($(AIRFLOW_MINOR),3.3)
LOCK ?= requirements/dev.lock
VENV ?= .venv
else
LOCK ?= requirements/airflow-$(AIRFLOW_MINOR).lock
VENV ?= .venv-airflow-$(AIRFLOW_MINOR)
endif
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP  := $(VENV)/.installed-stamp

.PHONY: install prereqs lint typecheck docs release-check unit e2e e2e-chain e2e-review e2e-distributed test matrix demo bench \
	lock simulator clean

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	# --compile-bytecode: as pip does; without .pyc files (uv's default, and PYTHONDONTWRITEBYTECODE=1 on our
	# machines) every Airflow process compiles its imports again: +2.3 s per start, +5 s per user DAG test.
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -r $(LOCK)
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# System packages the suites run (postgresql, redis-server, chromium): apt-get as root, else stop and say what.
prereqs:
	scripts/test_prereqs.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# pytest-xdist workers for the unit tests: they mostly wait (renders at the simulator's speed, dag.test()), so more
# workers than the machine's 2 cores pay off.
WORKERS ?= 4
XDIST   := -n $(WORKERS)
# The real-Airflow tests run on two workers, a test file each at a time (`--dist loadfile`: a file's tests share its
# cluster fixture): two Airflow deployments at once fit 2 cores (four did not: distributed set-ups timed out).
# `--dist loadgroup` does not keep a group on one worker with pytest 9.2 + xdist 3.8.
E2E_WORKERS ?= 2
E2E_XDIST   := -n $(E2E_WORKERS) --dist loadfile

# The fast suite for every change: no real Airflow process (dag.test() runs in-process).
unit: install
	$(BIN)/pytest $(XDIST) -m "not e2e"

e2e: install
	$(BIN)/pytest $(E2E_XDIST) -m e2e

# The real-Airflow chain and the durability scenarios (kill the worker after submit, clear after success, …): what
# the version matrix runs on the oldest Airflow. Not the worker-slot test of a parallelism-1 cluster (its own
# cluster; a scale property, proven on 3.3 by `make test`).
E2E_CHAIN := tests/e2e/test_cluster_smoke.py tests/e2e/test_luma_pipeline.py tests/e2e/test_luma_durability.py
e2e-chain: install
	$(BIN)/pytest $(E2E_XDIST) -m e2e $(E2E_CHAIN) -k "not one_worker_slot"

# The review step through Airflow's REST API (its HITL machinery): what the version matrix runs on 3.1 and 3.2, where
# the task defers to Airflow's HITLTrigger (3.3 parks it in awaiting_input; `make test` runs the file there too).
E2E_REVIEW := tests/e2e/test_review_rest.py
e2e-review: install
	$(BIN)/pytest -m e2e $(E2E_REVIEW)

# Only the end-to-end tests on the distributed deployment (PostgreSQL, Redis, CeleryExecutor, 2 triggerers, S3);
# needs postgresql and redis-server (apt-get install postgresql redis-server; .ci/run does it).
e2e-distributed: install
	$(BIN)/pytest -m distributed

# The documentation site (docs/, Sphinx + MyST), warnings as errors; HTML in build/docs (ignored by git).
docs: install
	rm -rf build/docs
	$(BIN)/sphinx-build -W --keep-going -q -b html docs build/docs

# Build sdist + wheel, twine check, install the wheel into a fresh venv with the oldest supported Airflow, and run
# `airflow providers list`, `airflow plugins` and the README's user example against it (scripts/release_check.py).
release-check: install
	$(BIN)/python scripts/release_check.py

# System packages, ruff, mypy (strict on the package), the docs, the release check, then the whole pytest suite
# (unit + real-Airflow end-to-end).
test: prereqs lint typecheck docs release-check
	$(BIN)/pytest $(XDIST) -m "not e2e"
	$(BIN)/pytest $(E2E_XDIST) -m e2e

# The version matrix beyond `make test` (Airflow 3.3 on the machine's python3): the unit suite on Airflow 3.0, 3.1
# and 3.2 and on the oldest and newest Python, the real-Airflow chain and durability scenarios on Airflow 3.0, the
# review step through Airflow's HITL on 3.1 and 3.2 (scripts/version_matrix.sh; it prints each leg's wall time).
matrix:
	scripts/version_matrix.sh

# Runs the content-pipeline DAG end to end on a real local Airflow against the embedded simulator.
demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python benchmarks/run_all.py

simulator: install
	$(BIN)/python -m airflow_provider_luma.testing --port 8765

# Every lock from its constraints file (generated, never edited by hand).
lock:
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 \
		-c requirements/constraints/airflow-3.3.txt -o requirements/dev.lock
	for minor in 3.0 3.1 3.2; do \
		$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 \
			-c requirements/constraints/airflow-$$minor.txt -o requirements/airflow-$$minor.lock || exit 1; \
	done
	for python in 3.10 3.13; do \
		$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version $$python \
			-c requirements/constraints/airflow-3.3.txt -o requirements/py$$python.lock || exit 1; \
	done

clean:
	rm -rf .venv .venv-* .pytest_cache .mypy_cache .ruff_cache output build dist
