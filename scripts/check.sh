#!/bin/sh
# check.sh: the whole kiln test suite, run by `make check` (after the build targets).
#   1. unit tests: every binary in $HOST_DIR/tests/ and $BUILD/tsan/ (ThreadSanitizer race
#      tests, not with SAN=1) (cmocka; each "[       OK ]" passes, each
#      "[  FAILED  ]" fails, each "[  SKIPPED ]" is skipped; a binary that crashes or exits
#      non-zero without a FAILED line is one failure; on a host without a usable /dev/kvm the
#      binaries tests/unit/needs-kvm.txt names run in the host stage's KVM test host instead,
#      when that stage runs too), then the shell unit tests
#      (tests/e2e/test-l1-classify.sh: which L1 console is the test host's own crash;
#      tests/e2e/test-run-cases.sh: which failed case runs once more in the test host;
#      tests/e2e/test-l1-boot.sh: a test host that stalled or went silent is stopped as such;
#      tests/unit/test-vs-qemu-summary.sh: the bench tables rebuilt from session logs;
#      tests/unit/test-needs-kvm.sh: tests/unit/needs-kvm.txt lists the tests opening /dev/kvm)
#   2. host tests: tests/host/run.sh and tests/host/seccomp.sh (kiln with a tiny guest on
#      /dev/kvm) and tests/jailer/run.sh. On a host without a usable /dev/kvm
#      (scripts/kvm-kind.sh) the KVM cases run inside the KVM test host (scripts/in-l1.sh
#      host) instead, so every host kind runs the same cases.
#   3. fuzz smoke runs: every harness in $BUILD/fuzz/ for -runs=$FUZZ_RUNS on a temporary
#      copy of fuzz/corpus/<name>/; one pass/fail each
#   4. end-to-end: tests/e2e/run.sh with KILN=$BUILD/kiln, one pass/fail per case, then
#      tests/e2e/powercut.sh (durability across a power cut of the test host)
# Listing scripts print "PASS tag/name", "FAIL tag/name: why" or "SKIP tag/name: why" per
# case. Prints a header per stage (saying where it ran), the failures and skips, and alone on
# the last line "N passed, N failed, N skipped"; exits 1 if anything failed.
# Environment (from the Makefile): SAN (0/1), BUILD, HOST_DIR, FUZZ_RUNS.
# Optional: CHECK_STAGES="unit host fuzz e2e" (default all), UNIT_TIMEOUT, FUZZ_TIMEOUT,
# FUZZ_MAX_TIME (libFuzzer's -max_total_time per harness, default 150),
# FUZZ_INPUT_TIMEOUT (one input, libFuzzer's -timeout) (seconds), KILN_KVM=real|pvm|none
# (pretend this host has that KVM, see kvm-kind.sh).
set -u

root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir" || exit 1
BUILD=${BUILD:-build}
SAN=${SAN:-0}
HOST_DIR=${HOST_DIR:-$BUILD/host}
FUZZ_RUNS=${FUZZ_RUNS:-1000000}
FUZZ_MAX_TIME=${FUZZ_MAX_TIME:-150}
CHECK_STAGES=${CHECK_STAGES:-unit host fuzz e2e}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-900}
FUZZ_INPUT_TIMEOUT=${FUZZ_INPUT_TIMEOUT:-25}
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export UBSAN_OPTIONS

passed=0
failed=0
skipped=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

stage_wanted() {
	case " $CHECK_STAGES " in *" $1 "*) return 0 ;; esac
	return 1
}

# show_tail FILE: the end of a log, indented.
show_tail() {
	tail -n "${2:-30}" "$1" | sed 's/^/    | /'
}

# cmocka_counts LOG: "<ok> <failed> <skipped>" per-test results; summary lines after
# "[==========] N test(s) run." repeat the failures and skips and are not counted.
cmocka_counts() {
	awk '
		/^\[==========\] Running/ { summary = 0 }
		/^\[==========\] [0-9]+ test\(s\) run/ { summary = 1 }
		!summary && /^\[       OK \]/ { ok++ }
		!summary && /^\[  FAILED  \]/ { bad++ }
		!summary && /^\[  SKIPPED \]/ { skip++ }
		END { print ok + 0, bad + 0, skip + 0 }' "$1"
}

# kvm_kind: this host's KVM (scripts/kvm-kind.sh), once.
kvm_kind=$(scripts/kvm-kind.sh) || kvm_kind=none

