#!/usr/bin/env bash
# The version matrix beyond `make test` (which runs everything on Airflow 3.3 and the machine's python3):
#   the unit suite on Airflow 3.0, 3.1 and 3.2             (one venv per minor release, from its lock)
#   the real-Airflow chain and durability scenarios on 3.0 (`make e2e-chain`)
#   the review step through Airflow's HITL on 3.1 and 3.2 (`make e2e-review`)
#   the unit suite on the oldest and the newest Python     (3.10 on Airflow 3.3, 3.13 on Airflow 3.3)
# Each leg's wall time is printed at the end. A Python that is not on this machine fails the run, naming it
# (LUMA_PYTHON_OLDEST / LUMA_PYTHON_NEWEST point elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {  # $1: major.minor; one that runs (a pyenv shim on PATH may name a version it cannot start)
    local found
    for found in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/"python$1" /usr/local/bin/"python$1" \
        /usr/bin/"python$1" "$(command -v "python$1" || true)"; do
        if [ -x "$found" ] && "$found" -c 'import venv' >/dev/null 2>&1; then echo "$found"; return 0; fi
    done
    echo "version matrix: no Python $1 on this machine (set LUMA_PYTHON_OLDEST / LUMA_PYTHON_NEWEST)" >&2
    return 1
}
PY_OLDEST="${LUMA_PYTHON_OLDEST:-$(find_python 3.10)}"
PY_NEWEST="${LUMA_PYTHON_NEWEST:-$(find_python 3.13)}"

summary=()
leg() {  # $1: name, then the command
    local name=$1 start=$SECONDS
    shift
    echo "== version matrix: $name"
    "$@"
    summary+=("$(printf '%-44s %5d s' "$name" $((SECONDS - start)))")
}

for minor in 3.0 3.1 3.2; do
    leg "unit, Airflow $minor, Python 3.11" make --no-print-directory AIRFLOW_VERSION="$minor" unit
done
leg "e2e chain + durability, Airflow 3.0" make --no-print-directory AIRFLOW_VERSION=3.0 e2e-chain
for minor in 3.1 3.2; do
    leg "e2e review (HITL), Airflow $minor" make --no-print-directory AIRFLOW_VERSION="$minor" e2e-review
done
leg "unit, Airflow 3.3, Python 3.10" make --no-print-directory PYTHON="$PY_OLDEST" VENV=.venv-py3.10 \
    LOCK=requirements/py3.10.lock unit
leg "unit, Airflow 3.3, Python 3.13" make --no-print-directory PYTHON="$PY_NEWEST" VENV=.venv-py3.13 \
    LOCK=requirements/py3.13.lock unit

echo "== version matrix: wall times"
printf '%s\n' "${summary[@]}"
