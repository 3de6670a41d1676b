#!/bin/sh
# powercut.sh: durability across a power cut, the e2e case blk-powercut-flush. Runs after
# tests/e2e/run.sh (it boots that run's L1 image, build/e2e/L1.cpio.gz) on every host kind:
# the test host must be a VM that can die at once.
#
# Twice: a fresh disk image, an ext4 filesystem holding drive.img (8 MiB of 'x'), is L1's
# /dev/vda, and drive.img kiln's Writeback drive in L1 (see tests/e2e/l1/stage-powercut.sh);
# the guest writes and flushes a 1 MiB pattern at 3 MiB, then L1 dies (sysrq b) and this
# script reads drive.img out of the image (journal replayed first, as a mount would).
#   flush    build/kiln: the flushed pattern must be in the image.
#   noflush  kiln-testhooks with flushes that skip fdatasync: the pattern must be missing,
#            or this test could not tell a working flush from a missing one.
# Prints "PASS e2e/blk-powercut-flush" or "FAIL e2e/blk-powercut-flush: why".
set -u
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root_dir" || exit 1
out=build/e2e
name=blk-powercut-flush
image=$out/L1.cpio.gz

fail() {
	echo "FAIL e2e/$name: $*"
	exit 1
}

[ -s "$image" ] || fail "no $image (tests/e2e/run.sh builds it)"
want=$(awk 'BEGIN { for (i = 0; i < 32768; i++) printf "kiln-flush-%020d\n", i }' |
	sha256sum | cut -d' ' -f1)

# powercut MODE: one run; sets got (sha256 of the 1 MiB at 3 MiB of the disk afterwards).
powercut() {
	disk=$out/powercut-$1.img
	log=$out/powercut-$1.log
	rm -rf "$disk" "$out/powercut-dir"
	mkdir -p "$out/powercut-dir"
	if ! head -c 8388608 /dev/zero | tr '\000' x > "$out/powercut-dir/drive.img" ||
		! mke2fs -q -t ext4 -d "$out/powercut-dir" "$disk" 32M > /dev/null; then
		fail "cannot make $disk"
	fi
	scripts/l1-boot.sh -t 300 -l "$log" -D "$disk" "$image" "l1.stage=powercut" \
		"l1.powercut=$1"
	qrc=$?
	clean=$(tr -d '\r' < "$log")
	printf '%s\n' "$clean" | sed -n 's/^.*E2E-OUT //p' | sed "s/^/e2e: $name: $1: /" >&2
	printf '%s\n' "$clean" | sed -n 's/^.*E2E-ERR //p' | sed "s/^/e2e: $name: $1: /" >&2
	if ! printf '%s\n' "$clean" | grep -q 'E2E-OUT powercut: cutting the power' ||
		! printf '%s\n' "$clean" | grep -q 'sysrq: Resetting'; then
		fail "$1 run: the power cut did not happen (QEMU exit $qrc, console $log)"
	fi
	! printf '%s\n' "$clean" | grep -q 'E2E-STAGE-EXIT' ||
		fail "$1 run: L1 went on after the power cut (console $log)"
	e2fsck -fy "$disk" > /dev/null 2>&1 # replays the journal; exit 1 means it fixed something
	debugfs -R "dump /drive.img $out/powercut-drive.img" "$disk" > /dev/null 2>&1 ||
		fail "$1 run: cannot read drive.img from $disk"
	got=$(dd if="$out/powercut-drive.img" bs=1M skip=3 count=1 2> /dev/null | sha256sum |
		cut -d' ' -f1)
}

powercut flush
[ "$got" = "$want" ] || fail "the flushed pattern is not on the disk after the power cut (sha256 $got)"
powercut noflush
[ "$got" != "$want" ] ||
	fail "control: with flushes skipped the pattern still survived the power cut: this test cannot see a missing flush"
echo "e2e: $name: flushed pattern survived; without fdatasync it was lost" >&2
echo "PASS e2e/$name"
