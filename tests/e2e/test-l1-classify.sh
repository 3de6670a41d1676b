#!/bin/sh
# test-l1-classify.sh: unit test of tests/e2e/l1-classify.sh on made-up L1 consoles. Only
# the test host's own panic line (at the start of a console line) and scripts/l1-boot.sh's
# line that it stalled are an L1 crash that reruns cases; a guest's panic copied onto L1's console inside E2E-LOG lines is not, and neither is
# a QEMU killed by the overall timeout (rc 137), whatever its console says. nested_signature
# finds the emulated SVM's own failures in made-up kiln logs and QEMU dumps; a case the test
# host crashed under twice is a skip, one it stopped responding under a failure.
# Prints "PASS unit/l1-classify/<name>" or "FAIL unit/l1-classify/<name>: why"; exits 1 if
# any failed.
set -u
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/e2e/l1-classify.sh
. "$root_dir/tests/e2e/l1-classify.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-l1-classify.XXXXXX")
trap 'rm -rf "$T"' EXIT
failed=0

# console NAME LINE...: a console log of these lines, CRLF-terminated as the serial console's.
console() {
	name=$1
	shift
	: > "$T/$name"
	for l in "$@"; do printf '%s\r\n' "$l" >> "$T/$name"; done
}
# expect NAME RC TODO ATTEMPT PANIC RETRY: l1_panic prints PANIC ('' for none) and
# l1_retry_due answers RETRY (yes or no).
expect() {
	got=$(l1_panic "$T/$1")
	crash=$got
	retry=no
	l1_retry_due "$2" "$crash" "$3" "$4" && retry=yes
	if [ "$got" != "$5" ]; then
		echo "FAIL unit/l1-classify/$1: l1_panic gave '$got', want '$5'"
		failed=1
	elif [ "$retry" != "$6" ]; then
		echo "FAIL unit/l1-classify/$1: rerun '$retry', want '$6' (rc $2, crash '$crash')"
		failed=1
	else
		echo "PASS unit/l1-classify/$1"
	fi
}

boot='[    0.000000] Linux version 6.1.0-57-cloud-amd64'
ready='E2E-L1: kvm ready'
# The guest's panic, as a failed case copies its console onto L1's.
guest_panic='E2E-LOG blk-rootfs: console: [    1.912345] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)'
l1_line='[  812.345678] Kernel panic - not syncing: Fatal exception in interrupt'
l1_msg='Kernel panic - not syncing: Fatal exception in interrupt'

console l1-own-panic "$boot" "$ready" 'E2E-RESULT PASS vmlinux-1cpu-poweroff' "$l1_line" \
	'[  812.350000] Kernel Offset: disabled'
expect l1-own-panic 0 "blk-rootfs net-transfer" 0 "$l1_msg" yes
console l1-own-panic-no-time "$boot" "$ready" "${l1_line#* ] }"
expect l1-own-panic-no-time 0 "blk-rootfs" 1 "$l1_msg" yes
console l1-own-panic-retries-spent "$boot" "$ready" "$l1_line"
expect l1-own-panic-retries-spent 0 "blk-rootfs" 3 "$l1_msg" no
# crash_result NAME KIND WANT: l1_crash_result's line for a case the test host did not let
# finish twice.
crash_result() {
	got=$(l1_crash_result net-transfer "$l1_msg" "$2")
	if [ "$got" = "$3" ]; then
		echo "PASS unit/l1-classify/$1"
	else
		echo "FAIL unit/l1-classify/$1: got '$got', want '$3'"
		failed=1
	fi
}
crash_result crashed-twice-skips crash "E2E-RESULT SKIP net-transfer: the L1 test host crashed twice while it ran (the test host's failure, docs/testing.md): $l1_msg"
crash_result hung-fails hang "E2E-RESULT FAIL net-transfer: the L1 test host failed while it ran: $l1_msg"
console guest-panic-copied "$boot" "$ready" "$guest_panic" \
	'E2E-RESULT FAIL blk-rootfs: guest console lacks KILN-E2E: ready'
expect guest-panic-copied 0 "net-transfer" 0 "" no
console guest-panic-indented "$boot" "$ready" \
	'E2E-LOG blk-rootfs:   | [    1.912345] Kernel panic - not syncing: Attempted to kill init!'
