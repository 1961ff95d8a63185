#!/usr/bin/env bash
# Benchmarks our `broker` against the reference (SimpleBroker 2.8.4) and
# writes BENCHMARKS.md. One command:
#
#   bench/run.sh            full run (~10-15 min on 2 cores, mostly the reference)
#   bench/run.sh --quick    small sizes, to check the harness (~1 min)
#
# Any other arguments are passed to bench/harness.py (see its --help), e.g.
#   bench/run.sh --only read_all,vacuum --ref-read-all 20000
#
# Steps: build release binaries; make sure the reference venv exists
# (.venv-reference, pip install simplebroker==2.8.4) and the pub/sub one
# (.venv-pubsub, pip install formix-pubsub==1.0.0); run every workload with
# ours and the reference side by side in fresh temp dirs (bench/harness.py);
# render BENCHMARKS.md (bench/report.py). If our binary does not build, the
# reference half still runs and the report goes to
# bench/results/BENCHMARKS.partial.md instead (BENCHMARKS.md is left alone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/release"
RESULTS_DIR="$ROOT/bench/results"
VENV="$ROOT/.venv-reference"
REF_VERSION="2.8.4"
PUBSUB_VENV="$ROOT/.venv-pubsub"
PUBSUB_VERSION="1.0.0"

say() { printf '\n== %s\n' "$*" >&2; }

HARNESS_ARGS=()
for arg in "$@"; do
    if [[ "$arg" == "--quick" ]]; then
        HARNESS_ARGS+=(--runs 5 --warmup 1 --reps 1 --seq-writes 100 --ref-seq-writes 20
                       --big 10000 --ref-read-all 2000 --conc 100 --single 200
                       --watch-latency 100 --watch-idle-latency 5 --watch-drain 10000 --ref-watch-drain 1000
                       --watch-idle-seconds 3
                       --pubsub-latency 200 --pubsub-fanout 300 --pubsub-copies 20000
                       --pubsub-ref-fanout 300 --pubsub-ref-time-limit 5 --pubsub-replay 100000)
    else
        HARNESS_ARGS+=("$arg")
    fi
done

# --- tools -------------------------------------------------------------------
apt_install() {
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y "$@" >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 && apt-get install -y "$@" >/dev/null 2>&1; } || true
    fi
}
if [[ ! -x /usr/bin/time ]]; then
    say "installing GNU time (for peak RSS)"
    apt_install time
    [[ -x /usr/bin/time ]] || { echo "need /usr/bin/time (apt-get install time)" >&2; exit 1; }
fi
if ! command -v hyperfine >/dev/null; then
    say "installing hyperfine (optional; falls back to a timing loop)"
    apt_install hyperfine
fi

# --- build -------------------------------------------------------------------
say "building release binaries"
# As installed: scripts/build-release.sh (a static PIE on Linux with glibc).
if OURS="$(scripts/build-release.sh)"; then
    HAVE_OURS=1
else
    echo "warning: our broker does not build; running the reference half only" >&2
    HAVE_OURS=0
fi
# lib-throughput, watch-latency and lease-throughput need the litebroker
# library; the raw-SQLite floors do not.
if ! cargo build --release -p litebroker-bench --features lib; then
    echo "warning: the library benchmarks do not build; building the raw-SQLite floors only" >&2
    rm -f "$BIN_DIR/lib-throughput" "$BIN_DIR/watch-latency" "$BIN_DIR/lease-throughput" "$BIN_DIR/pubsub-bench"
    cargo build --release -p litebroker-bench
fi

# --- reference ---------------------------------------------------------------
if ! "$VENV/bin/broker" --version 2>/dev/null | grep -qx "simplebroker $REF_VERSION"; then
    say "creating reference venv $VENV (simplebroker==$REF_VERSION)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "simplebroker==$REF_VERSION"
fi

# The pub/sub reference (workload pubsub): formix-pubsub in its own venv.
pubsub_version() {
    "$PUBSUB_VENV/bin/python" -c \
        "import importlib.metadata as m; print(m.version('formix-pubsub'))" 2>/dev/null
}
if [[ "$(pubsub_version)" != "$PUBSUB_VERSION" ]]; then
    say "creating pub/sub reference venv $PUBSUB_VENV (formix-pubsub==$PUBSUB_VERSION)"
    rm -rf "$PUBSUB_VENV"
    python3 -m venv "$PUBSUB_VENV"
    "$PUBSUB_VENV/bin/pip" install --quiet "formix-pubsub==$PUBSUB_VERSION"
fi

# --- run ---------------------------------------------------------------------
mkdir -p "$RESULTS_DIR"
RESULTS="$RESULTS_DIR/results.json"
OURS_ARGS=()
if [[ $HAVE_OURS -eq 1 ]]; then OURS_ARGS=(--ours "$OURS"); fi
say "running workloads (progress on stderr)"
python3 "$ROOT/bench/harness.py" "${OURS_ARGS[@]}" --ref "$VENV/bin/broker" \
    --bin-dir "$BIN_DIR" --pubsub-python "$PUBSUB_VENV/bin/python" \
    --out "$RESULTS" "${HARNESS_ARGS[@]}"

if [[ $HAVE_OURS -eq 1 && ${#HARNESS_ARGS[@]} -eq 0 ]]; then
    REPORT="$ROOT/BENCHMARKS.md"
else
    # Partial or non-default runs never overwrite the published numbers.
    REPORT="$RESULTS_DIR/BENCHMARKS.partial.md"
fi
python3 "$ROOT/bench/report.py" "$RESULTS" "$REPORT"
say "wrote $REPORT (raw numbers: $RESULTS)"
