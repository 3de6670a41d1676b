#!/bin/sh
# blk-bad-config: drives kiln must refuse, as bad user input (exit 2, one line on stderr,
# no guest started, so nothing on the guest console):
#   - a path_on_host that does not exist: the line names drives[0].path_on_host;
#   - an image another running kiln has open read-write (two VMs must not share a writable
#     image): refused both read-write and read-only, with a line that names the drive's
#     path_on_host and says it is locked, while the first VM keeps running unharmed;
#     once the first kiln is stopped (SIGTERM: exit 0) the image boots again.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/blk-common.inc
. "$E2E_CASES/blk-common.inc"

# expect_refused NAME WHAT REGEX: kiln run NAME exited 2 with one stderr line matching
# REGEX (grep -E) and wrote nothing to the guest console.
expect_refused() {
	[ "$fg_rc" = 2 ] || fail "$2: kiln exited $fg_rc, not 2: $(head -c 300 "$1.stderr")"
	lines=$(grep -c . "$1.stderr")
	[ "$lines" = 1 ] ||
		fail "$2: expected a one-line error, kiln wrote $lines lines: $(head -c 300 "$1.stderr")"
	grep -qE "$3" "$1.stderr" || fail "$2: the error does not match '$3': $(cat "$1.stderr")"
	[ ! -s "$1.console" ] || fail "$2: kiln wrote to the guest console: $(head -c 200 "$1.console")"
	echo "$2: $(cat "$1.stderr")"
}

blk_run blk-bad-config.json "$E2E_CASE.missing"
expect_refused "$E2E_CASE.missing" "missing image" \
	'drives\[0\]\.path_on_host: .*no-such-dir/blk-missing\.img: No such file'

blk_raw "$E2E_CASE.vda" 4
blk_start blk-bad-config-lock.json "$E2E_CASE.first"
bg_wait_console "$E2E_CASE.first" "KILN-E2E: blk-hold holding vda" "$E2E_KILN_TIMEOUT"
blk_run blk-bad-config-lock.json "$E2E_CASE.second"
expect_refused "$E2E_CASE.second" "image in use, read-write" \
	"drives\\[[a-z0-9-]*\\]\\.path_on_host: $E2E_CASE\\.vda: locked"
blk_run blk-bad-config-lock.json "$E2E_CASE.second-ro" \
	's/"is_read_only": false/"is_read_only": true/'
grep -q '"is_read_only": true' "$E2E_CASE.second-ro.json" || fail "no read-only variant"
expect_refused "$E2E_CASE.second-ro" "image in use, read-only" \
	"drives\\[[a-z0-9-]*\\]\\.path_on_host: $E2E_CASE\\.vda: locked"
bg_alive || fail "the first kiln died"
bg_kill TERM
[ "$bg_rc" = 0 ] || fail "the first kiln exited $bg_rc on SIGTERM, not 0"
expect_end signal "$E2E_CASE.first.stderr" "$bg_rc"
if grep -aq 'KILN-E2E: error' "$E2E_CASE.first.console"; then
	fail "first guest: $(grep -a 'KILN-E2E: error' "$E2E_CASE.first.console" | head -n 1)"
fi
echo "first kiln: exit 0 on SIGTERM after ${bg_secs}s"

# The lock went with the first kiln: the same image boots now.
BLK_RUN_TIMEOUT=$E2E_KILN_TIMEOUT blk_run blk-bad-config-lock.json "$E2E_CASE.after" \
	's/kiln.test=blk_hold/kiln.test=poweroff/'
grep -aq 'KILN-E2E: action=poweroff' "$E2E_CASE.after.console" ||
	fail "the image did not boot after the first kiln stopped (kiln exit $fg_rc):" \
		"$(head -c 300 "$E2E_CASE.after.stderr")"
[ "$fg_rc" = 0 ] || fail "kiln on the released image exited $fg_rc, not 0"
expect_end poweroff "$E2E_CASE.after.stderr" "$fg_rc"
echo "after the first kiln: the image boots again, kiln exit 0"
pass
