#!/usr/bin/env bash
# Builds images/out/busybox.tar.gz: a rootfs with Debian's static busybox,
# a symlink per applet, and a minimal /etc. Reproducible for a given
# busybox-static version (sorted entries, fixed mtimes and owners, gzip -n).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../out
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download busybox-static >/dev/null 2>&1; then
  apt-get update >/dev/null
  apt-get download busybox-static >/dev/null
fi
dpkg-deb -x busybox-static_*.deb pkg
root=$work/root
mkdir -p "$root"/{bin,etc,tmp,root,dev,proc,home/user,data}
cp pkg/bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cat >"$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
PW
cat >"$root/etc/group" <<'GR'
root:x:0:
user:x:1000:
GR
printf 'b\na\nc\n' >"$root/data/letters"
chmod 1777 "$root/tmp"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf - . | gzip -n >"$out/busybox.tar.gz.tmp"
mv "$out/busybox.tar.gz.tmp" "$out/busybox.tar.gz"
echo "$out/busybox.tar.gz"
