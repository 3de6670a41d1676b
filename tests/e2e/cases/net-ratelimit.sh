#!/bin/sh
# net-ratelimit: tx_rate_limiter and rx_rate_limiter at 250 kB/s each (a 25 kB bucket refilled
# every 100 ms). The same 2 MiB each way run twice, unlimited first
# (net-ratelimit-unlimited.json), then limited; both intact. Rates are the guest's own
# timings of each direction (the TCP payload; the limiter also counts headers):
#   limited: at most 115% of the limit, and at least 25% (a limiter that stalls fails too;
#   the margin is for a loaded test host, where the unlimited rate is low too);
#   unlimited: at least twice the limit in each direction, so the limit visibly did the work
#   (a test host too slow for that skips the case, with the rates it measured).
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/net.inc
. "$E2E_CASES/net.inc"
bytes=2097152
rate=250000
tap_up kiln-nr0 10.77.3.1/24

# rates CONFIG: one run; sets tx_bps and rx_bps (bytes per second, from the guest's times).
rates() {
	transfer_start "$bytes"
	run_kiln "$1"
	expect_end poweroff
	transfer_check "$bytes"
	tx_ms=$(net_result net-tx | sed -n 's/.* in \([0-9]*\) ms$/\1/p')
	rx_ms=$(net_result net-rx | sed -n 's/.* in \([0-9]*\) ms$/\1/p')
	if [ -z "$tx_ms" ] || [ -z "$rx_ms" ]; then
		fail "the guest did not time both directions"
	fi
	tx_bps=$((bytes * 1000 / (tx_ms + 1)))
	rx_bps=$((bytes * 1000 / (rx_ms + 1)))
	echo "$1: guest -> host $tx_bps B/s, host -> guest $rx_bps B/s (limit $rate)"
}

rates net-ratelimit-unlimited.json
free_tx=$tx_bps
free_rx=$rx_bps
rates net-ratelimit.json
for dir in tx rx; do
	if [ "$dir" = tx ]; then got=$tx_bps free=$free_tx; else got=$rx_bps free=$free_rx; fi
	[ "$got" -le $((rate * 115 / 100)) ] || fail "$dir at $got B/s, over the $rate B/s limit"
	# A test host too slow to reach twice the limit cannot tell a limiter from itself.
	[ "$free" -ge $((rate * 2)) ] ||
		skip "the test host is too slow: unlimited $dir reached only $free B/s, not twice the $rate B/s limit"
	[ "$got" -ge $((rate / 4)) ] || fail "$dir at $got B/s, under a quarter of the $rate B/s limit"
done
pass
