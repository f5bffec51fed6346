#!/usr/bin/env bash
# The README's quick tour, run against a running orderstream server, with
# every outcome checked: exits non-zero on the first mismatch.
#
#   ORDERSTREAM_URL         server in auto fulfilment (default http://127.0.0.1:8080)
#   ORDERSTREAM_MANUAL_URL  optional server in manual fulfilment, for the
#                           cancel and ship steps (skipped when unset)
#   ORDERSTREAM_ADMIN_TOKEN optional, for the rebuild step (skipped when unset)
#   QUICK_TOUR_TIMEOUT      seconds to wait for each outcome (default 30)
#
# Needs curl, and jq or python3 to read JSON.
set -euo pipefail

AUTO_URL=${ORDERSTREAM_URL:-http://127.0.0.1:8080}
MANUAL_URL=${ORDERSTREAM_MANUAL_URL:-}
TOKEN=${ORDERSTREAM_ADMIN_TOKEN:-}
TIMEOUT=${QUICK_TOUR_TIMEOUT:-30}
# A SKU of its own, so that the tour can run again against the same server.
SKU="TOUR-$(date +%s)-$$"

fail() { echo "quick tour: FAILED: $*" >&2; exit 1; }
command -v curl >/dev/null || fail "curl is not installed"

# json FILTER: reads JSON on stdin, prints the value (strings unquoted, one
# line per element for `.[]...`). Filters are jq syntax, limited to paths
# like `.a.b`, `.a[0].b` and `.[].type`.
if command -v jq >/dev/null; then
    json() { jq -r "$1"; }
elif command -v python3 >/dev/null; then
    json() {
        python3 -c '
import json, re, sys
def walk(values, tokens):
    for token in tokens:
        out = []
        for value in values:
            if token == "[]":
                out.extend(value if isinstance(value, list) else list(value.values()))
            elif token.startswith("["):
                index = int(token[1:-1])
                out.append(value[index] if isinstance(value, list) and -len(value) <= index < len(value) else None)
            else:
                out.append(value.get(token) if isinstance(value, dict) else None)
        values = out
    return values
tokens = re.findall(r"\[\d*\]|[^.\[\]]+", sys.argv[1])
for value in walk([json.load(sys.stdin)], tokens):
    print("null" if value is None else value if isinstance(value, str) else json.dumps(value))
' "$1"
    }
else
    fail "jq or python3 is needed to read JSON"
fi

# request METHOD PATH [BODY] [curl args...]: sets STATUS and BODY.
request() {
    local method=$1 path=$2 data=${3:-}
    shift $(($# < 3 ? $# : 3))
    local out
    out=$(mktemp)
    local args=(-sS -o "$out" -w '%{http_code}' -X "$method" "$@")
    [ -n "$data" ] && args+=(-H 'content-type: application/json' --data "$data")
    echo "\$ curl -X $method $BASE$path${data:+ -d '$data'}"
    STATUS=$(curl "${args[@]}" "$BASE$path") || fail "curl could not reach $BASE$path"
    BODY=$(cat "$out")
    rm -f "$out"
}

expect_status() { [ "$STATUS" = "$1" ] || fail "expected HTTP $1, got $STATUS: $BODY"; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
field() { printf '%s' "$BODY" | json "$1"; }

# wait_for PATH FILTER VALUE [curl args...]: polls until FILTER of GET PATH
# is VALUE, printing each new value seen.
wait_for() {
    local path=$1 filter=$2 wanted=$3 seen="" value
    shift 3
    local deadline=$((SECONDS + TIMEOUT))
    while :; do
        value=$(curl -sS "$@" "$BASE$path" | json "$filter") || value=""
        if [ "$value" != "$seen" ]; then
            echo "  $filter: $value"
            seen=$value
        fi
        [ "$value" = "$wanted" ] && return 0
        [ $SECONDS -lt $deadline ] || fail "$path: $filter never became $wanted (last: $value)"
        sleep 0.1
    done
}

yesterday() {
    date -u -d '1 day ago' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -v-1d +%Y-%m-%dT%H:%M:%SZ
}

order_json() { # SKU QUANTITY
    printf '{"customer_id": "c-42", "currency": "USD", "lines": [{"sku": "%s", "quantity": %s, "unit_price": "9.99"}], "payment_method": "card_ok"}' "$1" "$2"
}

BASE=$AUTO_URL
echo "== 1. the service is up"
request GET /health
expect_status 200

echo "== 2. receive 10 units of $SKU"
request POST "/inventory/$SKU/receipts" '{"quantity": 10, "warehouse": "main"}'
expect_status 201
expect_eq "$(field .on_hand)" 10 "on hand after the receipt"

echo "== 3. place an order for 2 of them"
request POST /orders "$(order_json "$SKU" 2)"
expect_status 201
expect_eq "$(field .status)" pending "status of a new order"
expect_eq "$(field .total)" 19.98 "total"
ORDER=$(field .order_id)
FIRST_ORDER=$ORDER
echo "  order $ORDER"

echo "== 4. watch it go pending -> reserved -> shipped -> paid"
wait_for "/orders/$ORDER" .status paid

echo "== 5. its timeline: every event of the flow, across streams"
DEADLINE=$((SECONDS + TIMEOUT))
while :; do
    request GET "/orders/$ORDER/timeline"
    expect_status 200
    TYPES=$(field '.[].type' | tr '\n' ' ')
    MISSING=""
    for type in OrderPlaced InventoryReserved OrderReserved OrderShipped PaymentCaptured OrderPaid; do
        case " $TYPES " in *" $type "*) ;; *) MISSING="$MISSING $type" ;; esac
    done
    [ -z "$MISSING" ] && break
    [ $SECONDS -lt $DEADLINE ] || fail "timeline lacks$MISSING: $TYPES"
    sleep 0.1
done
echo "  $TYPES"

echo "== 6. stock now, and yesterday (before the first receipt)"
wait_for "/inventory/$SKU" .on_hand 8
request GET "/inventory/$SKU?at=$(yesterday)"
expect_status 200
expect_eq "$(field .on_hand)" 0 "on hand yesterday"

if [ -n "$MANUAL_URL" ]; then
    BASE=$MANUAL_URL
    echo "== 7. manual fulfilment: reserve, then cancel (the stock comes back)"
    request POST "/inventory/$SKU/receipts" '{"quantity": 5}'
    expect_status 201
    request POST /orders "$(order_json "$SKU" 3)"
    expect_status 201
    ORDER=$(field .order_id)
    wait_for "/orders/$ORDER" .status reserved
    wait_for "/inventory/$SKU" .available 2
    request POST "/orders/$ORDER/cancel" '{"reason": "customer changed their mind"}'
    expect_status 200
    expect_eq "$(field .status)" cancelled "status after cancel"
    wait_for "/inventory/$SKU" .available 5

    echo "== 8. manual fulfilment: ship by hand, then it is paid"
    request POST /orders "$(order_json "$SKU" 1)"
    expect_status 201
    ORDER=$(field .order_id)
    wait_for "/orders/$ORDER" .status reserved
    request POST "/orders/$ORDER/ship"
    expect_status 200
    wait_for "/orders/$ORDER" .status paid
    request POST "/orders/$ORDER/cancel" '{"reason": "too late"}'
    expect_status 409
    BASE=$AUTO_URL
else
    echo "== 7-8. skipped: set ORDERSTREAM_MANUAL_URL to a server in manual fulfilment"
fi

if [ -n "$TOKEN" ]; then
    echo "== 9. rebuild the orders read model from the log"
    request POST /projections/orders/rebuild "" -H "Authorization: Bearer $TOKEN"
    expect_status 202
    request GET /subscriptions "" -H "Authorization: Bearer $TOKEN"
    expect_status 200
    expect_eq "$(field '.[0].name')" orders "first subscription"
    wait_for /subscriptions '.[0].state' running -H "Authorization: Bearer $TOKEN"
    wait_for "/orders/$FIRST_ORDER" .status paid
    request GET /subscriptions
    expect_status 401
else
    echo "== 9. skipped: set ORDERSTREAM_ADMIN_TOKEN to rebuild a projection"
fi

echo "quick tour: all checks passed"
