#!/bin/sh
# blk-readonly: /dev/vda is a writable raw drive, /dev/vdb a copy of the fixture's ext4 with
# is_read_only. The guest sees vdb read-only (sysfs ro=1, vda ro=0) and the drive_ids as
# serials, mounts vdb ro and reads host.bin intact; creating a file, dd to the raw device
# and a rw mount all fail (or the mount comes up read-only), while a pattern written to vda
# reads back. On this host the vdb image is bit-for-bit unchanged afterwards.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/blk-common.inc
. "$E2E_CASES/blk-common.inc"
blk_raw "$E2E_CASE.vda" 8
blk_copy blk-data.ext4 "$E2E_CASE.vdb"
before=$(blk_sha256 "$E2E_CASE.vdb")
expect_boots_and_does blk-readonly.json blk_ro poweroff
[ "$(guest_line "blk-ro sysfs-ro ")" = "vda=0 vdb=1" ] ||
	fail "guest sysfs ro flags: $(guest_line "blk-ro sysfs-ro ")"
# The serials (VIRTIO_BLK_T_GET_ID) are the drive_ids, in config order.
[ "$(guest_line "blk-ro serial ")" = "vda=scratch vdb=ro-data" ] ||
	fail "guest drive serials: $(guest_line "blk-ro serial ")"
got=$(guest_line "blk-ro host.bin sha256=")
[ "$got" = "$(blk_host_sha256)" ] || fail "the guest read host.bin with sha256 $got"
guest_line "blk-ro file-create refused" > /dev/null
guest_line "blk-ro raw-write refused" > /dev/null
echo "guest rw mount of vdb:$(guest_line "blk-ro rw-mount")"
guest_line "blk-ro vda-write ok" > /dev/null
after=$(blk_sha256 "$E2E_CASE.vdb")
[ "$after" = "$before" ] || fail "the read-only image changed: sha256 $before -> $after"
# The guest's pattern is in the writable drive.
awk 'BEGIN { for (i = 0; i < 32768; i++) printf "kiln-flush-%020d\n", i }' > "$E2E_CASE.pattern"
dd if="$E2E_CASE.vda" bs=1048576 count=1 2> /dev/null | cmp -s - "$E2E_CASE.pattern" ||
	fail "the pattern the guest wrote to vda is not at the start of its image"
echo "read-only image unchanged: sha256 $after"
pass
