#!/usr/bin/env bash
# The long chaos run: every scenario of scripts/chaos/chaos.py on a release
# build, for a bounded total time, with the figures as a Markdown table (the
# one in RELIABILITY.md), stamped with the date and the commit.
#
#   scripts/chaos/long.sh [minutes] [rounds] [first-seed] [extra chaos.py options...]
#       minutes     total budget of the kill storms (default 12), split evenly
#       rounds      each scenario runs this many times, seeds first-seed.. (default 1)
#       first-seed  default 1
#
# Examples:
#   scripts/chaos/long.sh                       # 12 minutes, one round, seed 1
#   scripts/chaos/long.sh 60 4 100              # an hour, four rounds, seeds 100..103
#   scripts/chaos/long.sh 10 1 1 -s read-all    # only the read --all storm
#   BROKER_BIN=target/debug/broker scripts/chaos/long.sh 5
#
# Every check runs and counts, known defects included (nothing is excused).
# Results: stdout, and chaos-long-<date>.json/.md under $CHAOS_RESULTS (default
# target/chaos/). Exit status 1 when any check failed.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

minutes="${1:-12}"
rounds="${2:-1}"
seed="${3:-1}"
shift $(( $# < 3 ? $# : 3 ))

bin="${BROKER_BIN:-$root/target/release/broker}"
if [ -z "${BROKER_BIN:-}" ]; then
    cargo build --release -p broker-cli >&2 || exit 1
fi
venv="$root/.venv-reference"
if [ ! -x "$venv/bin/broker" ]; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet simplebroker==2.8.4 || exit 1
fi

out="${CHAOS_RESULTS:-$root/target/chaos}"
mkdir -p "$out"
stamp="$(date -u +%Y-%m-%dT%H%MZ)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
# the broker's own source (the suite's files live next to it)
source_commit="$(git log -1 --format=%h -- crates/litebroker/src crates/broker-cli/src 2>/dev/null || echo unknown)"
dirty="$(git status --porcelain --untracked-files=no -- crates/litebroker/src crates/broker-cli/src 2>/dev/null | head -1)"
[ -n "$dirty" ] && source_commit="$source_commit+dirty"

echo "chaos long run: $stamp, commit $commit (broker source $source_commit), $minutes min, $rounds round(s) from seed $seed, $bin" >&2
python3 scripts/chaos/chaos.py --profile long --known "" \
    --broker "$bin" --reference "$venv/bin/broker" \
    --minutes "$minutes" --rounds "$rounds" --seed "$seed" \
    --json-out "$out/chaos-long-$stamp.json" --markdown "$@" | tee "$out/chaos-long-$stamp.md"
status=${PIPESTATUS[0]}
{
    echo
    echo "Run: $stamp, commit $commit (broker source: $source_commit), release build, $(nproc) cores, ${minutes} min budget, seeds $seed..$((seed + rounds - 1))."
} | tee -a "$out/chaos-long-$stamp.md"
exit "$status"
