#!/bin/sh
# net-ratelimit: tx_rate_limiter at 2 MB/s (a 200 kB bucket refilled every 100 ms): 16 MiB
# from the guest reach the host no faster than that (measured on the host from the first
# to the last byte, 15% margin for the polling and the TCP/IP headers counted by the
# limiter but not in the file), and intact; the unlimited direction is unaffected.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/net.inc
. "$E2E_CASES/net.inc"
bytes=16777216
rate=2000000
tap_up kiln-nr0 10.77.3.1/24
transfer_start "$bytes"
# Host-side clock: when from-guest.bin first has data, and when it is complete.
(
	first=
	while :; do
		size=$(stat -c %s from-guest.bin 2> /dev/null || echo 0)
		if [ -z "$first" ] && [ "$size" -gt 0 ]; then
			first=$(uptime_cs)
			first_size=$size
		fi
		if [ "$size" -ge "$bytes" ]; then
			echo "$first $first_size $(uptime_cs)"
			break
		fi
		sleep 0.1
	done
) > watch.out &
watcher=$!
run_kiln net-ratelimit.json
kill "$watcher" 2> /dev/null
transfer_check "$bytes"
read -r first first_size last < watch.out || fail "the host never got all $bytes bytes"
cs=$((last - first))
[ "$cs" -gt 0 ] || cs=1
measured=$(((bytes - first_size) * 100 / cs))
echo "guest -> host: $((bytes - first_size)) bytes in ${cs}0 ms: $measured B/s (limit $rate)"
[ "$measured" -le $((rate * 115 / 100)) ] ||
	fail "guest -> host at $measured B/s, over the $rate B/s limit"
expect_exit 0
pass
