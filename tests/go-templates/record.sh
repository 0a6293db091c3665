#!/bin/sh
# Re-records tests/go-templates/*/expected with the oracle (real Go text/template, confd's
# functions): ./record.sh [CASE...]   (no CASE: every case). Needs Go (Debian: golang-go).
# Each case renders under `env -i PATH=...`, so getenv sees no variable but PATH; a case that
# fails to render stops the script and leaves its old expected in place.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
(cd "$here/oracle" && go build -o "$tmp/oracle" .)
if [ "$#" -eq 0 ]; then
    set -- $(cd "$here" && for d in */template.tmpl; do dirname "$d"; done)
fi
for case in "$@"; do
    dir="$here/$case"
    [ -f "$dir/template.tmpl" ] && [ -f "$dir/keys.json" ] || { echo "record.sh: $case: no template.tmpl/keys.json" >&2; exit 1; }
    if ! (cd "$dir" && env -i PATH="$PATH" "$tmp/oracle" template.tmpl keys.json > "$tmp/out"); then
        echo "record.sh: $case: the oracle failed (expected left as it was)" >&2
        exit 1
    fi
    if [ -f "$dir/expected" ] && cmp -s "$tmp/out" "$dir/expected"; then
        echo "unchanged $case"
    else
        mv "$tmp/out" "$dir/expected"
        echo "recorded  $case ($(wc -c < "$dir/expected") bytes)"
    fi
done
