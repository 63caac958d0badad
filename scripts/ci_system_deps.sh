#!/usr/bin/env bash
# System and Python packages for the real STAC test servers (tests/support/pgstac.py):
# PostgreSQL + PostGIS + pgstac + stac-fastapi-pgstac. For a fresh Debian 12 machine, as root.
# Idempotent: does nothing that is already done. Override the version with PG_MAJOR=16 etc.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
POSTGIS_CONTROL="/usr/share/postgresql/${PG_MAJOR}/extension/postgis.control"
PYTHON="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
    echo "ci_system_deps.sh: run as root (apt-get)" >&2
    exit 1
fi

if [ ! -x "${PG_BIN}/initdb" ] || [ ! -f "${POSTGIS_CONTROL}" ]; then
    apt-get update
    # postgresql-common first, told not to create (and start) the default cluster on :5432:
    # the tests make their own throwaway clusters.
    apt-get install -y --no-install-recommends postgresql-common
    sed -ri 's/^#?\s*create_main_cluster\s*=.*$/create_main_cluster = false/' \
        /etc/postgresql-common/createcluster.conf
    apt-get install -y --no-install-recommends \
        "postgresql-${PG_MAJOR}" "postgresql-${PG_MAJOR}-postgis-3"
fi

# Debian's Chromium for the JupyterLab browser tests (playwright cannot download browsers here).
if [ ! -x /usr/bin/chromium ]; then
    apt-get update
    apt-get install -y --no-install-recommends chromium
fi

# PostgreSQL refuses to run as root; the server fixture then runs it as this OS user.
id postgres >/dev/null

# Python side of the servers (the same pins as measured on the dev machines).
"${PYTHON}" -m pip install --quiet \
    "stac-fastapi-pgstac==7.2.0" "pypgstac[psycopg]==0.10.0" uvicorn httpx orjson

# Verify.
test -x "${PG_BIN}/initdb" || { echo "missing ${PG_BIN}/initdb" >&2; exit 1; }
test -x "${PG_BIN}/pg_ctl" || { echo "missing ${PG_BIN}/pg_ctl" >&2; exit 1; }
test -f "${POSTGIS_CONTROL}" || { echo "missing PostGIS (${POSTGIS_CONTROL})" >&2; exit 1; }
"${PYTHON}" -c "import pypgstac, psycopg, psycopg_pool, stac_fastapi.pgstac, uvicorn, httpx"
echo "ci_system_deps.sh: PostgreSQL ${PG_MAJOR} + PostGIS + pgstac server packages ready"
