#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is
# missing (PostgreSQL server binaries, rabbitmq-server, promtool, Node.js,
# Chromium and the console tests' npm packages, schemathesis), then runs
# every test: the alert rules' unit tests, the
# workspace's tests, the AsyncAPI document's validation, and schemathesis
# against a served binary.
# Works as root or not, on a clean clone, with no PostgreSQL or RabbitMQ
# running: the tests start private clusters and nodes from the installed
# server packages (never the machine's own services).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs Debian packages whose maintainer scripts would start a service
# (rabbitmq-server, prometheus) without starting it: a policy-rc.d answering
# 101 forbids it (invoke-rc.d and deb-systemd-invoke both obey it). An
# existing policy-rc.d is the machine's policy and is left alone.
install_without_starting_services() {
    export DEBIAN_FRONTEND=noninteractive
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        created=yes
        trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    as_root apt-get update -q
    as_root apt-get install -y -q "$@"
    if [ -n "$created" ]; then
        as_root rm -f "$policy"
        trap - EXIT
    fi
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

# ORDERSTREAM_TEST_AMQP_URL names an existing broker instead (rabbitmq-embedded).
have_rabbitmq_server() {
    [ -n "${ORDERSTREAM_TEST_AMQP_URL:-}" ] ||
        [ -n "${ORDERSTREAM_RABBITMQ_SERVER:-}" ] ||
        [ -e /usr/lib/rabbitmq/bin/rabbitmq-server ] ||
        compgen -G "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server" >/dev/null ||
        command -v rabbitmq-server >/dev/null 2>&1
}
if ! have_rabbitmq_server; then
    echo "RabbitMQ server missing: installing it (apt-get install rabbitmq-server)," \
        "without starting its system service: the tests run private nodes"
    install_without_starting_services rabbitmq-server
fi

# promtool checks the alert rules. Debian ships it in the `prometheus`
# package (~19 MB), whose server is a service: installed without starting
# it, as above.
if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool missing: installing it (apt-get install prometheus)," \
        "without starting its system service"
    install_without_starting_services --no-install-recommends prometheus
fi
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

if ! command -v npx >/dev/null 2>&1; then
    echo "npx missing: installing Node.js and npm (apt-get install nodejs npm)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q nodejs npm
fi

# The console's browser tests (`cargo test --test browser`) drive Debian's
# headless Chromium with Playwright (playwright-core, pinned in
# tests/browser/package-lock.json; it downloads no browser of its own).
# Chromium starts no service; DejaVu gives the screenshots stable fonts.
if [ ! -x /usr/bin/chromium ]; then
    echo "Chromium missing: installing it (apt-get install chromium) for the console's browser tests"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q chromium fonts-dejavu-core
fi
if [ ! -d tests/browser/node_modules/playwright-core ] ||
    [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    npm ci --prefix tests/browser --no-audit --no-fund
fi

cargo test --workspace

# The AsyncAPI document of the integration contracts, validated with the
# AsyncAPI CLI (pinned; ~2 min to download on a cold npm cache, ~6 s after).
# Warnings fail the check too.
mkdir -p target
cargo run -q --bin orderstream -- asyncapi >target/asyncapi.json
SUPPRESS_NO_CONFIG_WARNING=1 npx --yes @asyncapi/cli@6.2.0 validate target/asyncapi.json --fail-severity=warn
scripts/schemathesis.sh
