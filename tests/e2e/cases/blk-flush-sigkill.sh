#!/bin/sh
# blk-flush-sigkill: what the guest flushed is in the image even if kiln dies right after.
# /dev/vda is a drive with the default cache_type (Unsafe: no flush feature, the guest
# sees a write-through cache), /dev/vdb one with cache_type Writeback (the guest sees
# "write back" and sends flushes) on the Async (io_uring) engine. The guest writes a 1 MiB
# pattern at offset 3 MiB of /dev/vdb with dd conv=fsync and prints a marker; this script
# SIGKILLs kiln as soon as the marker is on the console and then finds the pattern in the
# image file, zeros around it.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/blk-common.inc
. "$E2E_CASES/blk-common.inc"
blk_raw "$E2E_CASE.vda" 4
blk_raw "$E2E_CASE.vdb" 8
awk 'BEGIN { for (i = 0; i < 32768; i++) printf "kiln-flush-%020d\n", i }' > "$E2E_CASE.pattern"
want=$(blk_sha256 "$E2E_CASE.pattern")
blk_start blk-flush-sigkill.json "$E2E_CASE"
# The whole line: the serial console can hand over its first part before the rest.
bg_wait_console "$E2E_CASE" "KILN-E2E: blk-flush synced sha256=$want" "$E2E_KILN_TIMEOUT"
bg_kill KILL
echo "kiln SIGKILLed after ${bg_secs}s, exit status $bg_rc"
[ "$bg_rc" = 137 ] || fail "kiln exited $bg_rc before the SIGKILL (expected 137)"
expect_console "KILN-E2E: action=blk_flush"
expect_no_guest_error
caches=$(guest_line "blk-flush write_cache ")
[ "$caches" = "vda=write_through vdb=write_back" ] || fail "guest write caches: $caches"
[ "$(guest_line "blk-flush synced sha256=")" = "$want" ] ||
	fail "the guest's pattern has sha256 $(guest_line "blk-flush synced sha256="), not $want"
got=$(dd if="$E2E_CASE.vdb" bs=1048576 skip=3 count=1 2> /dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "the image holds sha256 $got at 3 MiB, not the flushed pattern"
nonzero=$({
	dd if="$E2E_CASE.vdb" bs=1048576 count=3 2> /dev/null
	dd if="$E2E_CASE.vdb" bs=1048576 skip=4 2> /dev/null
} | tr -d '\000' | wc -c)
[ "$nonzero" = 0 ] || fail "$nonzero non-zero bytes outside the pattern in the vdb image"
[ "$(tr -d '\000' < "$E2E_CASE.vda" | wc -c)" = 0 ] || fail "the vda image was written to"
echo "pattern at offset 3 MiB of the Writeback image: sha256 $got"
pass
