#!/usr/bin/env bash
# Builds images/out/debian.tar.gz: dynamically linked programs from this
# machine's Debian packages (bash, coreutils, sed, grep, gawk, ...) with the
# shared libraries and the dynamic loader they need, as the packages
# installed them. Small and offline: no debootstrap mirror is needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../out
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{usr/bin,etc,tmp,data}
# Debian's merged /usr: /bin is a link to usr/bin.
ln -s usr/bin "$root/bin"
progs="bash sh ls cat cp mv rm mkdir date sort uniq wc head tail tr cut sed grep awk env echo true false expr seq sleep basename dirname id uname printf test
  ln chmod chown touch mkfifo stat readlink rmdir find xargs tar gzip md5sum diff cmp du sqlite3"
for p in $progs; do
  src=$(type -P "$p") || { echo "missing $p on this machine" >&2; exit 1; }
  real=$(readlink -f "$src")
  mkdir -p "$root$(dirname "$src")"
  cp "$real" "$root$src"
  for lib in $(ldd "$real" 2>/dev/null | grep -o '/[^ ]*' || true); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
# python3 with its standard library (without its own test suite).
# Debian's python3, not whatever else PATH may offer first.
py=$(readlink -f /usr/bin/python3)
cp "$py" "$root/usr/bin/"
ln -sf "$(basename "$py")" "$root/usr/bin/python3"
for lib in $(ldd "$py" | grep -o '/[^ ]*' || true); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
pylib=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
mkdir -p "$root$(dirname "$pylib")"
cp -a "$pylib" "$root$pylib"
rm -rf "$root$pylib/test" "$root$pylib/site-packages" "$root$pylib"/__pycache__ "$root$pylib"/*/__pycache__
# The shared libraries of the stdlib's extension modules (libsqlite3 for
# sqlite3, ...).
for so in "$root$pylib"/lib-dynload/*.so; do
  for lib in $(ldd "$so" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
printf 'root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/tmp:/bin/bash\n' >"$root/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' >"$root/etc/group"
printf 'pear\napple\nfig\napple\n' >"$root/data/fruit"
chmod 1777 "$root/tmp"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf - . | gzip -n >"$out/debian.tar.gz.tmp"
mv "$out/debian.tar.gz.tmp" "$out/debian.tar.gz"
echo "$out/debian.tar.gz"
