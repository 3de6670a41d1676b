#!/bin/sh
# Installs every Debian 12 package kiln's build, tests, fuzzers and benches need.
# Idempotent; run as root or through sudo.
# The KVM test host runs on QEMU 10 from bookworm-backports: Debian 12's QEMU 7.2 ignores the
# SVM XSETBV intercept, so L2 guests lose XSAVE (docs/testing.md).
set -eu
PKGS="build-essential musl-tools linux-libc-dev libseccomp-dev libcap-ng-dev libcmocka-dev
libjsmn-dev libhttp-parser-dev liblzma-dev clang libclang-rt-14-dev acpica-tools
linux-image-cloud-amd64 busybox-static cpio e2fsprogs xz-utils zstd lz4
iproute2 procps curl socat util-linux"
BACKPORTS_PKGS="qemu-system-x86 seabios"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# installed PKG [MIN-VERSION]: PKG is installed (and at least MIN-VERSION).
installed() {
	v=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null) || return 1
	case $v in "install ok installed "*) ;; *) return 1 ;; esac
	[ -z "${2:-}" ] || dpkg --compare-versions "${v##* }" ge "$2"
}

missing=""
for p in $PKGS; do
	installed "$p" || missing="$missing $p"
done
bp_missing=""
installed qemu-system-x86 1:10 || bp_missing="qemu-system-x86"
installed seabios 1.16.3 || bp_missing="$bp_missing seabios"

if [ -n "$bp_missing" ]; then
	list=/etc/apt/sources.list.d/kiln-backports.sources
	if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
			'Suites: bookworm-backports' 'Components: main' \
			'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
			$SUDO tee "$list" > /dev/null
	fi
fi
if [ -n "$missing$bp_missing" ]; then
	$SUDO apt-get update -q
fi
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
if [ -n "$bp_missing" ]; then
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
		-t bookworm-backports $BACKPORTS_PKGS
fi
installed qemu-system-x86 1:10 || { echo "setup: QEMU 10 (bookworm-backports) not installed" >&2; exit 1; }
echo "setup: all packages installed ($(qemu-system-x86_64 --version | head -n 1))"
