#!/usr/bin/env bash
# `broker serve` under load, beside Redis, on 127.0.0.1: starts a release
# `broker serve` on a fresh SQLite database (default settings, port 0),
# two redis-server instances (AOF with `appendfsync always`, and AOF with
# its default `appendfsync everysec`), runs target/release/http-bench
# (bench/src/bin/http_bench.rs) against all three with 1, 8 and 64 clients,
# and against the physical floor (an ideal group commit on a file, see
# http_bench.rs),
# times the CLI (`broker write`, one process per message), and renders
# bench/manual/http.md, spliced into BENCHMARKS.md.
#
#   bench/http.sh            full sizes (~3 min)
#   bench/http.sh --quick    small sizes, to check the harness
#
# Needs redis-server (apt-get install -y redis-server). Every measurement is
# bounded: at most OPS messages and SECONDS seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/results/http.jsonl"
mkdir -p "$ROOT/bench/results"

OPS=20000 SECONDS_CAP=10 LAT=300 CLI=300 IDLE=1000 HOLD=10
if [[ "${1:-}" == "--quick" ]]; then
    OPS=500 SECONDS_CAP=3 LAT=30 CLI=20 IDLE=100 HOLD=2
fi

command -v redis-server >/dev/null || { echo "http.sh: needs redis-server (apt-get install -y redis-server)" >&2; exit 1; }

cargo build --release -p broker-cli >&2
cargo build --release -p litebroker-bench --features http --bin http-bench >&2

tmp="$(mktemp -d /tmp/litebroker-httpbench.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# broker serve
mkdir -p "$tmp/db"
target/release/broker -d "$tmp/db" serve --http 127.0.0.1:0 </dev/null >"$tmp/serve.out" 2>"$tmp/serve.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^Serving' "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/^Serving .* on \(http:\/\/[0-9.:]*\).*/\1/p' "$tmp/serve.out" | head -1)"
[[ -n "$url" ]] || { echo "broker serve did not start:" >&2; cat "$tmp/serve.err" >&2; exit 1; }
echo "broker serve on $url" >&2

# Redis, twice (started here, not in a subshell: the trap must know them).
start_redis() { # name fsync -> sets $redis_addr
    local port dir
    port="$(free_port)" dir="$tmp/$1"
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' \
        --appendonly yes --appendfsync "$2" --daemonize no --logfile "$dir/log" \
        </dev/null >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis_addr="$1=127.0.0.1:$port"
}
start_redis redis-always always
r_always="$redis_addr"
start_redis redis-everysec everysec
r_everysec="$redis_addr"

meta() {
    python3 - "$@" <<'PY'
import json, os, platform, subprocess, sys, datetime
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(json.dumps({"meta": sys.argv[1], "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "load": os.getloadavg(), "cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "redis": subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]}))
PY
}

: >"$OUT"
meta start >>"$OUT"
# --floor: the same clients against an ideal group commit (a file appended
# and fdatasync'ed once per batch, in the same directory as the database).
timeout 900 target/release/http-bench --url "$url" --redis "$r_always" --redis "$r_everysec" \
    --floor "$tmp/floor" --clients 1,8,64 --ops "$OPS" --seconds "$SECONDS_CAP" --latency "$LAT" | tee -a "$OUT" >&2

# The CLI: one `broker write` process per message, 1 and 8 at a time.
cli_rate() { # clients
    local n=$CLI start end
    start="$(date +%s.%N)"
    seq "$n" | xargs -P "$1" -I{} target/release/broker -d "$tmp/db" write cli-$1 "message {}"
    end="$(date +%s.%N)"
    python3 -c "import json,sys; n,s=int(sys.argv[1]),float(sys.argv[3])-float(sys.argv[2]); print(json.dumps({'system':'broker-cli','op':'send','clients':int(sys.argv[4]),'count':n,'seconds':s,'rate':n/s}))" "$n" "$start" "$end" "$1"
}
cli_rate 1 | tee -a "$OUT" >&2
cli_rate 8 | tee -a "$OUT" >&2
# What idle event streams cost the server: CPU time and resident memory
# over HOLD seconds with IDLE streams open on an empty queue.
server_pid="${pids[0]}"
proc_cpu() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
proc_rss() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
rss_before="$(proc_rss)"
target/release/http-bench --url "$url" --idle-sse "$IDLE" --hold $((HOLD + 4)) >"$tmp/idle.out" &
idle_pid=$!
pids+=($idle_pid)
for _ in $(seq 600); do grep -q idle_sse_open "$tmp/idle.out" 2>/dev/null && break; sleep 0.1; done
sleep 1
cpu0="$(proc_cpu)" rss_open="$(proc_rss)"
sleep "$HOLD"
cpu1="$(proc_cpu)"
wait "$idle_pid" || true
python3 -c "import json,sys; a=list(map(int,sys.argv[1:])); print(json.dumps({'meta':'idle_sse','streams':a[0],'seconds':a[1],'cpu_percent':(a[3]-a[2])/$(getconf CLK_TCK)/a[1]*100,'rss_before_kib':a[4],'rss_open_kib':a[5]}))" \
    "$IDLE" "$HOLD" "$cpu0" "$cpu1" "$rss_before" "$rss_open" | tee -a "$OUT" >&2

# How grouped the server's writes were.
curl -s "$url/metrics" | grep -E '^litebroker_(write|take|ack)_(requests|commits)_total' | \
    python3 -c 'import json,sys; d={l.split()[0]: int(l.split()[1]) for l in sys.stdin}; print(json.dumps({"meta":"commits", **d}))' >>"$OUT"
meta end >>"$OUT"

python3 bench/http_report.py "$OUT" >bench/manual/http.md
echo "wrote bench/manual/http.md" >&2
python3 bench/splice_manual.py
