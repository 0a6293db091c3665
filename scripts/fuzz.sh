#!/usr/bin/env bash
# Runs each cargo-fuzz target for SECONDS (default 60) on the nightly toolchain and prints its
# executions and any crash. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Installs cargo-fuzz from crates.io when it is missing. Crashes land in fuzz/artifacts/TARGET/.
# Leak detection is off: the template environment is built once into a static and lives for the
# whole process, which LeakSanitizer reports as a leak on every input.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config_loader key_file glob template_functions go_template)
# At exit too (libFuzzer's -detect_leaks covers only its loop).
export ASAN_OPTIONS=detect_leaks=0
status=0
for t in "${targets[@]}"; do
    log=$(mktemp)
    if cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 >"$log" 2>&1; then
        result="no crash"
    else
        result="CRASH (see fuzz/artifacts/$t/)"
        status=1
    fi
    execs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9][0-9]*' | tail -1 || true)
    echo "$t: ${execs:-?} executions in ${secs}s: $result"
    [ "$result" = "no crash" ] || tail -30 "$log"
    rm -f "$log"
done
exit $status
