#!/bin/sh
# vs-qemu.sh: runs the kiln vs QEMU 10 microvm benches (bench/net-vs-qemu.sh,
# bench/blk-vs-qemu.sh, bench/boot.sh) where Linux guests boot: inside the KVM test host
# (scripts/in-l1.sh vs-qemu) unless this host has real KVM (scripts/kvm-kind.sh), in which
# case they run here (as root). Figures only, no thresholds. From `make bench`, or:
#
#   BUILD=build bench/vs-qemu.sh          (after make and make -C bench ../build/bench/vsq)
#
# First gathers the inputs in $BUILD/bench/vs-qemu-in/: kiln, bench/vsq, the newest
# /boot/vmlinuz-*-cloud-amd64 as vmlinuz (the guest kernel, also L1's), the guest initramfs
# (tests/guest/build-initramfs.sh with bench/vsq-guest-init and virtio_mmio, virtio_net,
# virtio_blk), mktap (tests/e2e/fixtures/net.sh), QEMU's microvm firmware and option ROM
# in qemu/, and the minimal guest kernel as min-vmlinuz when `make guest-kernel` built it.
# Environment: BENCH_VSQ="net blk boot" (which benches), BENCH_VSQ_RUNS (10; per bench:
# BENCH_NET_RUNS, BENCH_BLK_RUNS, BENCH_BOOT_RUNS), BENCH_NET_MIB (64), BENCH_BLK_MIB
# (256), BENCH_QEMU_ARGS (more QEMU arguments), L1_TIMEOUT (default 5400 s), L1_SILENT_SECS
# (600: a test host with no console output that long is stopped), E2E_VERBOSE=1
# (L1's console on stderr as it runs), BENCH_KILN_OTHER="NAME=PATH[,Async] ..." (more kiln
# binaries, e.g. before=/tmp/kiln-before, each run alongside kiln and QEMU in every bench;
# ",Async": its drive with io_engine Async), BENCH_VSQ_ORDER="qemu kiln ..." (the VMMs'
# order in the first run, default kiln, qemu, then BENCH_KILN_OTHER's), BENCH_RECORDS=1
# (the benches also print every run's figures as they measure them, "record TEST VMM RUN
# KEY VALUE": bench/vs-qemu-summary.sh rebuilds the tables from them, over several sessions
# or one the test host cut short), BENCH_NET_ONLY=h2g|bulk|nc|h2g-nc and BENCH_NET_PIN=1|0
# (bench/net-vs-qemu.sh).
set -eu
root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir"
BUILD=${BUILD:-build}
in=$BUILD/bench/vs-qemu-in

die() {
	echo "vs-qemu: $*" >&2
	exit 1
}

kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' 2> /dev/null |
	sed 's/^vmlinuz-//' | sort -V | tail -n 1)
[ -n "$kver" ] || die "no /boot/vmlinuz-*-cloud-amd64 (run scripts/setup.sh)"
[ -x "$BUILD/kiln" ] || die "$BUILD/kiln missing (run make)"
[ -x "$BUILD/bench/vsq" ] || die "$BUILD/bench/vsq missing (make -C bench)"
command -v qemu-system-x86_64 > /dev/null || die "qemu-system-x86_64 not found (scripts/setup.sh)"
mkdir -p "$in/qemu"
cp "$BUILD/kiln" "$BUILD/bench/vsq" "$in/"
rm -f "$in"/kiln-* "$in/kilns"
: > "$in/kilns"
for other in ${BENCH_KILN_OTHER:-}; do
	name=${other%%=*} path=${other#*=} engine=Sync
	case $path in *,Async) path=${path%,Async} engine=Async ;; esac
	case $name in
	kiln | qemu | '' | *[!a-z0-9]*) die "BENCH_KILN_OTHER: '$name': a name of a-z0-9, not kiln or qemu" ;;
	esac
	[ -x "$path" ] || die "BENCH_KILN_OTHER: $name: $path is not an executable"
	cp "$path" "$in/kiln-$name"
	echo "$name $engine" >> "$in/kilns"
done
# The first run's order of the VMMs (vmm_order rotates it): each VMM always follows the same
# one, so which follows QEMU is a choice to make.
rm -f "$in/order"
if [ -n "${BENCH_VSQ_ORDER:-}" ]; then
	want=$({ echo kiln && echo qemu && cut -d' ' -f1 "$in/kilns"; } | sort | tr '\n' ' ')
	# shellcheck disable=SC2086 # its words, one per line
	got=$(printf '%s\n' $BENCH_VSQ_ORDER | sort | tr '\n' ' ')
	[ "$got" = "$want" ] || die "BENCH_VSQ_ORDER: '$BENCH_VSQ_ORDER' is not an order of: $want"
	echo $BENCH_VSQ_ORDER > "$in/order"
fi
cmp -s "/boot/vmlinuz-$kver" "$in/vmlinuz" || cp "/boot/vmlinuz-$kver" "$in/vmlinuz"
tests/guest/build-initramfs.sh -k "$kver" -i bench/vsq-guest-init -b "$BUILD/bench/vsq" \
	-o "$in/vsq-initramfs.cpio.gz" virtio_mmio virtio_net virtio_blk >&2
fix=$(mktemp -d "${TMPDIR:-/tmp}/kiln-vsq-fix.XXXXXX")
trap 'rm -rf "$fix"' EXIT
mkdir -p "$fix/l1"
FIX=$fix sh tests/e2e/fixtures/net.sh >&2 || die "cannot build mktap (tests/e2e/fixtures/net.sh)"
cp "$fix/l1/mktap" "$in/mktap"
rm -rf "$fix"
for f in /usr/share/seabios/bios-microvm.bin /usr/share/qemu/linuxboot_dma.bin; do
	[ -r "$f" ] || die "$f missing (QEMU 10 and seabios, scripts/setup.sh)"
	cp "$f" "$in/qemu/"
done
rm -f "$in/min-vmlinuz"
[ ! -s "$BUILD/guest-kernel/bzImage" ] || cp "$BUILD/guest-kernel/bzImage" "$in/min-vmlinuz"

if [ "$(scripts/kvm-kind.sh)" = real ]; then
	[ "$(id -u)" = 0 ] || die "the benches need root here (TAPs, debugfs)"
	export VSQ_IN="$root_dir/$in"
	exec sh bench/vs-qemu-run.sh
fi
L1_TIMEOUT=${L1_TIMEOUT:-5400}
# A session prints at least a line per VM, and its watchdog stops a VM after 300 s
# (VSQ_VM_TIMEOUT): a test host silent for twice that has hung (scripts/l1-boot.sh).
L1_SILENT_SECS=${L1_SILENT_SECS:-600}
export L1_TIMEOUT L1_SILENT_SECS
exec scripts/in-l1.sh vs-qemu
