#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo fuzz, libFuzzer) for a bounded time and
# prints one line per target: executions, corpus size, crashes.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 60 s, every target)
#
# Not part of scripts/test.sh. Needs `cargo install cargo-fuzz`. On a stable
# toolchain the sanitizer flags need RUSTC_BOOTSTRAP=1 (set here);
# FUZZ_SANITIZER=none builds without AddressSanitizer (faster, still finds panics).
# fuzz/dict/<target>.dict, when present, is passed as a libFuzzer dictionary.
# The seeds in fuzz/corpus/<target>/ stay as they are: what libFuzzer learns goes
# to fuzz/work/<target>/ (ignored by git). A crash leaves its input in
# fuzz/artifacts/<target>/ and makes the exit status 1; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>   (from fuzz/)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

secs="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build -O --sanitizer "$sanitizer" >/dev/null || {
    echo "fuzz: build failed (cargo fuzz build -O --sanitizer $sanitizer)" >&2
    exit 1
}

mkdir -p work logs
status=0
printf '%-12s %10s %8s %8s  %s\n' target executions exec/s corpus crashes
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "corpus/$t" "artifacts/$t"
    log="logs/$t.log"
    dict=()
    [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
    # -timeout: an input that takes over 10 s is reported (as a crash) too.
    cargo fuzz run -O --sanitizer "$sanitizer" "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="${FUZZ_MAX_LEN:-1024}" \
        -print_final_stats=1 "${dict[@]}" >"$log" 2>&1
    rc=$?
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    speed=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
    if [ -z "$execs" ]; then  # stopped at a crash: the last status line has the count
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    fi
    corpus=$(find "work/$t" -type f | wc -l)
    crash=$(grep -o 'Test unit written to [^ ]*' "$log" | awk '{print $5}' | tail -1)
    if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
        status=1
        what=$(grep -m1 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" || true)
        printf '%-12s %10s %8s %8s  CRASH %s\n' "$t" "${execs:-?}" "${speed:-?}" "$corpus" "${crash:-rc=$rc}"
        [ -n "$what" ] && printf '%-12s   %s\n' "" "$what"
        grep -m1 -A1 "panicked at" "$log" | tail -1 | sed 's/^/               /'
    else
        printf '%-12s %10s %8s %8s  none\n' "$t" "${execs:-?}" "${speed:-?}" "$corpus"
    fi
done
exit "$status"
