#!/bin/sh
# blk-rw-reboot: /dev/vda (io_engine Async: io_uring) is an ext4 image built on the host
# (mke2fs -d) holding host.bin.
# The guest mounts it, reads host.bin (its sha256 must be the one the fixture recorded),
# writes 1 MiB + 1000 random bytes to guest.bin, syncs, reads it back from the drive with
# its page cache dropped (same sha256) and reboots without unmounting: kiln exits 0, and
# on this host the image (loop-mounted, journal replayed) holds guest.bin with the sha256
# the guest reported and host.bin unchanged.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/blk-common.inc
. "$E2E_CASES/blk-common.inc"
blk_copy blk-data.ext4 "$E2E_CASE.vda"
expect_boots_and_does blk-rw-reboot.json blk_rw reboot
want=$(blk_host_sha256)
got=$(guest_line "blk-rw host.bin sha256=")
[ "${got%% *}" = "$want" ] || fail "the guest read host.bin with sha256 ${got%% *}, not $want"
guest=$(guest_line "blk-rw guest.bin sha256=")
guest_sha=${guest%% *}
[ "${guest#* }" = "size=1049576 readback=$guest_sha" ] ||
	fail "the guest wrote guest.bin with sha256 $guest_sha and ${guest#* }"
blk_mount "$E2E_CASE.vda"
[ -f "$mnt/guest.bin" ] || fail "guest.bin is not in the image (it has: $(cd "$mnt" && echo *))"
have=$(blk_sha256 "$mnt/guest.bin")
have_host=$(blk_sha256 "$mnt/host.bin")
size=$(wc -c < "$mnt/guest.bin")
blk_umount
[ "$have" = "$guest_sha" ] ||
	fail "guest.bin in the image: sha256 $have ($size bytes), the guest wrote $guest_sha"
[ "$have_host" = "$want" ] || fail "host.bin changed in the image: sha256 $have_host"
echo "guest.bin in the image: $size bytes, sha256 $have"
pass
