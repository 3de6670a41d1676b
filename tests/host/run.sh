#!/bin/bash
# Host tests: build/kiln runs the tiny test guest (tests/guest/tiny) on this host's /dev/kvm,
# which may be the nested PVM KVM that cannot boot Linux. Covers every way a VM ends, SMP
# setup, large memory, and bad input that must exit 2 with one line naming the key.
# Prints "PASS host/<name>" or "FAIL host/<name>: why" per case; exits 1 if any failed.
set -u
BUILD=${BUILD:-build}
KILN=${KILN:-$BUILD/kiln}
TINY=${TINY:-$BUILD/tiny-guest.elf}
T=$(mktemp -d /tmp/kiln-host.XXXXXX)
trap 'rm -rf "$T"' EXIT
failed=0

pass() { echo "PASS host/$1"; }
fail() { echo "FAIL host/$1: $2"; failed=1; }

if [ ! -w /dev/kvm ]; then
	echo "SKIP host/*: no usable /dev/kvm"
	exit 0
fi

# write_cfg NAME JSON-BODY: writes $T/NAME.json
write_cfg() { printf '%s\n' "$2" >"$T/$1.json"; }

# run_kiln NAME [args...]: runs kiln with a timeout; sets rc, out, err.
run_kiln() {
	local name=$1
	shift
	timeout 30 "$KILN" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
	rc=$?
	out=$(cat "$T/$name.out")
	err=$(cat "$T/$name.err")
}

tiny_cfg() { # tiny_cfg ACTION VCPUS MEM [extra machine-config]
	printf '{"boot-source":{"kernel_image_path":"%s","boot_args":"%s"},
	"machine-config":{"vcpu_count":%s,"mem_size_mib":%s%s}}' "$TINY" "$1" "$2" "$3" "${4:-}"
}

# The documented last stderr line of a VM that ran (README, "Exit codes").
reason_line() { printf 'kiln: exit reason=%s code=%s' "$1" "$2"; }

# The register dump of one vCPU (vmm/vcpu_state.c), after "vCPU <n> <what>: ".
HEX='0x[0-9a-f]+'
SEG="$HEX/$HEX/$HEX"
STATE_RE="RIP=$HEX RSP=$HEX RFLAGS=$HEX CR0=$HEX CR2=$HEX CR3=$HEX CR4=$HEX EFER=$HEX CS=$SEG"
STATE_RE+=" SS=$SEG GDTR=$HEX/$HEX IDTR=$HEX/$HEX exception=(none|(injected|pending) nr=[0-9]+"
STATE_RE+=" error_code=($HEX|none))\$"

# expect_guest NAME ACTION VCPUS MEM REASON [extra]: the guest prints and ends itself; kiln
# exits 0 (1 for a triple fault) and its last stderr line names REASON.
expect_guest() {
	local code=0
	[ "$5" = triple-fault ] && code=1
	write_cfg "$1" "$(tiny_cfg "$2" "$3" "$4" "${6:-}")"
	run_kiln "$1" --config-file "$T/$1.json"
	local last
	last=$(printf '%s\n' "$err" | tail -n 1)
	if [ "$rc" -ne "$code" ]; then
		fail "$1" "exit $rc, expected $code: $err"
	elif [ "$last" != "$(reason_line "$5" "$code")" ]; then
		fail "$1" "last stderr line '$last', expected '$(reason_line "$5" "$code")'"
	elif [ "$2" != t ] && [[ "$out" != *"kiln tiny guest: hello"* ]]; then
		fail "$1" "no guest output on stdout"
	elif [ "$2" = t ] && ! grep -Eq "^kiln: \[ERROR\] vCPU 0 triple fault: $STATE_RE" <<<"$err"; then
		fail "$1" "no register dump of the triple-faulting vCPU: $err"
	else
		pass "$1"
	fi
}

# expect_bad NAME PATTERN args...: exit 2, exactly one stderr line matching PATTERN.
expect_bad() {
	local name=$1 pattern=$2
	shift 2
	run_kiln "$name" "$@"
	local lines
	lines=$(printf '%s\n' "$err" | grep -c .)
	if [ "$rc" -ne 2 ]; then
		fail "$name" "exit $rc, expected 2 ($err)"
	elif [ "$lines" -ne 1 ] || ! grep -q -- "$pattern" <<<"$err"; then
		fail "$name" "expected one line matching '$pattern', got: $err"
	elif [ -n "$out" ]; then
		fail "$name" "guest output although the config was bad"
	else
		pass "$name"
	fi
}