expect guest-panic-indented 0 "net-transfer" 0 "" no
# scripts/l1-boot.sh stopped a test host whose vCPU no longer ran (rc 124): as a crash.
stall_msg='the test host stalled: its vCPU 1 ran for no time in 60 s (CPU#0 RIP=ffffffff81e0f4ae CR2=00007f3a1c2b4000 CR3=0000000105e3c000 HLT=1; CPU#1 RIP=ffffffff81e0f4ae CR2=0000000000000000 CR3=0000000105e3c000 HLT=1); stopped'
console l1-stalled "$boot" "$ready" 'E2E-RESULT PASS vmlinux-1cpu-poweroff' "l1-boot: $stall_msg"
expect l1-stalled 124 "net-transfer vsock-bulk" 0 "$stall_msg" yes
console l1-stalled-quoted "$boot" "$ready" "E2E-LOG net-transfer: console: l1-boot: $stall_msg"
expect l1-stalled-quoted 0 "net-transfer" 0 "" no
# The overall timeout killed QEMU (rc 137): never a rerun, with or without a panic line.
console overall-timeout "$boot" "$ready" 'E2E-RESULT PASS vmlinux-1cpu-poweroff' \
	'[ 1799.000000] kvm [2068]: vcpu0, guest rIP: 0xffffffff81073744 Unhandled WRMSR(0xc0010007) = 0xffff'
expect overall-timeout 137 "net-transfer vsock-bulk" 0 "" no
console overall-timeout-after-panic "$boot" "$ready" "$l1_line"
expect overall-timeout-after-panic 137 "net-transfer" 0 "$l1_msg" no
console all-done "$boot" "$ready" 'E2E-RESULT PASS net-transfer' "$l1_line"
expect all-done 0 "" 0 "$l1_msg" no

# signature NAME WANT LINE...: nested_signature on these log lines prints WANT ('' and
# status 1 for none).
signature() {
	name=$1 want=$2
	shift 2
	got=$(printf '%s\n' "$@" | nested_signature)
	st=$?
	if [ "$got" != "$want" ] || { [ -z "$want" ] && [ "$st" = 0 ]; } ||
		{ [ -n "$want" ] && [ "$st" != 0 ]; }; then
		echo "FAIL unit/l1-classify/signature-$name: '$got' (status $st), want '$want'"
		failed=1
	else
		echo "PASS unit/l1-classify/signature-$name"
	fi
}

pf='kiln: [WARN] vCPU 0 state: RIP=0xffffffffc063ddcc RSP=0xffffca94804bba70 RFLAGS=0x10246 CR0=0x80050033 CR2=0xffffffffc063ddcc CR3=0x136df8000 CR4=0x3506b0 EFER=0xd01 exception=injected nr=14 error_code=0x10 exits=288'
idle='kiln: [WARN] vCPU 1 state: RIP=0xffffffff8ae17a0b RSP=0xffffd48c400c8e30 RFLAGS=0x246 CR0=0x80050033 CR2=0x76b5730 CR3=0x268c000 exception=none exits=1729'
init='kiln: [ERROR] vCPU 1 triple fault: RIP=0xfff0 RSP=0x0 RFLAGS=0x2 CR0=0x10 CR2=0x0 exception=none exits=1577 (the INIT state: this host'"'"'s KVM reset the vCPU, as AMD SVM does on a triple fault, so the faulting registers are lost)'
signature pf-loop "an instruction fetch page fault re-injected at RIP = CR2 = 0xffffffffc063ddcc" "$idle" "$pf"
signature init "a triple fault that left the vCPU in the INIT state" "$init"
signature idle "" "$idle"
signature pf-elsewhere "" "$(printf '%s' "$pf" | sed 's/CR2=0xffffffffc063ddcc/CR2=0x7f0000001000/')"
signature pf-data "" "$(printf '%s' "$pf" | sed 's/error_code=0x10/error_code=0x0/')"
signature registers "" 'kiln: [ERROR] vCPU 0 triple fault: RIP=0xffffffff81000000 RSP=0x1000'
signature qemu-stuck "a QEMU vCPU stopped at RIP = CR2 = ffffffffc063ddcc" \
	'  dump: qemu: CPU#0 RIP=ffffffff8ae17a0b CR2=000000000076b573 CR3=000000000268c000 HLT=1' \
	'  dump: qemu: CPU#1 RIP=ffffffffc063ddcc CR2=ffffffffc063ddcc CR3=0000000136df8000 HLT=0'
signature qemu-reset "" '  dump: qemu: CPU#1 EIP=0000fff0 CR2=00000000 CR3=00000000 HLT=0' \
	'  dump: qemu: CPU#0 RIP=0000000000000000 CR2=0000000000000000 CR3=0000000000000000 HLT=1'
exit $failed
