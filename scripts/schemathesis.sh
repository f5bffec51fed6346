#!/usr/bin/env bash
# schemathesis (--checks all) against `orderstream serve` on its embedded
# PostgreSQL: every request the OpenAPI document allows must be accepted,
# every one it forbids refused, every answer documented. Installs a pinned
# schemathesis into target/schemathesis-venv when it is missing.
#
#   scripts/schemathesis.sh            # about 3 minutes
#   ST_MAX_TIME=600 scripts/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version | grep -q "$SCHEMATHESIS_VERSION"; then
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        echo "python3 with venv missing: installing it (apt-get install python3-venv)"
        as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get update -q
        as_root apt-get install -y -q python3 python3-venv
    fi
    echo "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv "$venv" || {
        echo "could not create a Python venv: apt-get install -y python3-venv" >&2
        exit 1
    }
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build -q --bin orderstream
binary="$PWD/target/debug/orderstream"
workdir=$(mktemp -d)
chmod 755 "$workdir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="schemathesis-$(date +%s%N)"

ready() {
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$port/ready" >/dev/null 2>&1
}

server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

# The embedded database (no DATABASE_URL), as the README's run command.
(
    cd "$workdir"
    env -u DATABASE_URL ORDERSTREAM_BIND="127.0.0.1:$port" ORDERSTREAM_ADMIN_TOKEN="$token" \
        RUST_LOG=warn "$binary" serve >"$workdir/serve.log" 2>&1
) &
server_pid=$!

for _ in $(seq 1 600); do
    if ready; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "orderstream serve exited before it was ready:" >&2
        cat "$workdir/serve.log" >&2
        exit 1
    fi
    sleep 0.1
done
ready || {
    echo "orderstream serve was not ready within 60 s:" >&2
    cat "$workdir/serve.log" >&2
    exit 1
}

status=0
"$venv/bin/st" --config-file scripts/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
    --checks all \
    -H "Authorization: Bearer $token" \
    --max-time "${ST_MAX_TIME:-180}" \
    --warnings off \
    --seed "${ST_SEED:-1}" || status=$?
if [ "$status" -ne 0 ]; then
    echo "schemathesis found failures (exit $status); the server's log:" >&2
    tail -50 "$workdir/serve.log" >&2
fi
exit "$status"
