#!/bin/sh
# build-l1.sh: builds the initramfs of the L1 KVM test host: build/e2e/L1.cpio.gz.
#
#   tests/e2e/build-l1.sh [-k KILN] [-v KVER] [-o OUT] [-x FILE]... [-d DIR] [-b BIN]...
#                         [-l BIN]... [-n]
#
#   -x FILE  also put FILE into /e2e;  -d DIR  also copy the tree DIR into /e2e;
#   -b BIN   also the host program BIN with its shared objects, at their paths (e.g. QEMU for
#            the vs-qemu bench stage; kept out of the e2e image, where it would weigh ~20 MB)
#   -l BIN   also the shared objects BIN loads, not BIN itself (the unit tests that need KVM:
#            the host stage copies them itself)
#   -n       no guest fixtures (vmlinux, guest initramfs): for the host-test and bench stages
#
# Contents: busybox-static, bash, ip and socat with their libraries (host test scripts),
# tests/e2e/l1/init as /init and the stage scripts beside it, irqbypass/kvm/kvm-amd (plus tun,
# loop, and virtio-pci/virtio-blk for the disks scripts/l1-boot.sh -D attaches) from
# /lib/modules/KVER (.ko, .ko.xz, .ko.zst and .ko.gz are handled; decompressed here), and
# under /e2e: the kiln binary (static, it runs in L1), the guest kernels (bzImage =
# /boot/vmlinuz-KVER, vmlinux extracted from it), the guest initramfs, the runner, lib.sh,
# l1-classify.sh, tests/e2e/cases/ and any extra file given with -x. The fixtures are (re)built with
# scripts/extract-vmlinux.sh and tests/guest/build-initramfs.sh; the archive is rebuilt
# only when an input changed. KILN defaults to build/kiln, KVER to the newest installed
# *-cloud-amd64 kernel, which is also the L1 kernel.
set -eu

die() {
	echo "build-l1: $*" >&2
	exit 1
}

