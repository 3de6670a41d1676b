#!/bin/sh
# Installs every Debian 12 package kiln's build, tests, fuzzers and benches need.
# Idempotent; run as root or through sudo.
set -eu
PKGS="build-essential musl-tools linux-libc-dev libseccomp-dev libcap-ng-dev libcmocka-dev
libjsmn-dev clang libclang-rt-14-dev acpica-tools
qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio e2fsprogs xz-utils zstd lz4
iproute2 procps"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	$SUDO apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
echo "setup: all packages installed"
