#!/bin/sh
# net-missing-tap: a network interface whose host_dev_name names no TAP is bad user input:
# kiln exits 2 with one line naming network-interfaces[0].host_dev_name and the device,
# before any guest starts (kiln never creates TAPs itself).
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
E2E_KILN_TIMEOUT=20
run_kiln net-missing-tap.json
expect_exit 2
lines=$(grep -c . "$stderr_log")
[ "$lines" = 1 ] || fail "expected a one-line error, kiln wrote $lines lines to stderr"
grep -q 'network-interfaces\[0\]\.host_dev_name: kiln-none0: no such network device' \
	"$stderr_log" || fail "unexpected error: $(cat "$stderr_log")"
[ ! -s "$console" ] || fail "kiln wrote to the guest console: $(head -c 200 "$console")"
echo "error line: $(cat "$stderr_log")"
pass
