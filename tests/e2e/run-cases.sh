#!/bin/sh
# run-cases.sh: runs every e2e case script once and prints one machine-readable line each.
# Used inside the L1 test host (by tests/e2e/l1/init) and directly on hosts with real KVM
# (by tests/e2e/run.sh); busybox sh compatible.
#
#   run-cases.sh CASES_DIR
#   env: KILN, E2E_DIR, E2E_WORK (see lib.sh), E2E_KILN_TIMEOUT (per kiln run, default 120),
#        E2E_ONLY (optional space-separated case names to run), E2E_REPEAT (runs of each
#        case, default 1: every run prints its lines, a case passes only if all did),
#        E2E_NESTED=1 (set by the L1 test host: see nested_failure)
#
# Output per case, in name order:
#   E2E-TIME <name> <seconds>
#   E2E-RESULT PASS <name>, E2E-RESULT FAIL <name>: <reason> or E2E-RESULT SKIP <name>: <why>
#   E2E-LOG <name>: <line>   for a failed case: its own output, kiln's stderr, guest console
#   E2E-RETRY <name>: <reason>   and E2E-RETRY-LOG <name>: <line>   for a run that the
#                            test host's nested SVM failed (see nested_failure); the run
#                            after it gives the result, a SKIP if the host failed them all
#   E2E-VMSTAT <name> <counter>=<delta> ...   when the host migrated or compacted pages
#                            during the run (/proc/vmstat), which the emulated test host
#                            does not survive reliably (docs/testing.md)
# and "E2E-CASES DONE" at the end.

cases=${1:?usage: run-cases.sh CASES_DIR}
cases=$(cd "$cases" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
: "${KILN:?}" "${E2E_DIR:?}" "${E2E_WORK:?}"
: "${E2E_KILN_TIMEOUT:=120}"
E2E_CASES=$cases
E2E_LIB=$here/lib.sh
export KILN E2E_DIR E2E_WORK E2E_CASES E2E_LIB E2E_KILN_TIMEOUT
mkdir -p "$E2E_WORK"
# The case itself may need a little longer than its kiln run(s): a second, outer bound.
case_timeout=$((E2E_KILN_TIMEOUT * 2 + 30))
# shellcheck source=tests/e2e/l1-classify.sh
. "$here/l1-classify.sh"

uptime_cs() {
	read -r up _ < /proc/uptime
	echo "${up%.*}${up#*.}" | sed 's/^0*//; s/^$/0/'
}

log_file() { # log_file NAME FILE LABEL
	[ -s "$2" ] || return 0
	tr -d '\r' < "$2" | tail -n 200 | sed "s/^/E2E-LOG $1: $3/"
}

# case_stuck PID: what the test host was doing when case PID ran out of time: its
# processes, load and the kernel's last lines (a soft lockup, a hung task, an OOM kill).
case_stuck() {
	echo "load: $(cat /proc/loadavg), uptime $(cut -d' ' -f1 /proc/uptime)s"
	ps | grep -v ' \[[^]]*\]$' # not the kernel threads
	dmesg 2> /dev/null | tail -n 20
}

# migration_counts: the /proc/vmstat counters of page migration, compaction and huge
# page collapse/split, as "name value" lines.
migration_counts() {
	grep -E '^(pgmigrate_success|pgmigrate_fail|compact_stall|compact_isolated|thp_collapse_alloc|thp_split_page|thp_split_pmd|numa_pages_migrated) ' \
		/proc/vmstat 2> /dev/null
}

# migration_report NAME BEFORE: an E2E-VMSTAT line with the counters that moved since BEFORE.
migration_report() {
	moved=$(migration_counts | awk -v before="$2" '
		BEGIN { n = split(before, b, "\n"); for (i = 1; i <= n; i++) { split(b[i], f, " "); v[f[1]] = f[2] } }
		$2 != v[$1] { printf " %s=%d", $1, $2 - v[$1] }')
	[ -z "$moved" ] || echo "E2E-VMSTAT $1$moved"
}

# run_case NAME SCRIPT: one run of a case; sets rc and ok (yes when it printed PASS).
run_case() {
	rm -f "$E2E_WORK/$1".*
	start=$(uptime_cs)
	vmstat_before=$(migration_counts)
	# Its own session, so a case killed at its timeout takes its children (kiln, nc, ...)
	# with it instead of leaving them to disturb the next case.
	E2E_CASE=$1 setsid sh "$2" > "$E2E_WORK/$1.out" 2>&1 &
	pid=$!
	waited=0
	while kill -0 "$pid" 2> /dev/null && [ "$waited" -lt "$case_timeout" ]; do
		sleep 1
		waited=$((waited + 1))
	done
	if kill -0 "$pid" 2> /dev/null; then
		case_stuck "$pid" > "$E2E_WORK/$1.stuck"
		kill -KILL -- "-$pid" "$pid" 2> /dev/null
	fi
	wait "$pid"
	rc=$?
	# What a failed case left running (a host nc listener, a uds-tool) would hold ports and
	# sockets the next case needs: the session goes whole, whichever way the case ended.
	kill -KILL -- "-$pid" 2> /dev/null
	t=$(($(uptime_cs) - start))
	echo "E2E-TIME $1 $((t / 100)).$(printf '%02d' $((t % 100)))"
	migration_report "$1" "$vmstat_before"
	ok=no
	last=$(tail -n 1 "$E2E_WORK/$1.out")
	if [ "$rc" = 0 ] && [ "$last" = PASS ]; then
		ok=yes
	elif [ "$rc" = 0 ] && [ "${last#SKIP: }" != "$last" ]; then
		ok=skip
	fi
}

# report_run NAME: the result line of the run just done (and its logs when it failed).
report_run() {
	if [ "$ok" = yes ]; then
		echo "E2E-RESULT PASS $1"
		return 0
	elif [ "$ok" = skip ]; then
		echo "E2E-RESULT SKIP $1: ${last#SKIP: }"
		return 0
	fi
	reason=$(grep '^FAIL: ' "$E2E_WORK/$1.out" | tail -n 1 | cut -c7-)
	if [ -z "$reason" ]; then
		case $rc in
		137) reason="case killed after ${case_timeout}s" ;;
		0) reason="case ended without PASS" ;;
		*) reason="case exited $rc" ;;
		esac
	fi
	echo "E2E-RESULT FAIL $1: $reason"
	log_file "$1" "$E2E_WORK/$1.out" ""
	log_file "$1" "$E2E_WORK/$1.stuck" "stuck: "
	log_file "$1" "$E2E_WORK/$1.stderr" "kiln: "
	# A case that gives kiln a log file (the API's PUT /logger) finds kiln's lines there,
	# its hang dump included, not on its stderr.
	log_file "$1" "$E2E_WORK/$1.log" "kiln log: "
	log_file "$1" "$E2E_WORK/$1.console" "console: "
	# A case with several kiln runs names their logs <case>.<run>.stderr / .console.
	for f in "$E2E_WORK/$1".*.stderr; do
		[ -f "$f" ] || continue
		run=${f#"$E2E_WORK/$1".}
		run=${run%.stderr}
		log_file "$1" "$f" "$run kiln: "
		log_file "$1" "$E2E_WORK/$1.$run.console" "$run console: "
	done
}

