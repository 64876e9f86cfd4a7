#!/usr/bin/env bash
# Benchmarks that print numbers (never run as timed tests):
#   - guest getppid() cost: native, sandboxd on each platform, gVisor runsc --platform=ptrace
#   - guest clock_gettime() cost through libc (the vDSO): native, sandboxd on each platform
#   - fork+exec+wait of /bin/true inside the guest: native, each platform
#   - /bin/true cold start: sandboxd on each platform
#   - files: reading a 64 MiB image file, stat of one file in a loop,
#     creating and deleting 10,000 files (in /tmp: the sandbox's tmpfs,
#     the host's /tmp natively): native and each platform
# Usage: bench/run.sh [ITERATIONS]   (needs root; installs runsc if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
OUT=bench/out
mkdir -p "$OUT/rootfs/bin"
gcc -static -O2 -o "$OUT/rootfs/bin/getppid" bench/getppid.c
gcc -static -O2 -o "$OUT/rootfs/bin/clock_gettime" bench/clock_gettime.c
gcc -static -O2 -o "$OUT/rootfs/bin/forkexec" bench/forkexec.c
gcc -static -O2 -o "$OUT/rootfs/bin/files" bench/files.c
mkdir -p "$OUT/rootfs/data"
[ -f "$OUT/rootfs/data/64m" ] || head -c 64M /dev/urandom >"$OUT/rootfs/data/64m"
gcc -static -O2 -x c -o "$OUT/rootfs/bin/true" - <<<'int main(void){return 0;}'
tar -C "$OUT/rootfs" -czf "$OUT/bench.tar.gz" .
BIN=${SANDBOXD:-target/x86_64-unknown-linux-gnu/release/sandboxd}
[ -n "${SANDBOXD:-}" ] || cargo build --release --quiet
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
echo "== guest clock_gettime ns ($((N * 10)) calls)"
printf '%-28s' "native:"; "$OUT/rootfs/bin/clock_gettime" $((N * 10))
for p in kvm ptrace; do
  printf '%-28s' "sandboxd --platform $p:"
  "$BIN" run --platform "$p" "$(pod clock_gettime /bin/clock_gettime $((N * 10)))" || echo "(failed)"
done
echo "== fork+exec+wait of /bin/true, per iteration"
printf '%-28s' "native:"; (cd "$OUT/rootfs" && ./bin/forkexec 200 "$PWD/bin/true")
for p in kvm ptrace; do
  printf '%-28s' "sandboxd --platform $p:"
  "$BIN" run --platform "$p" "$(pod forkexec /bin/forkexec 200 /bin/true)" || echo "(failed)"
done
median_ms() { # median_ms CMD...: median wall time of 20 runs, in ms
  local t=()
  for _ in $(seq 20); do
    local a b
    a=$(date +%s%N); "$@" >/dev/null 2>&1; b=$(date +%s%N)
    t+=($(( (b - a) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{v[NR]=$1} END {printf "%.2f ms\n", (v[10]+v[11])/2000}'
}
echo "== /bin/true wall time (median of 20 runs, store warm)"
bb=images/out/busybox.tar.gz
[ -f "$bb" ] || images/busybox/build.sh >/dev/null
cp "$bb" "$OUT/busybox.tar.gz"
echo '{"containers":{"t":{"image":"busybox.tar.gz","command":["/bin/true"]}}}' >"$OUT/true.json"
"$BIN" run "$OUT/true.json" >/dev/null 2>&1 || true
printf '%-28s' "native:"; median_ms "$OUT/rootfs/bin/true"
for p in kvm ptrace; do
  printf '%-28s' "sandboxd --platform $p:"; median_ms "$BIN" run --platform "$p" "$OUT/true.json"
done
printf '%-28s' "sandboxd (auto):"; median_ms "$BIN" run "$OUT/true.json"
echo "== files: read a 64 MiB image file (1 MiB reads; first, then again)"
printf '%-28s' "native:"; (cd "$OUT/rootfs" && ./bin/files read data/64m)
for p in kvm ptrace; do
  printf '%-28s' "sandboxd --platform $p:"
  "$BIN" run --platform "$p" "$(pod readfile /bin/files read /data/64m)" || echo "(failed)"
done
echo "== files: stat() of one image file ($N calls)"
printf '%-28s' "native:"; (cd "$OUT/rootfs" && ./bin/files stat bin/true "$N")
for p in kvm ptrace; do
  printf '%-28s' "sandboxd --platform $p:"
  "$BIN" run --platform "$p" "$(pod statloop /bin/files stat /bin/true "$N")" || echo "(failed)"
done
echo "== files: create then delete 10000 files in /tmp"
tmp=$(mktemp -d)
printf '%-28s' "native:"; "$OUT/rootfs/bin/files" create "$tmp" 10000; rmdir "$tmp"
for p in kvm ptrace; do
  printf '%-28s' "sandboxd --platform $p:"
  "$BIN" run --platform "$p" "$(pod createfiles /bin/files create /tmp 10000)" || echo "(failed)"
done

echo "== pod lifecycle"
bench/lifecycle.sh
