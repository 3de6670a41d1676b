#!/bin/bash
# Host tests: build/kiln runs the tiny test guest (tests/guest/tiny) on this host's /dev/kvm,
# which may be the nested PVM KVM that cannot boot Linux. Covers every way a VM ends, SMP
# (the guest starts every CPU of the MADT and each reports its APIC id and topology), RAM
# above 4 GiB written and read back, the vsock socket's life, and bad input that must exit
# 2 with one line naming the key.
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
	timeout -k 5 30 "$KILN" --no-api "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
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
STATE_RE+=" error_code=($HEX|none)) exits=[0-9]+( last_io=(pio|mmio)-(read|write)@$HEX)?"
STATE_RE+="( \(the INIT state: [^)]*\))?\$"

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

# expect_cpus NAME VCPUS THREADS [extra]: the guest starts every CPU kiln's MADT lists
# (INIT-SIPI-SIPI into real mode); each reports its CPUID APIC id and threads per core
# (leaf 0xB or AMD's 0x8000001E). The MADT and the reported ids must both be 0..VCPUS-1.
expect_cpus() {
	local name=$1 n=$2 tpc=$3 want madt got threads
	write_cfg "$name" "$(tiny_cfg s "$n" 128 "${4:-}")"
	run_kiln "$name" --config-file "$T/$name.json"
	want=$(seq 0 $((n - 1)) | tr '\n' ' ')
	madt=$(sed -n 's/^kiln tiny guest: madt apic ids: //p' <<<"$out")
	got=$(sed -n 's/^kiln tiny guest: cpu \([0-9]*\) up, .*/\1/p' <<<"$out" | sort -n | tr '\n' ' ')
	threads=$(sed -n 's/^kiln tiny guest: cpu .* threads per core //p' <<<"$out" | sort -u)
	if [ "$rc" -ne 0 ]; then
		fail "$name" "exit $rc: $err"
	elif [ "$(printf '%s\n' "$err" | tail -n 1)" != "$(reason_line poweroff 0)" ]; then
		fail "$name" "last stderr line is not '$(reason_line poweroff 0)': $err"
	elif ! grep -qx "kiln tiny guest: all $n cpus up" <<<"$out"; then
		fail "$name" "not every CPU came up: $(grep -v 'cpu .* up,' <<<"$out" | tr '\n' ';')"
	elif [ "$madt " != "$want" ] || [ "$got" != "$want" ]; then
		fail "$name" "APIC ids in the MADT '$madt', reported by the CPUs '$got', want '$want'"
	elif [ "$threads" = 0 ]; then
		echo "SKIP host/$name/threads-per-core: the guest sees no CPUID topology leaf"
		pass "$name"
	elif [ "$threads" != "$tpc" ]; then
		fail "$name" "threads per core '$(tr '\n' ' ' <<<"$threads")', want $tpc"
	else
		pass "$name"
	fi
}
expect_cpus smp-4 4 1
expect_cpus smp-32 32 1
expect_cpus smt-2 2 2 ',"smt":true'

# The guest maps what the e820 map lists above 4 GiB and writes and reads back 4 GiB + 16 MiB
# and the last page: 6144 MiB is 3.25 GiB below the MMIO gap at 0xd0000000 and 2.75 GiB from
# 4 GiB on, so RAM ends at 0x1b0000000.
write_cfg mem-above-4g "$(tiny_cfg m 2 6144)"
run_kiln mem-above-4g --config-file "$T/mem-above-4g.json"
if [ "$rc" -ne 0 ]; then
	fail mem-above-4g "exit $rc: $err"
elif [ "$(printf '%s\n' "$err" | tail -n 1)" != "$(reason_line poweroff 0)" ]; then
	fail mem-above-4g "last stderr line is not '$(reason_line poweroff 0)': $err"
elif ! grep -qx "kiln tiny guest: ram ends at 0x1b0000000" <<<"$out" ||
	! grep -qx "kiln tiny guest: high memory ok" <<<"$out"; then
	fail mem-above-4g "$(tr '\n' ';' <<<"$out") $err"
else
	pass mem-above-4g
fi

# state_lines FILE: how many vCPU register dumps FILE holds.
state_lines() { grep -Ec "^kiln: \[WARN\] vCPU [0-9]+ state: $STATE_RE" "$1"; }