# report_retry NAME: report_run for a run the test host failed: its lines as E2E-RETRY and
# E2E-RETRY-LOG, so they never count as the case's result.
report_retry() {
	report_run "$1" | sed "s/^E2E-RESULT FAIL /E2E-RETRY /; s/^E2E-LOG /E2E-RETRY-LOG /"
}

# nested_failure NAME: for a failed run of NAME inside the L1 test host, the signature its
# kiln's stderr shows of the test host's emulated nested SVM failing (nested_signature in
# l1-classify.sh: a triple fault into the INIT state, a hang dump with an instruction fetch
# #PF re-injected at RIP = CR2; docs/testing.md), which it does to kiln's and QEMU's guests
# alike, at random, under interrupt and paging load. Prints nothing (status 1) otherwise,
# on a host with real KVM, and when E2E_REPEAT measures how often a case fails.
nested_failure() {
	[ "${E2E_NESTED:-0}" = 1 ] && [ "${E2E_REPEAT:-1}" = 1 ] && [ "$ok" = no ] || return 1
	cat "$E2E_WORK/$1".stderr "$E2E_WORK/$1".*.stderr "$E2E_WORK/$1".log 2> /dev/null |
		nested_signature
}

# E2E_NESTED_RETRIES (2): how many more runs a case gets after runs the test host failed
# (nested_failure), each reported as E2E-RETRY. The first run it does not fail gives the
# result; a case the test host failed in every run is one it could not run: a skip.
: "${E2E_NESTED_RETRIES:=2}"

for script in "$cases"/*.sh; do
	[ -f "$script" ] || continue
	name=$(basename "$script" .sh)
	if [ -n "${E2E_ONLY:-}" ]; then
		case " $E2E_ONLY " in *" $name "*) ;; *) continue ;; esac
	fi
	runs=0
	while [ "$runs" -lt "${E2E_REPEAT:-1}" ]; do
		runs=$((runs + 1))
		run_case "$name" "$script"
		tries=0
		while host_failed=$(nested_failure "$name") && [ "$tries" -lt "$E2E_NESTED_RETRIES" ]; do
			report_retry "$name"
			tries=$((tries + 1))
			run_case "$name" "$script"
		done
		if [ -n "$host_failed" ]; then
			report_retry "$name"
			echo "E2E-RESULT SKIP $name: the L1 test host failed all $((tries + 1)) runs ($host_failed)"
			continue
		fi
		report_run "$name"
	done
done
echo "E2E-CASES DONE"
