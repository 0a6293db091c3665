#!/usr/bin/env bash
# Checks the monitoring files in etc-confd/monitoring: the alert rules (`promtool check rules`),
# their unit tests (`promtool test rules`), and the Grafana dashboard (valid JSON, and every panel
# query valid PromQL once Grafana's variables are filled in). Exits non-zero on any failure.
# Needs promtool (Debian package `prometheus`) and jq or python3.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=etc-confd/monitoring
rules=$dir/confd-rs-alerts.yml
tests=$dir/confd-rs-alerts.test.yml
dashboard=$dir/confd-rs-dashboard.json

fail() {
    echo "check-monitoring: FAILED: $*" >&2
    exit 1
}

command -v promtool >/dev/null ||
    fail "promtool not found: it comes with Debian's \`prometheus\` package (apt-get install -y prometheus)"
for f in "$rules" "$tests" "$dashboard"; do
    [ -f "$f" ] || fail "$f is missing"
done

echo "== promtool check rules $rules"
promtool check rules "$rules" || fail "promtool check rules $rules"
echo "== promtool test rules $tests"
promtool test rules "$tests" || fail "promtool test rules $tests"

# Each panel query of the dashboard, one JSON string a line (a JSON string is a YAML scalar).
echo "== $dashboard"
if command -v jq >/dev/null; then
    jq empty "$dashboard" || fail "$dashboard is not valid JSON (jq)"
    exprs=$(jq -r '.. | objects | select(has("expr")) | .expr | tojson' "$dashboard")
elif command -v python3 >/dev/null; then
    python3 -m json.tool "$dashboard" >/dev/null || fail "$dashboard is not valid JSON (python3 -m json.tool)"
    exprs=$(python3 -c '
import json, sys
def walk(o):
    if isinstance(o, dict):
        if "expr" in o:
            print(json.dumps(o["expr"]))
        for v in o.values():
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(json.load(open(sys.argv[1])))
' "$dashboard")
else
    fail "neither jq nor python3 found: one is needed to read $dashboard"
fi
[ -n "$exprs" ] || fail "$dashboard has no panel queries (no \"expr\")"
echo "valid JSON, $(wc -l <<<"$exprs") panel queries"

# The queries as recording rules, for promtool to parse: Grafana's interval variables become a
# duration and the other variables (used in =~ matchers) a regex.
as_rules=$(mktemp --suffix=.yml)
trap 'rm -f "$as_rules"' EXIT
{
    echo "groups:"
    echo "  - name: dashboard-queries"
    echo "    rules:"
    n=0
    while IFS= read -r expr; do
        n=$((n + 1))
        echo "      - record: dashboard:query_$n"
        echo "        expr: $expr"
    done < <(sed -e 's/\$__rate_interval/5m/g; s/\$__interval/1m/g; s/\$__range/1h/g' \
        -e 's/\$[A-Za-z_][A-Za-z0-9_]*/.*/g; s/\${[A-Za-z_][A-Za-z0-9_:]*}/.*/g' <<<"$exprs")
} >"$as_rules"
echo "== promtool check rules (the dashboard's queries)"
promtool check rules "$as_rules" || fail "a query of $dashboard is not valid PromQL"

echo "check-monitoring: all good"
