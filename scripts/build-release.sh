#!/bin/sh
# Builds the release `broker` the way it is installed and benchmarked, and
# prints its path. On Linux with glibc it is a static PIE: the loader then
# maps no shared library and looks up no symbol, which is a quarter of the
# CPU time of a one-shot `broker write` (BENCHMARKS.md, "the last quarter of
# a write process"); ASLR stays (it is still position-independent), and
# glibc's built-in files and DNS lookups serve host names (`--db` URLs).
# Elsewhere it is the usual dynamic build.
#
#   scripts/build-release.sh            build; print the binary's path
#   scripts/build-release.sh --install  also copy it to ~/.cargo/bin
#
# (`cargo install --path crates/broker-cli` gives the dynamic build.)
set -eu
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
case "$host" in
*-linux-gnu)
    # --target keeps the flag off build scripts and proc macros.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release -p broker-cli --target "$host" >&2
    bin="$target_dir/$host/release/broker"
    ;;
*)
    cargo build --release -p broker-cli >&2
    bin="$target_dir/release/broker"
    ;;
esac
if [ "${1:-}" = "--install" ]; then
    dest="${CARGO_HOME:-$HOME/.cargo}/bin"
    mkdir -p "$dest"
    cp "$bin" "$dest/broker"
    echo "$dest/broker"
else
    echo "$bin"
fi
