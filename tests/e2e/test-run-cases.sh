#!/bin/sh
# test-run-cases.sh: unit test of tests/e2e/run-cases.sh's rerun on made-up cases. Inside
# the test host (E2E_NESTED=1) a case whose run shows the test host's failure (a triple
# fault leaving the vCPU in the INIT state, a hang dump with an instruction fetch #PF
# re-injected at RIP = CR2) runs again, at most twice more, and the first run without it
# counts (the signature is looked for in kiln's stderr and in the log file a case gives it);
# one the host failed three times is a skip. A triple fault with registers, a #PF
# elsewhere than CR2, a real failure after a retry, a host with real KVM (E2E_NESTED unset)
# or E2E_REPEAT>1 keep the failure.
# Prints "PASS unit/run-cases/<name>" or "FAIL unit/run-cases/<name>: why"; exits 1 if any
# failed.
set -u
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-run-cases.XXXXXX")
trap 'rm -rf "$T"' EXIT
failed=0
init_line='kiln: [ERROR] vCPU 0 triple fault: RIP=0xfff0 RSP=0x0 RFLAGS=0x2 (the INIT state: this host'"'"'s KVM reset the vCPU, as AMD SVM does on a triple fault, so the faulting registers are lost)'

# make_case NAME FAILS LINE [LATER [FILE]]: a case that fails its first FAILS runs, writing
# LINE as kiln's stderr (into <case>.FILE, default 1.stderr, as a case with several kiln runs
# names it; log: the log file a case gives kiln through the API) in the first and LATER
# (default LINE) in the others, then passes.
make_case() {
	printf '%s\n' "$3" > "$T/$1.line"
	printf '%s\n' "${4-$3}" > "$T/$1.later"
	cat > "$T/cases/$1.sh" <<CASE
n=\$(cat "$T/count.$1" 2> /dev/null || echo 0)
echo \$((n + 1)) > "$T/count.$1"
if [ "\$n" -lt $2 ]; then
	if [ "\$n" = 0 ]; then line="$T/$1.line"; else line="$T/$1.later"; fi
	cat "\$line" > "\$E2E_WORK/\$E2E_CASE.${5:-1.stderr}"
	echo "FAIL: run \$((n + 1)) failed"
	exit 1
fi
echo PASS
CASE
}

# expect NAME NESTED REPEAT RESULT RUNS RETRIES: run-cases.sh gives case NAME the result line
# RESULT (its start), ran it RUNS times and reported RETRIES of them as E2E-RETRY.
expect() {
	rm -f "$T"/count.*
	out=$(KILN=/bin/true E2E_DIR="$T" E2E_WORK="$T/work" E2E_ONLY="$1" E2E_NESTED="$2" \
		E2E_REPEAT="$3" E2E_KILN_TIMEOUT=5 sh "$root_dir/tests/e2e/run-cases.sh" "$T/cases")
	got=$(printf '%s\n' "$out" | grep '^E2E-RESULT' | head -n 1)
	runs=$(cat "$T/count.$1" 2> /dev/null || echo 0)
	retry=$(printf '%s\n' "$out" | grep -c "^E2E-RETRY $1: ")
	label="$1/nested=$2,repeat=$3"
	if [ "${got#"$4"}" = "$got" ]; then
		echo "FAIL unit/run-cases/$label: result '$got', want '$4...'"
		failed=1
	elif [ "$runs" != "$5" ]; then
		echo "FAIL unit/run-cases/$label: ran $runs times, want $5"
		failed=1
	elif [ "$retry" != "$6" ]; then
		echo "FAIL unit/run-cases/$label: $retry E2E-RETRY lines for $runs runs"
		failed=1
	else
		echo "PASS unit/run-cases/$label"
	fi
}

mkdir -p "$T/cases" "$T/work"
pf='kiln: [WARN] vCPU 0 hang dump: RIP=0xffffffffc03a1000 RSP=0xffffc90000003e88 RFLAGS=0x46 CR0=0x80050033 CR2=0xffffffffc03a1000 CR3=0x2a0c000 CR4=0x3606f0 EFER=0xd01 CS=0x10/0x0/0xffffffff SS=0x18/0x0/0xffffffff GDTR=0xfffffe0000001000/0x7f IDTR=0xfffffe0000000000/0xfff exception=injected nr=14 error_code=0x10 exits=149 last_io=mmio-read@0xd0000060'
pf_elsewhere=$(printf '%s\n' "$pf" | sed 's/CR2=0xffffffffc03a1000/CR2=0x7f0000001000/')
make_case init-once 1 "$init_line"
make_case init-twice 2 "$init_line"
make_case init-always 3 "$init_line"
make_case pf-once 1 "$pf"
make_case pf-always 3 "$pf" "$init_line"
make_case pf-then-real 2 "$pf" 'kiln: [ERROR] virtio-net: bad descriptor'
make_case pf-elsewhere 1 "$pf_elsewhere"
make_case pf-in-log 1 "$pf" "$pf" log
make_case registers 1 'kiln: [ERROR] vCPU 0 triple fault: RIP=0xffffffff81000000 RSP=0x1000'
expect init-once 1 1 "E2E-RESULT PASS init-once" 2 1
expect init-twice 1 1 "E2E-RESULT PASS init-twice" 3 2
expect init-always 1 1 "E2E-RESULT SKIP init-always: the L1 test host failed all 3 runs (a triple fault" 3 3
expect pf-once 1 1 "E2E-RESULT PASS pf-once" 2 1
expect pf-always 1 1 "E2E-RESULT SKIP pf-always: the L1 test host failed all 3 runs (a triple fault" 3 3
expect pf-then-real 1 1 "E2E-RESULT FAIL pf-then-real: run 2 failed" 2 1
expect pf-in-log 1 1 "E2E-RESULT PASS pf-in-log" 2 1
expect pf-elsewhere 1 1 "E2E-RESULT FAIL pf-elsewhere: run 1 failed" 1 0
expect registers 1 1 "E2E-RESULT FAIL registers: run 1 failed" 1 0
expect init-once 0 1 "E2E-RESULT FAIL init-once: run 1 failed" 1 0
expect init-once 1 2 "E2E-RESULT FAIL init-once: run 1 failed" 2 0
exit $failed
