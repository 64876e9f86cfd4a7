#!/usr/bin/env bash
# Installs the release binary as /usr/local/bin/sandboxd (or $PREFIX/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(packaging/build.sh)
install -D -m 0755 "$bin" "${PREFIX:-/usr/local}/bin/sandboxd"
echo "installed ${PREFIX:-/usr/local}/bin/sandboxd"
