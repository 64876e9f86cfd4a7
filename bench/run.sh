#!/usr/bin/env bash
# Benchmarks that print numbers (never run as timed tests):
#   - guest getppid() cost: native, sandboxd on each platform, gVisor runsc --platform=ptrace
#   - /bin/true cold start: sandboxd on each platform
# Usage: bench/run.sh [ITERATIONS]   (needs root; installs runsc if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
OUT=bench/out
mkdir -p "$OUT/rootfs/bin"
gcc -static -O2 -o "$OUT/rootfs/bin/getppid" bench/getppid.c
gcc -static -O2 -x c -o "$OUT/rootfs/bin/true" - <<<'int main(void){return 0;}'
tar -C "$OUT/rootfs" -czf "$OUT/bench.tar.gz" .
BIN=${SANDBOXD:-target/x86_64-unknown-linux-gnu/release/sandboxd}
[ -x "$BIN" ] || cargo build --release
pod() { # pod NAME CMD...
  local name=$1; shift
  local cmd; cmd=$(printf '"%s",' "$@"); cmd="[${cmd%,}]"
  echo "{\"containers\":{\"b\":{\"image\":\"bench.tar.gz\",\"command\":$cmd}}}" >"$OUT/$name.json"
  echo "$OUT/$name.json"
}
echo "== guest getppid() cost ($N calls)"
printf '%-28s' "native:"; "$OUT/rootfs/bin/getppid" "$N"
for p in kvm ptrace; do
  printf '%-28s' "sandboxd --platform $p:"
  "$BIN" run --platform "$p" "$(pod getppid /bin/getppid "$N")" || echo "(failed)"
done
if ! command -v runsc >/dev/null; then
  apt-get install -y runsc >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y runsc >/dev/null) || true
fi
if command -v runsc >/dev/null; then
  printf '%-28s' "runsc --platform=ptrace:"
  (cd "$OUT/rootfs" && runsc --rootless=false --network=none --platform=ptrace do ./bin/getppid "$N" 2>/dev/null) || echo "(runsc failed)"
fi
echo "== /bin/true cold start (mean of 10 runs)"
for p in kvm ptrace; do
  f=$(pod true /bin/true)
  start=$(date +%s%N)
  for _ in $(seq 10); do "$BIN" run --platform "$p" "$f" >/dev/null; done
  end=$(date +%s%N)
  printf '%-28s %d ms\n' "sandboxd --platform $p:" $(( (end - start) / 10000000 ))
done
