# lib.sh: helpers sourced by every e2e case (tests/e2e/cases/*.sh); busybox sh compatible.
#
# The runner (run-cases.sh) sets:
#   KILN       the kiln binary
#   E2E_DIR    fixture directory: bzImage, vmlinux, guest-initramfs.cpio.gz
#   E2E_CASES  directory of the case scripts and their JSON configs
#   E2E_WORK   scratch directory; a case writes $E2E_WORK/<case>.{json,console,stderr}
#   E2E_CASE   the case's name
#   E2E_KILN_TIMEOUT  seconds one kiln run may take before it counts as hung
# JSON configs name fixtures as /e2e/<file> (their location inside the L1 test host);
# run_kiln rewrites that prefix to $E2E_DIR when the cases run elsewhere.
# A case calls run_kiln, then expect_* checks; the first failed check prints
# "FAIL: <reason>" and exits 1. A case that reaches `pass` prints "PASS" and exits 0.
# shellcheck shell=sh

: "${KILN:?}" "${E2E_DIR:?}" "${E2E_CASES:?}" "${E2E_WORK:?}" "${E2E_CASE:?}"
: "${E2E_KILN_TIMEOUT:=120}"

kiln_rc=
kiln_desc=
kiln_secs=
console=$E2E_WORK/$E2E_CASE.console
stderr_log=$E2E_WORK/$E2E_CASE.stderr

fail() {
	echo "FAIL: $*"
	exit 1
}

pass() {
	echo "PASS"
	exit 0
}

# skip REASON: this test host cannot run the case's check (never for lack of KVM: the
# cases run where KVM is); counted as skipped, with the reason.
skip() {
	echo "SKIP: $*"
	exit 0
}

# uptime_cs: a monotonic clock in centiseconds (/proc/uptime).
uptime_cs() {
	read -r up _ < /proc/uptime
	echo "${up%.*}${up#*.}" | sed 's/^0*//; s/^$/0/'
}

# json_int KEY FILE: the integer value of "KEY" in FILE (its last occurrence), or empty.
json_int() {
	tr -d '\n' < "$2" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\\([0-9][0-9]*\\).*/\\1/p"
}

# kill_dumped PID...: for a case's EXIT trap: each kiln still running logs its vCPUs' and
# queues' state (SIGUSR2, README: signals) into its stderr, which a failed case shows and
# run-cases.sh reads for the test host's own failures (nested_failure), then is killed.
kill_dumped() {
	for p in "$@"; do
		kill -USR2 "$p" 2> /dev/null
	done
	sleep 1
	kill -KILL "$@" 2> /dev/null
}

# bounded_kiln SECS CMD...: runs CMD (a kiln, redirected by the caller) for at most SECS
# seconds. At the bound it sends SIGUSR2, on which kiln logs every vCPU's registers and every
# virtqueue's indices (README: signals) so a hang can be diagnosed from its stderr, then
# SIGKILL 2 s later. Returns CMD's status: 137 when it was killed.
bounded_kiln() {
	bk_secs=$1
	shift
	"$@" &
	bk_pid=$!
	(
		i=0
		while kill -0 "$bk_pid" 2> /dev/null; do
			if [ "$i" -ge "$bk_secs" ]; then
				kill -USR2 "$bk_pid" 2> /dev/null
				sleep 2
				kill -KILL "$bk_pid" 2> /dev/null
				exit 0
			fi
			sleep 1
			i=$((i + 1))
		done
	) < /dev/null > /dev/null 2>&1 &
	bk_dog=$!
	wait "$bk_pid"
	bk_rc=$?
	wait "$bk_dog"
	return "$bk_rc"
}

# run_kiln CONFIG.json [KILN-ARGS...]: runs kiln on the case's config (fixture paths rewritten) with a
# timeout; the guest console (stdout) goes to $console, kiln's own output to $stderr_log.
# stdin is a FIFO opened read-write: always open, never readable, never at EOF.
run_kiln() {
	cfg=$E2E_WORK/$E2E_CASE.json
	sed "s#\"/e2e/#\"$E2E_DIR/#g" "$E2E_CASES/$1" > "$cfg" || fail "cannot read $1"
	shift
	fifo=$E2E_WORK/$E2E_CASE.stdin
	rm -f "$fifo"
	mkfifo "$fifo" || fail "mkfifo $fifo"
	start=$(uptime_cs)
	bounded_kiln "$E2E_KILN_TIMEOUT" "$KILN" --no-api --config-file "$cfg" "$@" \
		> "$console" 2> "$stderr_log" <> "$fifo"
	kiln_rc=$?
	kiln_secs=$(($(uptime_cs) - start))
	kiln_secs=$((kiln_secs / 100)).$(printf '%02d' $((kiln_secs % 100)))
	rm -f "$fifo"
	echo "kiln exited $kiln_rc after ${kiln_secs}s"
	if [ "$kiln_rc" = 137 ]; then
		kiln_desc="SIGKILL (timeout)"
		fail "kiln hung: killed after ${E2E_KILN_TIMEOUT}s$(last_marker)"
	elif [ "$kiln_rc" -gt 128 ]; then
		kiln_desc="$kiln_rc: killed by signal $((kiln_rc - 128))"
	else
		kiln_desc=$kiln_rc
	fi
}

