#!/usr/bin/env bash
# `read --all` throughput into a pipe, for two builds side by side: the cost of
# counting a message as delivered only once the pipe's reader has read it.
#
#   bench/pipe_reader.sh BEFORE_BIN AFTER_BIN [N] [RUNS]
#
# Fills one database with N messages (bodies `message NNNNNN`, as bench/run.sh),
# then for each of RUNS rounds, alternating the builds, times on a fresh copy:
# `read q --all | cat > /dev/null`, `read q --all | wc -l` (checked to be N)
# and, for reference, `read q --all > file` (not a pipe). Prints the median
# of each in messages per second of wall time, and of the broker's own CPU
# time (user + system, less sensitive to a busy machine).
set -euo pipefail
BEFORE=$(realpath "$1"); AFTER=$(realpath "$2"); N=${3:-100000}; RUNS=${4:-5}
DIR=$(mktemp -d); trap 'rm -rf "$DIR"' EXIT
cd "$DIR"
python3 -c "
import json
for i in range($N):
    print(json.dumps({'queue': 'q', 'id': 1700000000000000000 + i * 4096, 'body': f'message {i:06d}'}))
" > fill.ndjson
"$AFTER" -d "$DIR" -f fixture.db load fill.ndjson >/dev/null

now() { date +%s%N; }
declare -A T C
for run in $(seq "$RUNS"); do
  for side in before after; do
    bin=$BEFORE; [[ $side == after ]] && bin=$AFTER
    for how in cat wc file; do
      rm -f run.db run.db-*; cp fixture.db run.db
      start=$(now)
      timed=(/usr/bin/time -f "%U %S" -o cpu.txt "$bin" -d "$DIR" -f run.db read q --all)
      case $how in
        cat) "${timed[@]}" | cat > /dev/null ;;
        wc) got=$("${timed[@]}" | wc -l)
            [[ $got -eq $N ]] || { echo "$side wc: $got lines, not $N" >&2; exit 1; } ;;
        file) "${timed[@]}" > out.txt ;;
      esac
      T[$side.$how]+="$(( $(now) - start )) "
      C[$side.$how]+="$(awk '{printf "%d", ($1 + $2) * 1e9}' cpu.txt) "
    done
  done
done
median_rate() { # nanosecond times -> messages/s of the median
  printf '%s\n' $1 | sort -n | awk -v n="$N" '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%d", n / (m / 1e9)}'
}
echo "N=$N runs=$RUNS (median, msg/s)"
for how in cat wc file; do
  for kind in wall cpu; do
    if [[ $kind == wall ]]; then b=${T[before.$how]}; a=${T[after.$how]}; else b=${C[before.$how]}; a=${C[after.$how]}; fi
    b=$(median_rate "$b"); a=$(median_rate "$a")
    awk -v h="$how" -v k="$kind" -v b="$b" -v a="$a" \
      'BEGIN {printf "%-5s %-4s before %9d  after %9d  after/before %.2fx\n", h, k, b, a, a / b}'
  done
done
