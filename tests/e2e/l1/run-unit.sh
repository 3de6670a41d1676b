#!/bin/sh
# run-unit.sh: runs cmocka unit test binaries as a listing, for the host stage in the KVM
# test host (stage-host.sh runs the ones tests/unit/needs-kvm.txt names there).
#
#   run-unit.sh BIN...
#
# Prints "PASS unit/<binary>/<test>", "FAIL unit/<binary>/<test>: ..." or
# "SKIP unit/<binary>/<test>: ..." per test, then a failed binary's last output lines
# indented; a binary that crashes, hangs (300 s) or exits non-zero without a failed test
# is "FAIL unit/<binary>: ...". Exits 1 if anything failed.
set -u
rc=0
for bin in "$@"; do
	name=${bin##*/}
	log=${TMPDIR:-/tmp}/unit-$name.log
	timeout -s KILL 300 "$bin" > "$log" 2>&1 < /dev/null
	brc=$?
	# Per-test lines come before the summary, which repeats the failures and skips.
	awk -v n="$name" '
		/^\[==========\] [0-9]+ test\(s\) run/ { s = 1 }
		s { next }
		/^\[       OK \]/ { print "PASS unit/" n "/" $4 }
		/^\[  FAILED  \]/ { print "FAIL unit/" n "/" $4 ": failed in the test host"; bad = 1 }
		/^\[  SKIPPED \]/ { print "SKIP unit/" n "/" $4 ": skipped in the test host" }
		END { exit bad }' "$log"
	arc=$?
	[ "$arc" != 0 ] || [ "$brc" = 0 ] || echo "FAIL unit/$name: exited $brc"
	if [ "$arc" != 0 ] || [ "$brc" != 0 ]; then
		tail -n 30 "$log" | sed 's/^/    | /'
		rc=1
	fi
done
exit $rc
