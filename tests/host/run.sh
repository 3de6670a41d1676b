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

# expect_guest NAME ACTION VCPUS MEM [extra]: the guest prints and ends itself, kiln exits 0.
expect_guest() {
	write_cfg "$1" "$(tiny_cfg "$2" "$3" "$4" "${5:-}")"
	run_kiln "$1" --config-file "$T/$1.json"
	if [ "$rc" -ne 0 ]; then
		fail "$1" "exit $rc: $err"
	elif [ "$2" != t ] && [[ "$out" != *"kiln tiny guest: hello"* ]]; then
		fail "$1" "no guest output on stdout"
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

expect_guest poweroff-acpi p 1 64
expect_guest reboot-i8042 r 1 64
expect_guest reboot-acpi-reset a 1 64
expect_guest triple-fault t 1 64
expect_guest smp-4 p 4 128
expect_guest smp-32 p 32 128
expect_guest smt-2 p 2 128 ',"smt":true'
expect_guest mem-above-4g p 2 6144

# SIGTERM and SIGINT stop a running guest cleanly with exit 0.
for sig in TERM INT; do
	write_cfg "sig$sig" "$(tiny_cfg w 2 64)"
	"$KILN" --config-file "$T/sig$sig.json" >"$T/sig.out" 2>"$T/sig.err" </dev/null &
	pid=$!
	for _ in $(seq 100); do grep -q hello "$T/sig.out" && break; sleep 0.05; done
	kill -s "$sig" "$pid"
	wait "$pid"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q hello "$T/sig.out"; then pass "sig$sig"; else
		fail "sig$sig" "exit $rc: $(cat "$T/sig.err")"; fi
done

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

# Images are checked before /dev/kvm is opened: exit 2 even where KVM is unusable (here
# /dev/null stands in for it); a bzImage whose syssize claims more than the file holds
# (once loaded, and a guest triple fault) is refused naming the file.
if unshare -m true 2>/dev/null; then
	err=$(unshare -m sh -c "mount --bind /dev/null /dev/kvm &&
		exec $KILN --config-file $T/bad-kernel.json" 2>&1 </dev/null)
	rc=$?
	if [ "$rc" -eq 2 ] && grep -q "boot-source.kernel_image_path: $T/garbage.bin" <<<"$err"; then
		pass no-kvm-bad-kernel
	else fail no-kvm-bad-kernel "exit $rc: $err"; fi
else
	echo "SKIP host/no-kvm-bad-kernel: no mount namespaces"
fi
BZ=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
if [ -n "$BZ" ]; then
	head -c $(($(stat -c %s "$BZ") - 65536)) "$BZ" >"$T/short.bzImage"
	write_cfg short-bzimage "{\"boot-source\":{\"kernel_image_path\":\"$T/short.bzImage\"},
	\"machine-config\":{\"mem_size_mib\":256}}"
	expect_bad short-bzimage "$T/short.bzImage: bzImage syssize claims more" \
		--config-file "$T/short-bzimage.json"
fi

# A setup that fails after the vsock socket was bound removes it again, so a retry works.
long2=$(head -c 2100 /dev/zero | tr '\0' x)
# Debian's bzImage takes at most 2047 bytes, checked once the devices are known.
BZIMAGE=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
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
