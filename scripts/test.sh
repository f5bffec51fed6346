#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is
# missing (PostgreSQL server binaries, schemathesis), then runs every test:
# the workspace's tests, and schemathesis against a served binary.
# Works as root or not, on a clean clone, with no PostgreSQL running: the
# tests start private clusters from the installed server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

have_postgres_server() {
    command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
if ! have_postgres_server; then
    echo "PostgreSQL server binaries missing: installing them (apt-get install postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q postgresql
fi

cargo test --workspace
scripts/schemathesis.sh
