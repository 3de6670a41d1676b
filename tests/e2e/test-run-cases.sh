#!/bin/sh
# test-run-cases.sh: unit test of tests/e2e/run-cases.sh's rerun on made-up cases. Inside
# the test host (E2E_NESTED=1) a case whose guest triple-faulted with the vCPU in the INIT
# state runs once more and the second run counts; a triple fault with registers, a second
# such failure, a host with real KVM (E2E_NESTED unset) or E2E_REPEAT>1 keep the failure.
# Prints "PASS unit/run-cases/<name>" or "FAIL unit/run-cases/<name>: why"; exits 1 if any
# failed.
set -u
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-run-cases.XXXXXX")
trap 'rm -rf "$T"' EXIT
failed=0
init_line='kiln: [ERROR] vCPU 0 triple fault: RIP=0xfff0 RSP=0x0 RFLAGS=0x2 (the INIT state: this host'"'"'s KVM reset the vCPU, as AMD SVM does on a triple fault, so the faulting registers are lost)'

# make_case NAME FAILS LINE: a case that fails its first FAILS runs, writing LINE as kiln's
# stderr (into <case>.1.stderr, as a case with several kiln runs names it), then passes.
make_case() {
	printf '%s\n' "$3" > "$T/$1.line"
	cat > "$T/cases/$1.sh" <<CASE
n=\$(cat "$T/count.$1" 2> /dev/null || echo 0)
echo \$((n + 1)) > "$T/count.$1"
if [ "\$n" -lt $2 ]; then
	cat "$T/$1.line" > "\$E2E_WORK/\$E2E_CASE.1.stderr"
	echo "FAIL: run \$((n + 1)) failed"
	exit 1
fi
echo PASS
CASE
}

# expect NAME NESTED REPEAT RESULT RUNS: run-cases.sh gives case NAME the result line RESULT
# (its start) and ran it RUNS times.
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
	elif [ "$retry" != $(($5 > $3 ? 1 : 0)) ]; then
		echo "FAIL unit/run-cases/$label: $retry E2E-RETRY lines for $runs runs"
		failed=1
	else
		echo "PASS unit/run-cases/$label"
	fi
}

mkdir -p "$T/cases" "$T/work"
make_case init-once 1 "$init_line"
make_case init-twice 2 "$init_line"
make_case registers 1 'kiln: [ERROR] vCPU 0 triple fault: RIP=0xffffffff81000000 RSP=0x1000'
expect init-once 1 1 "E2E-RESULT PASS init-once" 2
expect init-twice 1 1 "E2E-RESULT FAIL init-twice: run 2 failed" 2
expect registers 1 1 "E2E-RESULT FAIL registers: run 1 failed" 1
expect init-once 0 1 "E2E-RESULT FAIL init-once: run 1 failed" 1
expect init-once 1 2 "E2E-RESULT FAIL init-once: run 1 failed" 2
exit $failed