# last_marker: " (kiln exit N, last guest marker: <line>)" for failure messages.
last_marker() {
	m=$(grep -a 'KILN-E2E:' "$console" 2> /dev/null | tail -n 1 | tr -d '\r' | sed 's/.*KILN-E2E: //')
	echo " (kiln exit $kiln_desc, last guest marker: ${m:-none})"
}

expect_exit() {
	[ "$kiln_rc" = "$1" ] || fail "expected kiln to exit $1$(last_marker)"
}

# end_line STDERR-FILE: kiln's reason line, the last line it wrote (README: exit codes).
end_line() {
	tail -n 1 "$1" 2> /dev/null | tr -d '\r'
}

# expect_end REASON [STDERR-FILE [RC]]: kiln ended the way the case expects: its last stderr
# line is "kiln: exit reason=REASON code=N" and its exit status is that N (reboot, poweroff
# and signal are 0; triple-fault and error are 1). Defaults: $stderr_log and $kiln_rc.
expect_end() {
	ee_line=$(end_line "${2:-$stderr_log}")
	ee_rc=${3:-$kiln_rc}
	case $1 in reboot | poweroff | signal) ee_code=0 ;; *) ee_code=1 ;; esac
	[ "$ee_line" = "kiln: exit reason=$1 code=$ee_code" ] ||
		fail "expected kiln to end with reason $1, its last line is '$ee_line'$(last_marker)"
	[ "$ee_rc" = "$ee_code" ] || fail "kiln ended with reason $1 but exit status $ee_rc"
}

# expect_console TEXT: the guest console contains the line fragment TEXT.
expect_console() {
	grep -aqF -- "$1" "$console" || fail "guest console lacks '$1'$(last_marker)"
}

# expect_machine CONFIG.json: the guest reported as many CPUs as vcpu_count, a MemTotal
# between 80% and 100% of mem_size_mib (kiln's default 128 if absent), the SMT topology of
# "smt" (CPU 0's thread siblings: 0-1 with smt and 2+ vCPUs, else 0) and XSAVE enabled.
expect_machine() {
	want_cpus=$(json_int vcpu_count "$E2E_CASES/$1")
	want_mib=$(json_int mem_size_mib "$E2E_CASES/$1")
	line=$(grep -a 'KILN-E2E: nproc=' "$console" | tail -n 1 | tr -d '\r')
	[ -n "$line" ] || fail "guest never reported nproc/memtotal$(last_marker)"
	nproc=$(echo "$line" | sed -n 's/.*nproc=\([0-9]*\).*/\1/p')
	mem_kb=$(echo "$line" | sed -n 's/.*memtotal_kb=\([0-9]*\).*/\1/p')
	[ "${nproc:-?}" = "${want_cpus:-1}" ] ||
		fail "guest sees $nproc CPUs, vcpu_count is ${want_cpus:-1}"
	max_kb=$((${want_mib:-128} * 1024))
	if [ -z "$mem_kb" ] || [ "$mem_kb" -gt "$max_kb" ] || [ "$mem_kb" -lt $((max_kb * 80 / 100)) ]; then
		fail "guest MemTotal ${mem_kb} kB outside 80-100% of ${want_mib:-128} MiB"
	fi
	echo "guest: $nproc CPUs, MemTotal $mem_kb kB"
	siblings=0
	if tr -d ' \n' < "$E2E_CASES/$1" | grep -q '"smt":true' && [ "${want_cpus:-1}" -gt 1 ]; then
		siblings=0-1
	fi
	expect_console "KILN-E2E: smt siblings=$siblings"
	expect_console "KILN-E2E: xsave=enabled"
}

# expect_boots_and_does CONFIG.json ACTION REASON: the positive-case body: the guest booted
# to the test init, reported the configured machine, ran ACTION, and kiln ended with REASON
# (reboot or poweroff).
expect_boots_and_does() {
	run_kiln "$1"
	expect_console "KILN-E2E: ready"
	expect_machine "$1"
	expect_console "KILN-E2E: action=$2"
	if grep -aq 'KILN-E2E: error' "$console"; then
		fail "guest error: $(grep -a 'KILN-E2E: error' "$console" | head -n 1 | tr -d '\r')"
	fi
	expect_end "${3:?expect_boots_and_does: no reason}"
}
