# shellcheck shell=sh
# l1-classify.sh: how tests/e2e/run.sh reads the end of one L1 test host run, and how
# run-cases.sh and the vs-qemu benches tell the test host's own failures in a VMM's log;
# sourced by them and tested by tests/e2e/test-l1-classify.sh (run by scripts/check.sh).
# POSIX sh (busybox is enough).

# l1_panic LOG: the L1 kernel's own panic line, if it panicked, or scripts/l1-boot.sh's line
# that the test host stalled (a vCPU of it stopped running for good). Only the test host's
# kernel and l1-boot.sh print those at the start of a console line: guest consoles reach
# L1's console only as E2E-LOG lines.
l1_panic() {
	tr -d '\r' < "$1" |
		grep -m1 -E '^((\[ *[0-9]+\.[0-9]+\] )?Kernel panic - not syncing|l1-boot: the test host stalled)' |
		sed 's/^\[[^]]*\] //; s/^l1-boot: //'
}

# l1_retry_due RC CRASH TODO ATTEMPT: whether the cases without a result (TODO) run again in a
# new L1: only after the test host crashed (CRASH: its own panic line, or that it stopped
# responding), never once QEMU was killed by the overall timeout (RC 137), and at most
# E2E_L1_RETRIES (3) times.
l1_retry_due() {
	[ -n "$3" ] && [ -n "$2" ] && [ "$1" != 137 ] && [ "$4" -lt "${E2E_L1_RETRIES:-3}" ]
}

# l1_crash_result CASE CRASH KIND: the E2E-RESULT line of a case that the test host did not
# let finish twice. KIND "crash" (its own kernel panicked or it stalled: the emulated CPU's
# failures, docs/testing.md, seen under QEMU microvm as well) is the host that could not run
# the case: a skip. KIND "hang" (it stopped printing while the case ran) is a finding about
# the case: a failure.
l1_crash_result() {
	case $3 in
	hang) echo "E2E-RESULT FAIL $1: the L1 test host failed while it ran: $2" ;;
	*) echo "E2E-RESULT SKIP $1: the L1 test host crashed twice while it ran (the test host's failure, docs/testing.md): $2" ;;
	esac
}

# qemu_registers MON: a running QEMU's vCPUs, one "CPU#N RIP=... CR2=... CR3=... HLT=N" line
# each, asked of its monitor on the FIFO pair MON.in/MON.out (-chardev pipe,path=MON;
# `info registers -a`): the state nested_signature reads for QEMU, and what l1-boot.sh
# reports of a stalled test host. Nothing if the monitor does not answer within a few
# seconds; the write is bounded too, as a FIFO nobody holds open would block it.
qemu_registers() {
	timeout 2 sh -c 'printf "info registers -a\n" > "$1"' sh "$1.in" || return 0
	sleep 1
	timeout 2 cat "$1.out" 2> /dev/null | tr -d '\r' | awk '
		/^CPU#/ { c = $1 }
		/^[RE]IP=/ { rip = $1; hlt = $NF }
		/^CR0=/ { print c, rip, $2, $3, hlt }'
}

# nested_signature: reads a VMM's log (kiln's stderr with its hang dump, or the bench's
# "dump: qemu:" lines) on stdin; prints which failure of the test host's emulated nested SVM
# it shows (docs/testing.md) and returns 0, else returns 1:
#   - a guest triple fault that left the vCPU in the INIT state (kiln's "triple fault: ...
#     (the INIT state" line);
#   - a vCPU with an instruction-fetch page fault (error code 0x10) being injected at a RIP
#     equal to CR2 (kiln's hang dump), or, in QEMU's register dump, a vCPU at a RIP equal
#     to CR2 (QEMU does not show the injected exception).
nested_signature() {
	awk '
	function field(name,   i) {
		for (i = 1; i <= NF; i++)
			if (index($i, name "=") == 1)
				return substr($i, length(name) + 2)
		return ""
	}
	/triple fault: .*\(the INIT state/ {
		print "a triple fault that left the vCPU in the INIT state"
		found = 1
		exit
	}
	/exception=injected nr=14 error_code=0x10/ && field("RIP") != "" && field("RIP") == field("CR2") {
		print "an instruction fetch page fault re-injected at RIP = CR2 = " field("RIP")
		found = 1
		exit
	}
	/dump: qemu: CPU#/ && field("RIP") ~ /[1-9a-f]/ && field("RIP") == field("CR2") {
		print "a QEMU vCPU stopped at RIP = CR2 = " field("RIP")
		found = 1
		exit
	}
	END { exit !found }'
}
