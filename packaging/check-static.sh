#!/usr/bin/env bash
# Fails unless BIN is statically linked: no program interpreter, no
# dynamic dependencies.
set -euo pipefail
bin=${1:?usage: check-static.sh BIN}
if readelf -lW "$bin" | grep -q 'INTERP'; then
  echo "check-static: $bin has a program interpreter (dynamically linked)" >&2
  exit 1
fi
if readelf -dW "$bin" 2>/dev/null | grep -q 'NEEDED'; then
  echo "check-static: $bin needs shared libraries:" >&2
  readelf -dW "$bin" | grep NEEDED >&2
  exit 1
fi
echo "check-static: $bin is static ($(stat -c %s "$bin") bytes)"