# start_waiting NAME VCPUS: a guest that waits forever, in the background (pid in $pid).
start_waiting() {
	write_cfg "$1" "$(tiny_cfg w "$2" 64)"
	"$KILN" --no-api --config-file "$T/$1.json" >"$T/$1.out" 2>"$T/$1.err" </dev/null &
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
# expect_settles NAME FUNC WANT WHAT: passes NAME once FUNC prints WANT, trying for 5 s:
# kiln's threads may not all exist, nor have named themselves or switched policy, by the
# time vCPU 0 prints (seen on a PVM host, where the tiny guest runs at once).
expect_settles() {
	local got
	for _ in $(seq 100); do
		got=$("$2")
		[ "$got" = "$3" ] && break
		sleep 0.05
	done
	if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "$4 '$got', want '$3'"; fi
}
# The threads are named as Firecracker names its own ("fc_vcpu N"): the main thread keeps
# the binary's name. KVM's own worker in the process (kvm-nx-lpage-recovery, on some
# hosts) is not kiln's.
thread_names() {
	cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -v '^kvm-' | sort | tr '\n' ','
}
expect_settles thread-names thread_names "$(basename "$KILN" | cut -c1-15),kiln_vcpu 0,kiln_vcpu 1," \
	"threads named"
# The event loop's thread (the main one) runs SCHED_BATCH once the vCPU threads exist, so a
# wake-up of it does not preempt a vCPU thread; those stay SCHED_OTHER (policy 3 and 0 in
# /proc/PID/task/TID/stat, field 41).
thread_policies() {
	local t stat comm
	for t in /proc/"$pid"/task/*; do
		stat=$(cat "$t/stat" 2>/dev/null) && comm=$(cat "$t/comm" 2>/dev/null) || continue
		read -r -a fields <<<"${stat##*) }"
		echo "$comm=${fields[38]}"
	done | grep -v '^kvm-' | sort | tr '\n' ','
}
expect_settles thread-policies thread_policies \
	"$(basename "$KILN" | cut -c1-15)=3,kiln_vcpu 0=0,kiln_vcpu 1=0," "thread policies"
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
# The key and the path, in one line.
expect_bad missing-kernel "boot-source.kernel_image_path: /nonexistent/vmlinux: " \
	--config-file "$T/missing-kernel.json"
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
		exec $KILN --no-api --config-file $T/bad-kernel.json" 2>&1 </dev/null)
	rc=$?
	if [ "$rc" -eq 2 ] && grep -q "boot-source.kernel_image_path: $T/garbage.bin" <<<"$err"; then
		pass no-kvm-bad-kernel
	else fail no-kvm-bad-kernel "exit $rc: $err"; fi
else
	echo "SKIP host/no-kvm-bad-kernel: no mount namespaces"
fi
# A made-up bzImage (a setup header and a payload never run), 8 KiB:
put_bytes() { printf "$3" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none; }
head -c 8192 /dev/zero >"$T/fake.bzImage"
# setup_sects 1; syssize 448 paragraphs; boot_flag, a jump over the header, "HdrS", protocol 2.15; alignment 4 KiB,
# relocatable, 64-bit entry, cmdline_size 64; pref_address 1 MiB, init_size 8 KiB; should
# it boot after all, its 64-bit entry powers off (mov $0x600,%dx; mov $0x34,%al; out; hlt).
put_bytes "$T/fake.bzImage" 0x1f1 '\x01'
put_bytes "$T/fake.bzImage" 0x1f4 '\xc0\x01' # syssize: the 7 KiB after the setup sectors
put_bytes "$T/fake.bzImage" 0x1fe '\x55\xaa\xeb\x66HdrS\x0f\x02'
put_bytes "$T/fake.bzImage" 0x230 '\x00\x10\x00\x00\x01\x00\x01\x00\x40'
put_bytes "$T/fake.bzImage" 0x258 '\x00\x00\x10\x00\x00\x00\x00\x00\x00\x20'
put_bytes "$T/fake.bzImage" 0x600 '\x66\xba\x00\x06\xb0\x34\xee\xf4'

# A bzImage cut short (its syssize claims more than the file holds): the stock kernel less
# its last 64 KiB where there is one (/boot), else the made-up one less its last 4 KiB, so
# the case runs on every host, the test host's initramfs root too.
BZ=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
if [ -n "$BZ" ]; then
	head -c $(($(stat -c %s "$BZ") - 65536)) "$BZ" >"$T/short.bzImage"
else
	head -c 4096 "$T/fake.bzImage" >"$T/short.bzImage"
fi
write_cfg short-bzimage "{\"boot-source\":{\"kernel_image_path\":\"$T/short.bzImage\"},
	\"machine-config\":{\"mem_size_mib\":256}}"
expect_bad short-bzimage "$T/short.bzImage: bzImage syssize claims more" \
	--config-file "$T/short-bzimage.json"

# A setup that fails after the vsock socket was bound removes it again, so a retry works.
# A bzImage's command line limit is checked once the devices, vsock last, exist: kiln's own
# device arguments (--virtio-mmio-cmdline) push 40 bytes of boot_args over the 64 bytes of
# the made-up bzImage. The socket's directory starts with an mtime of 1970: a bind and an
# unlink in it make it new, so the check fails if the socket never existed.
mkdir "$T/vs"
write_cfg vsock-cleanup "{\"boot-source\":{\"kernel_image_path\":\"$T/fake.bzImage\",
	\"boot_args\":\"$(head -c 40 /dev/zero | tr '\0' x)\"},
	\"vsock\":{\"guest_cid\":3,\"uds_path\":\"$T/vs/v.sock\"}}"
touch -d @0 "$T/vs"
expect_bad vsock-cleanup "boot-source.boot_args" --virtio-mmio-cmdline \
	--config-file "$T/vsock-cleanup.json"
if [ -e "$T/vs/v.sock" ]; then
	fail vsock-cleanup-socket "socket file left behind"
elif [ "$(stat -c %Y "$T/vs")" -eq 0 ]; then
	fail vsock-cleanup-socket "nothing was created in $T/vs: the socket was never bound"
else
	pass vsock-cleanup-socket
fi
# The same device while the guest runs: the socket is there, and gone after a SIGTERM.
write_cfg vsock-running "{\"boot-source\":{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"w\"},
	\"vsock\":{\"guest_cid\":3,\"uds_path\":\"$T/vs/v.sock\"}}"
"$KILN" --no-api --config-file "$T/vsock-running.json" >"$T/vsock-running.out" 2>"$T/vsock-running.err" \
	</dev/null &
pid=$!
sock=no
for _ in $(seq 100); do
	[ -S "$T/vs/v.sock" ] && sock=yes && break
	sleep 0.05
done
kill -TERM "$pid"
wait "$pid"
rc=$?
if [ "$sock" != yes ]; then
	fail vsock-socket-while-running "no socket at $T/vs/v.sock: $(cat "$T/vsock-running.err")"
elif [ "$rc" -ne 0 ] || [ -e "$T/vs/v.sock" ]; then
	fail vsock-socket-while-running "exit $rc, socket $(ls "$T/vs"): $(cat "$T/vsock-running.err")"
else
	pass vsock-socket-while-running
fi
touch -d @0 "$T/vs"
write_cfg vsock-ok "{\"boot-source\":{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"p\"},
	\"vsock\":{\"guest_cid\":3,\"uds_path\":\"$T/vs/v.sock\"}}"
run_kiln vsock-ok --config-file "$T/vsock-ok.json"
if [ "$rc" -eq 0 ] && [ ! -e "$T/vs/v.sock" ] && [ "$(stat -c %Y "$T/vs")" -ne 0 ]; then
	pass vsock-socket-removed-at-exit
else
	fail vsock-socket-removed-at-exit "exit $rc, $(ls "$T/vs") in $T/vs: $err"
fi

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

# Metrics' vcpu object (Firecracker's fields, summed over the vCPUs): the guest prints its
# line through the 8250 (one port write per byte) and writes once at 0xc0000000 (no device
# there without --boot-timer: still an MMIO exit). KVM's own counts ("kvm") where this KVM
# has binary stats: its exits at least as many as those kiln saw.
write_cfg metrics-vcpu "{\"boot-source\":{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"b\"},
	\"metrics\":{\"metrics_path\":\"$T/vcpu-metrics.ndjson\"}}"
run_kiln metrics-vcpu --config-file "$T/metrics-vcpu.json"
line=$(cat "$T/vcpu-metrics.ndjson" 2>/dev/null)
field() { sed -n "s/.*\"$1\":{[^}]*\"$2\":\([0-9]*\).*/\1/p" <<<"$line"; }
io_out=$(field vcpu exit_io_out)
mmio_w=$(field vcpu exit_mmio_write)
kvm_exits=$(field kvm exits)
if [ "$rc" -ne 0 ] || [ -z "$io_out" ] || [ "$(field vcpu failures)" != 0 ]; then
	fail metrics-vcpu "exit $rc: $err: $line"
elif [ "$io_out" -lt 23 ] || [ "$mmio_w" -lt 1 ] || [ "$(field vcpu exit_mmio_read)" != 0 ]; then
	fail metrics-vcpu "exit_io_out $io_out (want >= 23), exit_mmio_write $mmio_w: $line"
elif [[ "$line" == *'"kvm":{'* ]] && [ "${kvm_exits:-0}" -lt $((io_out + mmio_w)) ]; then
	fail metrics-vcpu "kvm.exits ${kvm_exits:-none} below kiln's $((io_out + mmio_w)): $line"
else
	[[ "$line" == *'"kvm":{'* ]] || echo "SKIP host/metrics-vcpu/kvm: no KVM binary stats here"
	pass metrics-vcpu
fi

# logger.log_path: the log goes to that file (at Info, the end of the VM is logged there),
# not to stderr, which keeps only the reason line.
write_cfg logger "{\"boot-source\":{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"p\"},
	\"logger\":{\"log_path\":\"$T/kiln.log\",\"level\":\"Info\"}}"
run_kiln logger --config-file "$T/logger.json"
if [ "$rc" -eq 0 ] && grep -q 'VM stopped: poweroff' "$T/kiln.log" 2>/dev/null &&
	[ "$err" = "kiln: exit reason=poweroff code=0" ]; then
	pass logger-log-path
else
	fail logger-log-path "exit $rc, stderr '$err', log: $(cat "$T/kiln.log" 2>/dev/null)"
fi

# --boot-timer (Firecracker's): the tiny guest writes the byte 123 at 0xc0000000 and kiln logs
# one Guest-boot-time line at Info in Firecracker's format; nothing without the flag, nor for a
# guest above 3 GiB, where that address is RAM (a warning says so instead).
BOOT_RE='^kiln: Guest-boot-time = +[0-9]+ us [0-9]+ ms, +[0-9]+ CPU us [0-9]+ CPU ms$'
boot_timer_case() { # NAME MEM WANT-LINES [flags...]
	local name=$1 mem=$2 want=$3 got cfg
	shift 3
	cfg=$(tiny_cfg b 1 "$mem")
	write_cfg "$name" "${cfg%\}},\"logger\":{\"level\":\"Info\"}}"
	run_kiln "$name" "$@" --config-file "$T/$name.json"
	got=$(grep -Ec "$BOOT_RE" <<<"$err")
	if [ "$rc" -ne 0 ] || [ "$(tail -n 1 <<<"$err")" != "$(reason_line poweroff 0)" ]; then
		fail "$name" "exit $rc: $err"
	elif [ "$got" -ne "$want" ]; then
		fail "$name" "$got Guest-boot-time lines, want $want: $err"
	elif [ "$mem" -gt 3072 ] && ! grep -q "boot-timer: 0xc0000000 is guest RAM" <<<"$err"; then
		fail "$name" "no warning that 0xc0000000 is RAM: $err"
	else
		pass "$name"
	fi
}
boot_timer_case boot-timer 64 1 --boot-timer
boot_timer_case boot-timer-off 64 0
boot_timer_case boot-timer-ram 4096 0 --boot-timer

run_kiln version --version
if [ "$rc" -eq 0 ] && [[ "$out" == kiln\ * ]]; then pass version; else fail version "rc $rc"; fi
run_kiln help --help
if [ "$rc" -eq 0 ] && [[ "$out" == *--config-file* ]]; then pass help; else fail help "rc $rc"; fi
exit $failed