expect_guest poweroff-acpi p 1 64 poweroff
expect_guest reboot-i8042 r 1 64 reboot
expect_guest reboot-acpi-reset a 1 64 reboot
expect_guest triple-fault t 1 64 triple-fault
expect_guest smp-4 p 4 128 poweroff
expect_guest smp-32 p 32 128 poweroff
expect_guest smt-2 p 2 128 poweroff ',"smt":true'
expect_guest mem-above-4g p 2 6144 poweroff

# state_lines FILE: how many vCPU register dumps FILE holds.
state_lines() { grep -Ec "^kiln: \[WARN\] vCPU [0-9]+ state: $STATE_RE" "$1"; }

# start_waiting NAME VCPUS: a guest that waits forever, in the background (pid in $pid).
start_waiting() {
	write_cfg "$1" "$(tiny_cfg w "$2" 64)"
	"$KILN" --config-file "$T/$1.json" >"$T/$1.out" 2>"$T/$1.err" </dev/null &
	pid=$!
	for _ in $(seq 100); do grep -qs hello "$T/$1.out" && break; sleep 0.05; done
}

# SIGTERM and SIGINT stop a running guest cleanly with exit 0; SIGTERM dumps the state of
# every vCPU (2 here) first.
for sig in TERM INT; do
	start_waiting "sig$sig" 2
	kill -s "$sig" "$pid"
	wait "$pid"
	rc=$?
	want=0
	[ "$sig" = TERM ] && want=2
	last=$(tail -n 1 "$T/sig$sig.err")
	if [ "$rc" -ne 0 ] || ! grep -q hello "$T/sig$sig.out"; then
		fail "sig$sig" "exit $rc: $(cat "$T/sig$sig.err")"
	elif [ "$last" != "$(reason_line signal 0)" ]; then
		fail "sig$sig" "last stderr line '$last', expected '$(reason_line signal 0)'"
	elif [ "$(state_lines "$T/sig$sig.err")" -ne "$want" ]; then
		fail "sig$sig" "expected $want vCPU state lines: $(cat "$T/sig$sig.err")"
	else
		pass "sig$sig"
	fi
done

# SIGUSR2 dumps every vCPU's registers (the APs never left wait-for-SIPI: the kick still
# gets them out of KVM_RUN) and keeps the VM running; a SIGTERM afterwards dumps them again.
start_waiting dump-sigusr2 2
kill -USR2 "$pid"
for _ in $(seq 100); do [ "$(state_lines "$T/dump-sigusr2.err")" -ge 2 ] && break; sleep 0.05; done
sleep 0.3
dumped=$(state_lines "$T/dump-sigusr2.err")
alive=0
kill -0 "$pid" 2>/dev/null && alive=1
kill -TERM "$pid"
wait "$pid"
rc=$?
v0=$(grep -c '^kiln: \[WARN\] vCPU 0 state: ' "$T/dump-sigusr2.err")
v1=$(grep -c '^kiln: \[WARN\] vCPU 1 state: ' "$T/dump-sigusr2.err")
if [ "$alive" -ne 1 ] || [ "$dumped" -ne 2 ]; then
	fail dump-sigusr2 "after SIGUSR2: running $alive, $dumped state lines: $(cat "$T/dump-sigusr2.err")"
elif [ "$rc" -ne 0 ] || [ "$v0" -ne 2 ] || [ "$v1" -ne 2 ]; then
	fail dump-sigusr2 "after SIGTERM: exit $rc, $v0/$v1 dumps: $(cat "$T/dump-sigusr2.err")"
elif [ "$(tail -n 1 "$T/dump-sigusr2.err")" != "$(reason_line signal 0)" ]; then
	fail dump-sigusr2 "last line: $(tail -n 1 "$T/dump-sigusr2.err")"
else
	pass dump-sigusr2
fi

