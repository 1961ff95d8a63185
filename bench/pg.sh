#!/usr/bin/env bash
# litebroker on PostgreSQL against the raw SQL floor and pg-boss, side by
# side on one local server, and renders bench/manual/postgres.md (which
# bench/report.py includes in BENCHMARKS.md).
#
#   bench/pg.sh            full sizes (~5 min)
#   bench/pg.sh --quick    small sizes, to check the harness
#
# The server: BROKER_BENCH_POSTGRES_URL if set (then also give
# PGBOSS_HOST/PGBOSS_USER/PGBOSS_DATABASE), else a throwaway cluster started
# by scripts/postgres.sh (Unix socket, fsync on, default settings otherwise).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/results/postgres.jsonl"
mkdir -p "$ROOT/bench/results"

# Each contender runs for seconds, not fractions of one: on a shared
# machine, short runs give ratios that swing by half.
sizes=(--single 8000 --batched 200000 --batch 1000 --claims 20000 --leases 6000 --conns 1,8)
lat=(--latency 300)
boss_lat=(--latency 40)
if [[ "${1:-}" == "--quick" ]]; then
    sizes=(--single 200 --batched 10000 --batch 1000 --claims 400 --leases 200 --conns 1,8)
    lat=(--latency 50)
    boss_lat=(--latency 5)
fi

if [[ -z "${BROKER_BENCH_POSTGRES_URL:-}" ]]; then
    pgdir="$(mktemp -d /tmp/litebroker-pgbench.XXXXXX)"
    trap 'scripts/postgres.sh stop "$pgdir"; rm -rf "$pgdir"' EXIT
    BROKER_BENCH_POSTGRES_URL="$(scripts/postgres.sh start "$pgdir")"
    PGBOSS_HOST="$pgdir" PGBOSS_USER=litebroker PGBOSS_DATABASE=postgres
fi

cargo build --release -p litebroker-bench --features lib --bin pg-bench >&2
(cd bench/pgboss && npm ci --no-audit --no-fund >/dev/null)

server="$(psql "$BROKER_BENCH_POSTGRES_URL" -Atc 'SHOW server_version')"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
: >"$OUT"
echo "== litebroker and the raw floor" >&2
target/release/pg-bench --url "$BROKER_BENCH_POSTGRES_URL" "${sizes[@]}" "${lat[@]}" | tee -a "$OUT" >&2
echo "== pg-boss" >&2
node bench/pgboss/bench.mjs --host "$PGBOSS_HOST" --user "$PGBOSS_USER" --database "$PGBOSS_DATABASE" \
    "${sizes[@]}" "${boss_lat[@]}" | tee -a "$OUT" >&2
python3 bench/pg_report.py "$OUT" "$server" "$load" >bench/manual/postgres.md
echo "wrote bench/manual/postgres.md" >&2
python3 bench/splice_manual.py
