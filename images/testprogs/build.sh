#!/usr/bin/env bash
# Builds images/out/testprogs.tar.gz: static test programs (in /bin, beside
# busybox so /bin/sh exists) and data files under /data. Each program prints
# deterministic output so a native run and a sandboxed run can be compared.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../out
[ -f "$out/busybox.tar.gz" ] || "$here/../busybox/build.sh" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"
tar -xzf "$out/busybox.tar.gz" -C "$root"
for src in "$here"/*.c; do
  name=$(basename "$src" .c)
  gcc -static -O2 -Wall -pthread -o "$root/bin/$name" "$src"
done
gcc -static-pie -O2 -o "$root/bin/hello-pie" "$here/hello.c"
mkdir -p "$root/data/dir"
printf 'hello, world\n' >"$root/data/hello.txt"
touch "$root/data/dir/a" "$root/data/dir/b" "$root/data/dir/c"
ln -sf hello.txt "$root/data/link"
printf 'secret\n' >"$root/data/secret"
chmod 600 "$root/data/secret"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf - . | gzip -n >"$out/testprogs.tar.gz.tmp"
mv "$out/testprogs.tar.gz.tmp" "$out/testprogs.tar.gz"
echo "$out/testprogs.tar.gz"