# Bad input: exit 2 with one line naming what is wrong, no guest started.
expect_bad no-args "config-file"
expect_bad unknown-option "--frobnicate" --frobnicate
expect_bad missing-config "nope.json" --config-file "$T/nope.json"
write_cfg missing-kernel '{"boot-source":{"kernel_image_path":"/nonexistent/vmlinux"}}'
expect_bad missing-kernel "boot-source.kernel_image_path" --config-file "$T/missing-kernel.json"
echo "not a kernel" >"$T/garbage.bin"
write_cfg bad-kernel "{\"boot-source\":{\"kernel_image_path\":\"$T/garbage.bin\"}}"
expect_bad bad-kernel "boot-source.kernel_image_path" --config-file "$T/bad-kernel.json"
head -c 4200 "$TINY" >"$T/truncated.elf" # inside its PT_LOAD segment
write_cfg truncated-kernel "{\"boot-source\":{\"kernel_image_path\":\"$T/truncated.elf\"}}"
expect_bad truncated-kernel "kernel_image_path" --config-file "$T/truncated-kernel.json"
truncate -s 80M "$T/big.initrd"
write_cfg initrd-too-big "{\"boot-source\":{\"kernel_image_path\":\"$TINY\",
	\"initrd_path\":\"$T/big.initrd\"},\"machine-config\":{\"mem_size_mib\":64}}"
expect_bad initrd-too-big "boot-source.initrd_path" --config-file "$T/initrd-too-big.json"
long=$(head -c 70000 /dev/zero | tr '\0' x)
write_cfg long-cmdline "{\"boot-source\":{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"$long\"}}"
expect_bad long-cmdline "boot-source.boot_args" --config-file "$T/long-cmdline.json"
write_cfg bad-vcpus "$(tiny_cfg p 33 64)"
expect_bad bad-vcpus "machine-config.vcpu_count" --config-file "$T/bad-vcpus.json"
write_cfg unknown-key '{"boot-source":{"kernel_image_path":"/x","kernel_typo":1}}'
expect_bad unknown-key "kernel_typo" --config-file "$T/unknown-key.json"

# A setup that fails after the vsock socket was bound removes it again, so a retry works.
long2=$(head -c 2100 /dev/zero | tr '\0' x)
# Debian's bzImage takes at most 2047 bytes, checked once the devices are known.
BZIMAGE=${BZIMAGE:-$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)}
if [ -n "$BZIMAGE" ]; then
	write_cfg vsock-cleanup "{\"boot-source\":{\"kernel_image_path\":\"$BZIMAGE\",
	\"boot_args\":\"$long2\"},\"machine-config\":{\"mem_size_mib\":256},
	\"vsock\":{\"guest_cid\":3,\"uds_path\":\"$T/v.sock\"}}"
	expect_bad vsock-cleanup "boot-source.boot_args" --config-file "$T/vsock-cleanup.json"
	if [ -e "$T/v.sock" ]; then fail vsock-cleanup-socket "socket file left behind"; else
		pass vsock-cleanup-socket; fi
else
	echo "SKIP host/vsock-cleanup: no Debian cloud kernel in /boot"
fi
write_cfg vsock-ok "{\"boot-source\":{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"p\"},
	\"vsock\":{\"guest_cid\":3,\"uds_path\":\"$T/v.sock\"}}"
run_kiln vsock-ok --config-file "$T/vsock-ok.json"
if [ "$rc" -eq 0 ] && [ ! -e "$T/v.sock" ]; then pass vsock-socket-removed-at-exit; else
	fail vsock-socket-removed-at-exit "exit $rc: $err"; fi

# Metrics: one JSON line at exit naming the exit reason (written under the vmm filter).
write_cfg metrics "{\"boot-source\":{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"r\"},
	\"metrics\":{\"metrics_path\":\"$T/kiln-metrics.ndjson\"}}"
run_kiln metrics --config-file "$T/metrics.json"
if [ "$rc" -eq 0 ] && [ "$(grep -c . "$T/kiln-metrics.ndjson")" -eq 1 ] &&
	grep -q '"exit_reason":"reboot"' "$T/kiln-metrics.ndjson" &&
	grep -q '"uart":{"write_count":23}' "$T/kiln-metrics.ndjson"; then
	pass metrics
else
	fail metrics "exit $rc: $err: $(cat "$T/kiln-metrics.ndjson" 2>/dev/null)"
fi

run_kiln version --version
if [ "$rc" -eq 0 ] && [[ "$out" == kiln\ * ]]; then pass version; else fail version "rc $rc"; fi
run_kiln help --help
if [ "$rc" -eq 0 ] && [[ "$out" == *--config-file* ]]; then pass help; else fail help "rc $rc"; fi
exit $failed
