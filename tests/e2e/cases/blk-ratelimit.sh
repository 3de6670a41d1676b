#!/bin/sh
# blk-ratelimit: a drive's rate_limiter under real guest I/O. /dev/vda is limited to 1 MB/s
# (a 100 kB bucket refilled every 100 ms), /dev/vdb beside it is not. The guest reads 4 MiB
# from each with O_DIRECT and times it: the limited read runs at most 115% and at least
# 50% of the limit; the unlimited one at least twice the limit, so the limit did the work.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/blk-common.inc
. "$E2E_CASES/blk-common.inc"
rate=1000000
blk_raw "$E2E_CASE.vda" 8
blk_raw "$E2E_CASE.vdb" 8
run_kiln blk-ratelimit.json
expect_console "KILN-E2E: action=blk_rate"
expect_no_guest_error
expect_end poweroff
for d in vda vdb; do
	ms=$(guest_line "blk-rate $d read 4194304 in " | sed -n 's/^\([0-9]*\) ms$/\1/p')
	[ -n "$ms" ] || fail "the guest did not time its read of /dev/$d$(last_marker)"
	eval "bps_$d=$((4194304 * 1000 / (ms + 1)))"
done
# shellcheck disable=SC2154 # set by eval above
echo "limited /dev/vda: $bps_vda B/s, unlimited /dev/vdb: $bps_vdb B/s (limit $rate)"
[ "$bps_vda" -le $((rate * 115 / 100)) ] || fail "/dev/vda read at $bps_vda B/s, over the limit"
[ "$bps_vdb" -ge $((rate * 2)) ] ||
	skip "the test host is too slow: the unlimited drive reached only $bps_vdb B/s"
[ "$bps_vda" -ge $((rate / 2)) ] || fail "/dev/vda read at $bps_vda B/s, under half the limit"
pass
