#!/bin/sh
# missing-kernel: a config whose kernel_image_path does not exist is bad user input: kiln
# must exit 2 with a one-line error naming both the key and the path, and never start a guest
# (nothing on the guest console, done within seconds).
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
E2E_KILN_TIMEOUT=20
run_kiln missing-kernel.json
expect_exit 2
lines=$(grep -c . "$stderr_log")
[ "$lines" = 1 ] || fail "expected a one-line error, kiln wrote $lines lines to stderr"
grep -q 'boot-source\.kernel_image_path' "$stderr_log" ||
	fail "the error does not name boot-source.kernel_image_path: $(cat "$stderr_log")"
grep -q 'no-such-dir/vmlinux-missing' "$stderr_log" ||
	fail "the error does not name the path: $(cat "$stderr_log")"
[ ! -s "$console" ] || fail "kiln wrote to the guest console: $(head -c 200 "$console")"
echo "error line: $(cat "$stderr_log")"
pass
