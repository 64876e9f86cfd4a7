#!/usr/bin/env bash
# Builds images/out/debian.tar.gz: a small Debian root file system made of
# this machine's installed Debian packages (the files `dpkg -L` lists, as the
# packages installed them, without documentation), plus every shared library
# their programs need. It holds bash and coreutils, the text tools, python3
# with its standard library (sqlite3 included), perl, git, make and a C
# toolchain (gcc, binutils, libc headers). Offline: no mirror is needed;
# packages missing on the machine are installed first (packaging/deps.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../out
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/usr/{bin,sbin,lib,lib64}
# Debian's merged /usr: the top-level directories are links into usr.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done

pkgs="base-files bash dash coreutils sed grep mawk findutils tar gzip xz-utils bzip2
  diffutils procps ncurses-base perl perl-base perl-modules-5.36 libperl5.36 git make
  gcc gcc-12 cpp-12 binutils binutils-x86-64-linux-gnu libgcc-12-dev libc6
  libc6-dev linux-libc-dev libcrypt-dev sqlite3 libsqlite3-0 python3
  python3-minimal python3.11 python3.11-minimal libpython3.11-stdlib
  libpython3.11-minimal"
# Every file of the packages (directories too, so modes come along), with
# the merged-/usr aliases folded into /usr and documentation left out.
# shellcheck disable=SC2086
dpkg -L $pkgs | grep '^/' |
  sed -E -e 's#^/(bin|sbin|lib|lib64)(/|$)#/usr/\1\2#' |
  grep -Ev '^/usr/share/(doc|man|info|locale|lintian|bash-completion)(/|$)' |
  grep -Ev '^/\.?$|^/usr/(bin|sbin|lib|lib64)$' |
  sed 's#^/##' | sort -u >"$work/files"
tar -C / --no-recursion -cf - -T "$work/files" | tar -C "$root" -xf -
# The links Debian's postinst scripts (alternatives, diversions) would make.
ln -sf dash "$root/usr/bin/sh"
ln -sf mawk "$root/usr/bin/awk"
ln -sf gcc-12 "$root/usr/bin/cc"
# Shared libraries the programs (and python's extension modules) need that
# no listed package brings.
find "$root/usr" -type f \( -perm -u+x -o -name '*.so*' \) -print0 |
  { xargs -0 ldd 2>/dev/null || true; } | grep -v ':$' | grep -o '/[^ ]*\.so[^ ]*' | sort -u |
  while read -r lib; do
    real=/usr${lib#/usr}
    [ -e "$root$real" ] || { mkdir -p "$root$(dirname "$real")"; cp -L "$lib" "$root$real"; }
  done
# Not needed to compile and link dynamically, and large: the LTO back end,
# static C libraries (libc_nonshared.a stays: every link needs it).
rm -f "$root"/usr/bin/*lto-dump* "$root"/usr/lib/gcc/x86_64-linux-gnu/*/lto1
find "$root/usr/lib/x86_64-linux-gnu" -maxdepth 1 -name '*.a' ! -name libc_nonshared.a -delete
pylib=$root/usr/lib/python3.11
rm -rf "$pylib/test" "$pylib"/__pycache__ "$pylib"/*/__pycache__
printf 'root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/tmp:/bin/bash\n' >"$root/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' >"$root/etc/group"
mkdir -p "$root"/{tmp,data,root,dev,proc}
printf 'pear\napple\nfig\napple\n' >"$root/data/fruit"
chmod 1777 "$root/tmp"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf - . | gzip -n >"$out/debian.tar.gz.tmp"
mv "$out/debian.tar.gz.tmp" "$out/debian.tar.gz"
echo "$out/debian.tar.gz"
