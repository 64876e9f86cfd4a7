#!/usr/bin/env bash
# One command from a fresh machine to a running pod: installs what is
# missing, builds sandboxd and the busybox image, runs the example pod.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/deps.sh
bin=$(packaging/build.sh)
images/busybox/build.sh >/dev/null
exec "$bin" images/example.pod.json
