# shellcheck shell=sh
# l1-classify.sh: how tests/e2e/run.sh reads the end of one L1 test host run; sourced by it
# and tested by tests/e2e/test-l1-classify.sh (run by scripts/check.sh). POSIX sh.

# l1_panic LOG: the L1 kernel's own panic line, if it panicked. Only the test host's kernel
# prints it at the start of a console line: guest consoles reach L1's console only as E2E-LOG
# lines.
l1_panic() {
	tr -d '\r' < "$1" | grep -m1 -E '^(\[ *[0-9]+\.[0-9]+\] )?Kernel panic - not syncing' |
		sed 's/^\[[^]]*\] //'
}

# l1_retry_due RC CRASH TODO ATTEMPT: whether the cases without a result (TODO) run again in a
# new L1: only after the test host crashed (CRASH: its own panic line, or that it stopped
# responding), never once QEMU was killed by the overall timeout (RC 137), and at most
# E2E_L1_RETRIES (3) times.
l1_retry_due() {
	[ -n "$3" ] && [ -n "$2" ] && [ "$1" != 137 ] && [ "$4" -lt "${E2E_L1_RETRIES:-3}" ]
}