# in_l1_unit NAME: whether unit test binary NAME runs in the KVM test host's host stage
# rather than here (this host has no usable /dev/kvm and NAME has cases that need it).
in_l1_unit() {
	[ "$kvm_kind" = none ] && grep -qx "$1" tests/unit/needs-kvm.txt
}

# run_unit DIR TITLE: every cmocka binary in DIR.
run_unit() {
	dir=$1
	echo "== $2 ($dir)"
	found=0
	for bin in "$dir"/*; do
		{ [ -f "$bin" ] && [ -x "$bin" ]; } || continue
		found=1
		name=$(basename "$bin")
		# (the loop's `set --` below reuses $1: DIR is in $dir)
		if [ "$dir" = "$HOST_DIR/tests" ] && stage_wanted host && in_l1_unit "$name"; then
			echo "LATER $name: needs /dev/kvm, runs in the host stage (KVM test host)"
			continue
		fi
		log=$tmp/unit-$name.log
		timeout -s KILL "$UNIT_TIMEOUT" "$bin" > "$log" 2>&1 < /dev/null
		rc=$?
		# shellcheck disable=SC2046 # three numbers
		set -- $(cmocka_counts "$log")
		ok=$1 bad=$2 skip=$3
		passed=$((passed + ok))
		failed=$((failed + bad))
		skipped=$((skipped + skip))
		extra=
		if [ "$rc" -gt 128 ] || { [ "$rc" != 0 ] && [ "$bad" = 0 ]; }; then
			failed=$((failed + 1))
			bad=$((bad + 1))
			if [ "$rc" = 137 ]; then
				extra=" (killed after ${UNIT_TIMEOUT}s)"
			elif [ "$rc" -gt 128 ]; then
				extra=" (killed by signal $((rc - 128)))"
			else
				extra=" (exit $rc)"
			fi
		fi
		if [ "$bad" = 0 ]; then
			echo "PASS $name: $ok tests$([ "$skip" = 0 ] || echo ", $skip skipped")"
			awk '/^\[==========\] [0-9]+ test\(s\) run/ { s = 1 }
				!s && /^\[  SKIPPED \]/ { print "    skipped:" substr($0, 14) }' "$log"
		else
			echo "FAIL $name: $ok passed, $bad failed$extra" | tee -a "$tmp/failures"
			grep '^\[  FAILED  \]' "$log" | grep -v 'test(s)' | sort -u | sed 's/^/    /'
			show_tail "$log"
		fi
	done
	[ "$found" = 1 ] || echo "(no unit test binaries)"
}

run_fuzz() {
	echo "== fuzz smoke runs ($BUILD/fuzz, -runs=$FUZZ_RUNS, at most ${FUZZ_MAX_TIME}s each)"
	found=0
	for bin in "$BUILD"/fuzz/fuzz_*; do
		{ [ -f "$bin" ] && [ -x "$bin" ]; } || continue
		found=1
		name=$(basename "$bin")
		corpus=$tmp/corpus-$name
		mkdir -p "$corpus"
		[ ! -d "fuzz/corpus/$name" ] || cp -R "fuzz/corpus/$name/." "$corpus/"
		artifacts=$BUILD/fuzz/artifacts
		mkdir -p "$artifacts"
		log=$tmp/fuzz-$name.log
		# A hanging input fails at -timeout, well inside the stage's bound, and leaves a
		# timeout-* reproducer among the artifacts.
		# -max_total_time keeps the slow harnesses (real sockets: fuzz_vsock_pkt) to a smoke
		# run's share of the suite; the long runs are made apart (docs/testing.md).
		timeout -s KILL "$FUZZ_TIMEOUT" "$bin" -runs="$FUZZ_RUNS" -timeout="$FUZZ_INPUT_TIMEOUT" \
			-max_total_time="$FUZZ_MAX_TIME" \
			-artifact_prefix="$artifacts/$name-" "$corpus" > "$log" 2>&1 < /dev/null
		rc=$?
		if [ "$rc" = 0 ]; then
			passed=$((passed + 1))
			echo "PASS $name: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -n 1)"
		else
			failed=$((failed + 1))
			how="exit $rc"
			[ "$rc" != 137 ] || how="killed after ${FUZZ_TIMEOUT}s"
			echo "FAIL $name: $how (artifacts in $artifacts/)" | tee -a "$tmp/failures"
			show_tail "$log" 40
		fi
	done
	[ "$found" = 1 ] || echo "(no fuzz harnesses)"
}

# failure_blocks TAGS: the FAIL lines of a listing with some of the log a case printed under
# each ("  | ..." in e2e): its first 20 lines other than the guest's console, then the
# console's last 8.
failure_blocks() {
	awk -v t="^FAIL ($1)/" '
		function flush(   i) {
			for (i = 1; i <= nc && i <= 8; i++) print con[(nc - 8 > 0 ? nc - 8 : 0) + i]
			nc = 0
		}
		$0 ~ t { flush(); print; inblock = 1; n = 0; next }
		inblock && /^  / {
			if ($0 ~ /console: /) con[++nc] = $0
			else if (++n <= 20) print
			next
		}
		{ flush(); inblock = 0 }
		END { flush() }'
}

# run_listing TITLE TAGS COMMAND...: runs a script that prints "PASS tag/...", "FAIL tag/..."
# and "SKIP tag/..." lines for tag in TAGS ("a|b"); counts them, and one failure if it exits
# non-zero without a FAIL line.
run_listing() {
	title=$1 tags=$2
	shift 2
	echo "== $title ($*)"
	log=$tmp/listing.log
	env KILN="$BUILD/kiln" BUILD="$BUILD" "$@" > "$log" 2> "$tmp/listing.err" < /dev/null
	rc=$?
	cat "$log"
	ok=$(grep -Ec "^PASS ($tags)/" "$log")
	bad=$(grep -Ec "^FAIL ($tags)/" "$log")
	skip=$(grep -Ec "^SKIP ($tags)/" "$log")
	failure_blocks "$tags" < "$log" >> "$tmp/failures"
	grep -E "^($tags|in-l1|e2e): " "$tmp/listing.err" | sed 's/^/    /'
	if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
		echo "FAIL $1: exited $rc without a failed case" | tee -a "$tmp/failures"
		show_tail "$tmp/listing.err"
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	skipped=$((skipped + skip))
}

# run_host: the host stage, directly where /dev/kvm is usable, else its KVM cases in L1.
run_host() {
	if [ "$kvm_kind" != none ]; then
		echo "== host stage: directly on this host's KVM ($kvm_kind)"
		run_listing "host tests" host tests/host/run.sh
		run_listing "seccomp host tests" host tests/host/seccomp.sh
		run_listing "API host tests" host tests/host/api.sh
		run_listing "jailer tests" jailer tests/jailer/run.sh
	else
		echo "== host stage: this host has no usable /dev/kvm: the KVM cases run in the KVM test host (L1)"
		run_listing "host, seccomp, API, kiln-in-jail and KVM unit tests in L1" "host|jailer|unit" \
			env HOST_DIR="$HOST_DIR" scripts/in-l1.sh host
		run_listing "jailer tests" jailer env JAILER_EXCLUDE=kiln_in_jail tests/jailer/run.sh
	fi
}

if stage_wanted unit; then
	run_unit "$HOST_DIR/tests" "unit tests$([ "$SAN" = 1 ] && echo ', ASan/UBSan')"
	# SAN=1 builds ASan, which cannot run together with ThreadSanitizer: tsan only without.
	[ "$SAN" = 1 ] || run_unit "$BUILD/tsan" "unit tests under ThreadSanitizer (races)"
	run_listing "shell unit tests" unit sh tests/e2e/test-l1-classify.sh
	run_listing "shell unit tests" unit sh tests/e2e/test-run-cases.sh
	run_listing "shell unit tests" unit sh tests/e2e/test-l1-boot.sh
	run_listing "shell unit tests" unit sh tests/unit/test-vs-qemu-summary.sh
	run_listing "shell unit tests" unit sh tests/unit/test-needs-kvm.sh
fi
! stage_wanted host || run_host
! stage_wanted fuzz || run_fuzz
! stage_wanted e2e || run_listing "end-to-end" e2e tests/e2e/run.sh
! stage_wanted e2e || run_listing "power cut (in the KVM test host)" e2e tests/e2e/powercut.sh
# The failures once more, next to the count: a CI log shown only in part keeps its end.
if [ -s "$tmp/failures" ]; then
	echo "== the failures above, again"
	cut -c1-300 "$tmp/failures"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