# abspath PATH: PATH made absolute against the caller's directory.
abspath() {
	case $1 in
	/*) echo "$1" ;;
	*) echo "$caller_dir/$1" ;;
	esac
}

caller_dir=$(pwd)
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root_dir"
kiln=build/kiln
out=build/e2e/L1.cpio.gz
kver=
extras=
trees=
guest=yes
extra_bins=
libs_of=
while getopts k:v:o:x:d:b:l:n opt; do
	case $opt in
	k) kiln=$(abspath "$OPTARG") ;;
	v) kver=$OPTARG ;;
	o) out=$(abspath "$OPTARG") ;;
	x)
		[ -f "$(abspath "$OPTARG")" ] || die "-x $OPTARG: no such file"
		extras="$extras $(abspath "$OPTARG")"
		;;
	d)
		[ -d "$(abspath "$OPTARG")" ] || die "-d $OPTARG: no such directory"
		trees="$trees $(abspath "$OPTARG")"
		;;
	b)
		b=$(command -v "$OPTARG") || die "-b $OPTARG: not found"
		extra_bins="$extra_bins $b"
		;;
	l)
		[ -x "$(abspath "$OPTARG")" ] || die "-l $OPTARG: no such program"
		libs_of="$libs_of $(abspath "$OPTARG")"
		;;
	n) guest=no ;;
	*) die "usage: $0 [-k KILN] [-v KVER] [-o OUT] [-x FILE]... [-d DIR] [-b BIN]... [-l BIN]... [-n]" ;;
	esac
done
if [ -z "$kver" ]; then
	kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' |
		sed 's/^vmlinuz-//' | sort -V | tail -n 1)
	[ -n "$kver" ] || die "no /boot/vmlinuz-*-cloud-amd64 (install linux-image-cloud-amd64)"
fi
moddir=/lib/modules/$kver
bzimage=/boot/vmlinuz-$kver
[ -r "$bzimage" ] || die "$bzimage not readable"
[ -d "$moddir" ] || die "$moddir missing (install linux-image-$kver)"
[ -x "$kiln" ] || die "kiln binary $kiln not found (run make, or set KILN)"
ldd "$kiln" 2>&1 | grep -q 'not a dynamic' || die "$kiln is not a static binary"
busybox=$(command -v busybox) || die "busybox not found (install busybox-static)"
ldd "$busybox" 2>&1 | grep -q 'not a dynamic' || die "$busybox is not static (install busybox-static)"

fixtures=$(dirname "$out")
mkdir -p "$fixtures"
guest_files=
if [ "$guest" = yes ]; then
	scripts/extract-vmlinux.sh "$bzimage" "$fixtures/vmlinux"
	# run.sh builds it first with the fixtures' modules and programs: never rebuild it without.
	[ -s "$fixtures/guest-initramfs.cpio.gz" ] ||
		tests/guest/build-initramfs.sh -o "$fixtures/guest-initramfs.cpio.gz"
	guest_files="$bzimage $fixtures/vmlinux $fixtures/guest-initramfs.cpio.gz"
fi
# Host programs the test scripts need beyond busybox: bash (the host tests), and iproute2's
# ip (TAPs), socat (vsock), script (a terminal) for the seccomp cases and curl (the API
# cases); each with the shared objects it loads, at their own paths (ldd prints
# "name => path (addr)" and the loader as "path (addr)").
# The stages put /usr/sbin:/usr/bin before busybox's /bin.
host_bins=
for p in bash ip socat script curl; do
	b=$(command -v "$p") || die "$p not found (run scripts/setup.sh)"
	host_bins="$host_bins $b"
done
host_bins="$host_bins$extra_bins"
# shellcheck disable=SC2086 # a list of paths without spaces
host_libs=$(for b in $host_bins $libs_of; do ldd "$b"; done |
	awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)

# virtio_pci and virtio_blk: disks given to L1 with scripts/l1-boot.sh -D.
modules="kernel/virt/lib/irqbypass kernel/arch/x86/kvm/kvm kernel/arch/x86/kvm/kvm-amd
kernel/drivers/net/tun kernel/drivers/block/loop kernel/drivers/virtio/virtio_ring
kernel/drivers/virtio/virtio kernel/drivers/virtio/virtio_pci_legacy_dev
kernel/drivers/virtio/virtio_pci_modern_dev kernel/drivers/virtio/virtio_pci
kernel/drivers/block/virtio_blk"
# mod_path REL: the installed file of module REL (without .ko suffix), any compression.
mod_path() {
	for ext in .ko .ko.xz .ko.zst .ko.gz; do
		if [ -e "$moddir/$1$ext" ]; then
			echo "$moddir/$1$ext"
			return 0
		fi
	done
	return 1
}

for m in $modules; do
	mod_path "$m" > /dev/null || die "module $m not found in $moddir"
done
inputs=$(
	{
		echo "kver=$kver"
		# shellcheck disable=SC2086 # a list of paths without spaces
		# shellcheck disable=SC2086 # lists of paths without spaces
		sha256sum "$busybox" "$kiln" $guest_files tests/e2e/l1/* tests/e2e/run-cases.sh \
			tests/e2e/lib.sh tests/e2e/l1-classify.sh $host_bins $host_libs $extras
		# shellcheck disable=SC2086 # a list of paths without spaces
		find tests/e2e/cases $trees -type f | LC_ALL=C sort | xargs sha256sum
		for m in $modules; do
			sha256sum "$(mod_path "$m")"
		done
	} | sha256sum | cut -d' ' -f1
)
if [ -s "$out" ] && [ "$(cat "$out.inputs" 2> /dev/null)" = "$inputs" ]; then
	exit 0
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/kiln-l1-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/proc" "$root/sys" \
	"$root/dev" "$root/tmp" "$root/run" "$root/etc" "$root/lib/modules" "$root/e2e/cases"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
install -m 755 tests/e2e/l1/init "$root/init"
for f in tests/e2e/l1/*.sh; do
	install -m 755 "$f" "$root/e2e/"
done
for f in $host_bins $host_libs; do
	mkdir -p "$root$(dirname "$f")"
	cp -L "$f" "$root$f"
done
[ -e "$root/bin/bash" ] || ln -s "$(command -v bash)" "$root/bin/bash"
: > "$root/etc/modules"
for m in $modules; do
	p=$(mod_path "$m")
	name=$(basename "$m")
	case $p in
	*.ko) cp "$p" "$root/lib/modules/$name.ko" ;;
	*.ko.xz) xz -dc "$p" > "$root/lib/modules/$name.ko" ;;
	*.ko.zst) zstd -dcq "$p" > "$root/lib/modules/$name.ko" ;;
	*.ko.gz) gzip -dc "$p" > "$root/lib/modules/$name.ko" ;;
	esac
	echo "$name" >> "$root/etc/modules"
done
install -m 755 "$kiln" "$root/e2e/kiln"
if [ "$guest" = yes ]; then
	cp "$bzimage" "$root/e2e/bzImage"
	cp "$fixtures/vmlinux" "$fixtures/guest-initramfs.cpio.gz" "$root/e2e/"
fi
install -m 755 tests/e2e/run-cases.sh "$root/e2e/run-cases.sh"
cp tests/e2e/lib.sh "$root/e2e/lib.sh"
cp tests/e2e/l1-classify.sh "$root/e2e/l1-classify.sh"
cp tests/e2e/cases/* "$root/e2e/cases/"
for f in $extras; do
	cp -p "$f" "$root/e2e/"
done
for d in $trees; do
	cp -a "$d/." "$root/e2e/"
done
if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$root/dev/console" c 5 1
	mknod -m 666 "$root/dev/null" c 1 3
fi

find "$root" -exec touch -h -d @0 {} +
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
# gzip -1: the L1 kernel inflates this under TCG; level 1 costs little there and builds fast.
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) |
	gzip -n -1 > "$out_abs.tmp"
mv "$out_abs.tmp" "$out_abs"
echo "$inputs" > "$out_abs.inputs"
echo "build-l1: $out ($(du -h "$out" | cut -f1), kernel $kver, kiln $kiln)"
