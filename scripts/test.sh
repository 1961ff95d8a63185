#!/usr/bin/env bash
# Runs every test of the workspace. On first use it installs the pinned Python
# reference (simplebroker==2.8.4) into .venv-reference/ at the repository root,
# because the interoperability tests run both programs on one database, and the
# PyQueue client (pyqueue-client==1.2.1) into .venv-pyqueue/, which the
# `broker serve` tests drive, and playwright-core for the dashboard's browser
# test (crates/litebroker-server/tests/browser/node_modules/).
# Extra arguments are passed to `cargo test`, e.g. `scripts/test.sh --test interop`.
#
# PostgreSQL: unless BROKER_TEST_POSTGRES_URL names a server, it starts a
# throwaway cluster (scripts/postgres.sh: initdb + pg_ctl into a temporary
# directory, a Unix socket, as an unprivileged user when run as root) and
# stops it at the end. The PostgreSQL tests then run with the rest, and
# without extra arguments the library's conformance suite runs a second time
# on PostgreSQL (LITEBROKER_TEST_BACKEND=postgres).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/.venv-reference"
if [ ! -x "$venv/bin/broker" ]; then
    echo "installing the Python reference (simplebroker==2.8.4) into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet simplebroker==2.8.4
fi

export LITEBROKER_REFERENCE="$venv/bin/broker"

# `broker serve` is tested with the PyQueue server's real client.
pyqueue="$root/.venv-pyqueue"
if ! "$pyqueue/bin/python" -c "import pyqueue_client" >/dev/null 2>&1; then
    echo "installing the PyQueue client (pyqueue-client==1.2.1) into $pyqueue" >&2
    python3 -m venv "$pyqueue"
    "$pyqueue/bin/pip" install --quiet pyqueue-client==1.2.1
fi
export LITEBROKER_PYQUEUE_PYTHON="$pyqueue/bin/python"

# The dashboard's browser test drives the system Chromium with playwright-core
# (pinned in its package-lock.json), installed next to the test script.
browser="$root/crates/litebroker-server/tests/browser"
if [ ! -d "$browser/node_modules/playwright-core" ]; then
    echo "installing playwright-core into $browser/node_modules" >&2
    (cd "$browser" && npm ci --no-audit --no-fund --silent)
fi

if [ -z "${BROKER_TEST_POSTGRES_URL:-}" ]; then
    pgdir="$(mktemp -d /tmp/litebroker-pg.XXXXXX)"
    trap 'scripts/postgres.sh stop "$pgdir"; rm -rf "$pgdir"' EXIT
    BROKER_TEST_POSTGRES_URL="$(scripts/postgres.sh start "$pgdir")"
    echo "started a throwaway PostgreSQL: $BROKER_TEST_POSTGRES_URL" >&2
fi
export BROKER_TEST_POSTGRES_URL
# No PostgreSQL test may pass for lack of a server here.
export LITEBROKER_REQUIRE_POSTGRES=1

cargo test --workspace "$@"
if [ "$#" -eq 0 ]; then
    echo "the conformance suite again, on PostgreSQL" >&2
    LITEBROKER_TEST_BACKEND=postgres cargo test -p litebroker \
        --test broker --test lease --test delivery --test pubsub --test watcher --test worker
    # The release binary as installed (scripts/build-release.sh: a static
    # PIE on Linux with glibc) passes the CLI's command, server and
    # PostgreSQL tests too.
    echo "the CLI tests again, on the release binary from scripts/build-release.sh" >&2
    LITEBROKER_BROKER_BIN="$(scripts/build-release.sh)" cargo test -p broker-cli \
        --test cli_commands --test serve --test postgres --test interop
fi
