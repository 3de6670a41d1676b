#!/bin/sh
# in-l1.sh: runs a test stage inside the L1 KVM test host, for hosts without a usable /dev/kvm.
#
#   scripts/in-l1.sh STAGE
#
# Stages (tests/e2e/l1/stage-STAGE.sh runs in L1 on a copy of what it needs):
#   host   tests/host/run.sh, tests/host/seccomp.sh, tests/host/api.sh, the jailer's
#          kiln_in_jail case and the unit test binaries tests/unit/needs-kvm.txt names
#          (from $HOST_DIR/tests, staged as unit-kvm/)
#   bench  bench/startup and bench/snapshot (kiln on the tiny guest)
#   vs-qemu  bench/net-vs-qemu.sh, blk-vs-qemu.sh and boot.sh: kiln vs QEMU microvm (the
#          image also holds qemu-system-x86_64; bench/vs-qemu.sh gathers $BUILD/bench/vs-qemu-in)
# Prints the stage's stdout on stdout and its stderr on stderr as they were in L1, and exits
# with the stage's exit code; 1 with the console's last lines when the test host did not
# finish the stage (the host and bench stages run once more when the test host crashed).
# The build must be done (make all build/kiln-testhooks).
# Environment: BUILD (default build), HOST_DIR (default $BUILD/host: the unit tests' build,
# $BUILD/san for SAN=1), L1_TIMEOUT (default 900 s), E2E_VERBOSE=1 (console
# copied to stderr as it runs); BENCH_* variables reach the stage in /e2e/stage.env.
set -u
root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir" || exit 1
stage=${1:?usage: in-l1.sh host|bench|vs-qemu}
BUILD=${BUILD:-build}
HOST_DIR=${HOST_DIR:-$BUILD/host}
out=$BUILD/l1
tree=$out/$stage-tree
log=$out/$stage-console.log

die() {
	echo "in-l1: $*" >&2
	exit 1
}

# stage_files: the repository files (relative paths) the stage runs in L1.
stage_files() {
	case $stage in
	host)
		echo tests/host/run.sh tests/host/seccomp.sh tests/host/api.sh tests/jailer/run.sh \
			"$BUILD/kiln" "$BUILD/kiln-testhooks" "$BUILD/kiln-jailer" "$BUILD/tiny-guest.elf" \
			"$BUILD/jailer-reaper" "$BUILD/kiln-uffd-handler" "$BUILD/kiln-rebase-snap"
		;;
	bench)
		echo "$BUILD/kiln" "$BUILD/tiny-guest.elf" "$BUILD/bench/startup" "$BUILD/bench/floor" \
			"$BUILD/bench/snapshot"
		;;
	vs-qemu)
		echo bench/vs-qemu.inc bench/vs-qemu-table.inc bench/vs-qemu-run.sh bench/net-vs-qemu.sh \
			bench/blk-vs-qemu.sh bench/boot.sh tests/e2e/l1-classify.sh
		find "$BUILD/bench/vs-qemu-in" -type f
		;;
	*) die "unknown stage '$stage' (host, bench, vs-qemu)" ;;
	esac
}

mkdir -p "$out"
rm -rf "$tree"
mkdir -p "$tree/repo"
for f in $(stage_files); do
	[ -e "$f" ] || die "$f missing (run make first)"
	mkdir -p "$tree/repo/$(dirname "$f")"
	cp -p "$f" "$tree/repo/$f"
done
[ "$BUILD" = build ] || ln -s "$BUILD" "$tree/repo/build"
# kvm_units: the staged unit test binaries that need KVM (host stage), whose shared objects
# the image gets too.
kvm_units=
if [ "$stage" = host ]; then
	mkdir -p "$tree/repo/unit-kvm"
	names=$(grep -v '^#' tests/unit/needs-kvm.txt)
	for name in $names; do
		[ -x "$HOST_DIR/tests/$name" ] || die "$HOST_DIR/tests/$name missing (run make unit first)"
		cp -p "$HOST_DIR/tests/$name" "$tree/repo/unit-kvm/"
		kvm_units="$kvm_units -l $tree/repo/unit-kvm/$name"
	done
fi
env | sed -n "s/^\(BENCH_[A-Za-z0-9_]*\)=\([^']*\)\$/export \1='\2'/p" > "$tree/stage.env"
bins=
[ "$stage" != vs-qemu ] || bins="-b qemu-system-x86_64"
kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' -printf '%f\n' 2> /dev/null |
	sed 's/^vmlinuz-//' | sort -V | tail -n 1)
[ -n "$kver" ] || die "no /boot/vmlinuz-*-cloud-amd64 (run scripts/setup.sh)"
# shellcheck disable=SC2086 # options and their arguments, or nothing
tests/e2e/build-l1.sh -n -k "$BUILD/kiln" -v "$kver" -o "$out/L1-$stage.cpio.gz" -d "$tree" $bins \
	$kvm_units >&2 ||
	die "cannot build the L1 image"

echo "in-l1: running the $stage stage in the KVM test host (QEMU $(qemu-system-x86_64 --version |
	sed -n 's/^QEMU emulator version \([^ ]*\).*/\1/p') TCG, nested SVM)" >&2
# The benches run with L1's huge pages as its kernel has them by default, as a host would
# (QEMU asks for them; both VMMs' RAM is 2 MiB-aligned), the test stages without
# (l1-boot.sh).
case $stage in bench | vs-qemu) export L1_THP="${L1_THP:-always}" ;; esac
# The test host's own crash (its kernel's panic, or it stalled: tests/e2e/l1-classify.sh)
# runs a short stage once more in a new L1, as tests/e2e/run.sh reruns the cases it cut
# short; the vs-qemu benches, which take an hour, are not run again.
# shellcheck source=tests/e2e/l1-classify.sh
. tests/e2e/l1-classify.sh
retries=1
[ "$stage" != vs-qemu ] || retries=0
attempt=0
while :; do
	scripts/l1-boot.sh -t "${L1_TIMEOUT:-900}" -l "$log" "$out/L1-$stage.cpio.gz" "l1.stage=$stage" &
	qpid=$!
	[ "${E2E_VERBOSE:-0}" != 1 ] || tail -f "$log" --pid="$qpid" >&2 &
	wait "$qpid"
	qrc=$?
	clean=$(tr -d '\r' < "$log")
	rc=$(printf '%s\n' "$clean" | sed -n 's/^.*E2E-STAGE-EXIT \([0-9]*\).*/\1/p' | tail -n 1)
	crash=$(l1_panic "$log")
	[ -z "$rc" ] && [ -n "$crash" ] && [ "$qrc" != 137 ] && [ "$attempt" -lt "$retries" ] || break
	cp "$log" "$log.$attempt"
	attempt=$((attempt + 1))
	echo "in-l1: the test host crashed ($crash; console $log.$((attempt - 1))): running the $stage stage again in a new L1" >&2
done
printf '%s\n' "$clean" | sed -n 's/^.*E2E-OUT //p'
printf '%s\n' "$clean" | sed -n 's/^.*E2E-ERR //p' >&2
if [ -z "$rc" ]; then
	echo "in-l1: the test host did not finish the $stage stage (QEMU exit $qrc${crash:+: $crash}); console $log:" >&2
	printf '%s\n' "$clean" | tail -n 30 | sed 's/^/  | /' >&2
	exit 1
fi
exit "$rc"
