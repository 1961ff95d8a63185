#!/usr/bin/env bash
# The TCP Message Broker protocol (`broker serve --tcp`) against its raw
# floor, in one run, and renders bench/manual/tcp.md (spliced into
# BENCHMARKS.md by bench/splice_manual.py).
#
#   bench/tcp.sh            full sizes (~2 min)
#   bench/tcp.sh --quick    a tenth
#
# The floor for acknowledged publishes is measured by tcp_bench itself, in
# the same run, alternating with ours: a minimal loopback server that
# commits each batch of PUBLISH frames to SQLite (synchronous=FULL) and
# answers after the commit (see the example's module doc). The raw
# single-row commit rate (sqlite-limits) is kept as a line of its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/results/tcp.jsonl"
mkdir -p "$ROOT/bench/results"
quick=()
single=1000
if [[ "${1:-}" == "--quick" ]]; then
    quick=(--quick)
    single=200
fi

cargo build --release -p litebroker-tcp --example tcp_bench >&2
cargo build --release -p litebroker-bench --bin sqlite-limits >&2
dir="$(mktemp -d "${TMPDIR:-/tmp}/litebroker-tcpbench.XXXXXX")"
trap 'rm -rf "$dir"' EXIT
: >"$OUT"
target/release/sqlite-limits --dir "$dir" --rows 10000 --single "$single" \
    | grep '"sqlite_single_commit"' | tee -a "$OUT" >&2
TMPDIR="$dir" target/release/examples/tcp_bench "${quick[@]}" | tee -a "$OUT" >&2
python3 bench/tcp_report.py "$OUT" >bench/manual/tcp.md
python3 bench/splice_manual.py
