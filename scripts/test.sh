#!/usr/bin/env bash
# Install what the tests need (system packages when run as root, Python packages) and run
# the whole suite: lint, format, types, unit and integration tests (real pgstac server).
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ "$(id -u)" -eq 0 ]; then
    bash scripts/ci_system_deps.sh
else
    echo "test.sh: not root; assuming PostgreSQL 15 + PostGIS are installed" >&2
fi
"${PYTHON}" -m pip install --quiet --disable-pip-version-check -e '.[test]'

echo "== ruff"; "${PYTHON}" -m ruff check stacfetch tests benchmarks
"${PYTHON}" -m ruff format --check stacfetch tests benchmarks
echo "== mypy"; "${PYTHON}" -m mypy
echo "== pytest"
set +e
"${PYTHON}" -m pytest -p no:cacheprovider --doctest-modules stacfetch tests "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$status"
