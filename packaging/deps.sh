#!/usr/bin/env bash
# Installs what building and testing sandboxd needs on a fresh Debian
# machine (cargo and rustc are expected): gcc and binutils for the test
# programs and the static check, busybox-static for the test image,
# python3 for a test that writes a hostile tar, and the Debian packages
# the Debian test image is made of (images/debian/build.sh). Installs only what is
# missing; runs apt-get update only when something must be installed.
set -euo pipefail
need=()
for pkg in gcc binutils libc6-dev busybox-static python3 tar gzip \
  bash dash coreutils sed grep mawk findutils xz-utils bzip2 diffutils procps ncurses-base \
  perl git make sqlite3 python3.11; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
