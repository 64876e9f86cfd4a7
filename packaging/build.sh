#!/usr/bin/env bash
# Builds the release binary (statically linked, see .cargo/config.toml) and
# prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/x86_64-unknown-linux-gnu/release/sandboxd
packaging/check-static.sh "$bin" >&2
echo "$bin"
