#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL cluster for the tests, from the
# installed server binaries (Debian's postgresql package), in a temporary
# directory, listening only on a Unix socket in that directory.
#
#   scripts/postgres.sh start DIR   # prints the connection URL on stdout
#   scripts/postgres.sh stop DIR
#   scripts/postgres.sh restart DIR # (re)starts it with the options of its first start
#
# PostgreSQL refuses to run as root, and CI runs as root: then the cluster
# runs as the unprivileged user `nobody`.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|restart DIR" >&2
    exit 2
fi

find_bin() {
    local name="$1" found
    if found="$(command -v "$name" 2>/dev/null)"; then
        echo "$found"
        return
    fi
    found="$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -1)"
    if [ -n "$found" ]; then
        echo "$found"
        return
    fi
    echo "$0: cannot find PostgreSQL's $name (install the postgresql package)" >&2
    exit 1
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
    else
        "$@"
    fi
}

initdb="$(find_bin initdb)"
pg_ctl="$(find_bin pg_ctl)"

case "$cmd" in
start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown nobody:nogroup "$dir"
    fi
    as_owner "$initdb" -D "$dir/data" -U litebroker --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    # Small and fast: the tests create and drop many schemas, and no test
    # relies on surviving a power cut of the test cluster.
    as_owner "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=300 \
            -c shared_buffers=64MB -c fsync=on -c synchronous_commit=on" start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    echo "postgresql:///postgres?host=$dir&user=litebroker"
    ;;
restart)
    # pg_ctl restart reuses the options recorded in postmaster.opts, and
    # starts a stopped server too.
    as_owner "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_owner "$pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
*)
    echo "usage: $0 start|stop|restart DIR" >&2
    exit 2
    ;;
esac
