#!/usr/bin/env bash
# Pod lifecycle figures (issue 6), per platform, release build:
#   - time from `sandboxd run -d` to the pod's first line of output
#   - `exec` round trip of /bin/true (median of 20)
#   - resident memory of the sandbox and gofer processes of an idle pod
# Usage: bench/lifecycle.sh   (needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
BIN=${SANDBOXD:-target/x86_64-unknown-linux-gnu/release/sandboxd}
[ -n "${SANDBOXD:-}" ] || cargo build --release --quiet
[ -f images/out/busybox.tar.gz ] || images/busybox/build.sh >/dev/null
mkdir -p "$OUT"
root=$(mktemp -d)
trap 'for id in $("$BIN" list --root "$root" -q 2>/dev/null); do "$BIN" delete --root "$root" --force "$id" >/dev/null 2>&1 || true; done; rm -rf "$root"' EXIT
now_ms() { date +%s%3N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "?"; }
for p in kvm ptrace; do
  cat >"$OUT/idle-$p.json" <<JSON
{"name": "idle-$p", "platform": "$p", "containers": {"app": {"image": "$PWD/images/out/busybox.tar.gz",
  "command": ["/bin/sh", "-c", "echo ready; exec sleep 600"]}}}
JSON
  t0=$(now_ms)
  id=$("$BIN" run --root "$root" -d "$OUT/idle-$p.json")
  while ! grep -q ready "$root/$id/log" 2>/dev/null; do sleep 0.001; done
  t1=$(now_ms)
  printf '%-8s run -d to first line: %d ms\n' "$p" $((t1 - t0))
  ts=()
  for _ in $(seq 20); do
    a=$(date +%s%N); "$BIN" exec --root "$root" "$id" -- /bin/true; b=$(date +%s%N)
    ts+=($(( (b - a) / 1000 )))
  done
  med=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n 10p)
  printf '%-8s exec /bin/true round trip: %s.%03d ms (median of 20)\n' "$p" $((med / 1000)) $((med % 1000))
  sleep 1
  sandbox=$(python3 -c "import json,sys; print(json.load(open('$root/$id/meta.json'))['sandbox']['pid'])")
  gofer=$(python3 -c "import json,sys; print(json.load(open('$root/$id/meta.json'))['gofers'][0]['pid'])")
  printf '%-8s idle pod RSS: sandbox %s kB, gofer %s kB\n' "$p" "$(rss_kb "$sandbox")" "$(rss_kb "$gofer")"
  "$BIN" delete --root "$root" --force "$id" >/dev/null
done
