#!/bin/bash
# Host tests of the seccomp filters (docs/seccomp.md): build/kiln-testhooks (kiln built with
# -DKILN_TEST_HOOKS) runs the tiny test guest (tests/guest/tiny) on this host's /dev/kvm.
#   - KILN_TEST_FORBIDDEN=<role> makes a thread of that role issue a forbidden syscall right
#     after loading its filter: kiln must exit 148 with one stderr line naming it;
#   - without it the guest runs normally under the filters in every mode, including
#     console input, logging, metrics and a SIGTERM teardown;
#   - while kiln runs, every thread shows "Seccomp: 2" (filter mode) in
#     /proc/<pid>/task/*/status, each with exactly one filter (roles do not stack);
#   - with --no-seccomp (once kiln has the flag) no thread is filtered.
# Prints "PASS host/<name>" or "FAIL host/<name>: why" per case; exits 1 if any failed.
set -u
BUILD=${BUILD:-build}
KILN=${KILN_TESTHOOKS:-$BUILD/kiln-testhooks}
TINY=${TINY:-$BUILD/tiny-guest.elf}
T=$(mktemp -d /tmp/kiln-seccomp.XXXXXX)
kiln_pid=
trap '[ -z "$kiln_pid" ] || kill -KILL "$kiln_pid" 2>/dev/null; rm -rf "$T"' EXIT
failed=0

pass() { echo "PASS host/$1"; }
fail() { echo "FAIL host/$1: $2"; failed=1; }

if [ ! -w /dev/kvm ]; then
	echo "SKIP host/seccomp-*: no usable /dev/kvm"
	exit 0
fi
if [ ! -x "$KILN" ] || [ ! -f "$TINY" ]; then
	fail seccomp-build "$KILN or $TINY missing (make $BUILD/kiln-testhooks $TINY)"
	exit 1
fi

tiny_cfg() { # tiny_cfg ACTION VCPUS MEM [extra top-level keys]
	printf '{"boot-source":{"kernel_image_path":"%s","boot_args":"%s"},
	"machine-config":{"vcpu_count":%s,"mem_size_mib":%s}%s}\n' "$TINY" "$1" "$2" "$3" "${4:-}"
}

# run_kiln NAME [env assignments...] -- args: runs kiln with a timeout; sets rc, out, err.
run_kiln() {
	local name=$1
	shift
	local envs=()
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	env "${envs[@]}" timeout 30 "$KILN" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
	rc=$?
	out=$(cat "$T/$name.out")
	err=$(cat "$T/$name.err")
}

# expect_sigsys NAME ROLE VCPUS: a forbidden syscall on a ROLE thread ends kiln through the
# SIGSYS handler: exit 148 and exactly one stderr line naming thread, role and syscall.
expect_sigsys() {
	local name=$1 role=$2
	tiny_cfg p "$3" 64 >"$T/$name.json"
	run_kiln "$name" KILN_TEST_FORBIDDEN="$role" -- --config-file "$T/$name.json"
	local re="^kiln: seccomp: thread [0-9]+ role $role made forbidden syscall [0-9]+ \\(getppid\\)\$"
	local lines
	lines=$(printf '%s\n' "$err" | grep -c .)
	if [ "$rc" -ne 148 ]; then
		fail "$name" "exit $rc, expected 148 ($err)"
	elif [ "$lines" -ne 1 ] || ! [[ $err =~ $re ]]; then
		fail "$name" "expected one line 'kiln: seccomp: thread N role $role made forbidden syscall N (getppid)', got: $err"
	else
		pass "$name"
	fi
}

# expect_runs NAME ACTION VCPUS: the guest runs and ends itself under the filters; exit 0.
expect_runs() {
	tiny_cfg "$2" "$3" 64 >"$T/$1.json"
	run_kiln "$1" KILN_TEST_FORBIDDEN=none -- --config-file "$T/$1.json"
	if [ "$rc" -ne 0 ]; then
		fail "$1" "exit $rc: $err"
	elif [ "$2" != t ] && [[ "$out" != *"kiln tiny guest: hello"* ]]; then
		fail "$1" "no guest output on stdout"
	else
		pass "$1"
	fi
}

expect_sigsys seccomp-forbidden-vmm vmm 1
expect_sigsys seccomp-forbidden-vcpu vcpu 1
expect_sigsys seccomp-forbidden-vcpu-smp vcpu 4 # several threads trap: still one line
expect_runs seccomp-poweroff p 1
expect_runs seccomp-reboot-i8042 r 1
expect_runs seccomp-reboot-acpi a 2
expect_runs seccomp-triple-fault t 1
expect_runs seccomp-smp-4 p 4

# device_case NAME EXTRA-JSON: the tiny guest powers off with the device configured; its
# setup runs before the filters, its teardown under them. A device this kiln does not
# support yet is skipped.
device_case() {
	tiny_cfg p 2 64 "$2" >"$T/$1.json"
	run_kiln "$1" -- --config-file "$T/$1.json"
	if [ "$rc" -eq 2 ] && [[ $err == *"not supported"* ]]; then
		echo "SKIP host/$1: $err"
	elif [ "$rc" -ne 0 ]; then
		fail "$1" "exit $rc: $err"
	elif [ -e "$T/v.sock" ]; then
		fail "$1" "the vsock socket $T/v.sock is still there after exit"
	else
		pass "$1"
	fi
}

truncate -s 1M "$T/disk.img"
device_case seccomp-drive ",\"drives\":[{\"drive_id\":\"d0\",\"path_on_host\":\"$T/disk.img\",
\"is_root_device\":false,\"is_read_only\":false,\"cache_type\":\"Writeback\",
\"rate_limiter\":{\"bandwidth\":{\"size\":1000000,\"refill_time\":100}}}]"
device_case seccomp-drive-async ",\"drives\":[{\"drive_id\":\"d0\",\"path_on_host\":\"$T/disk.img\",
\"is_root_device\":false,\"io_engine\":\"Async\",\"cache_type\":\"Writeback\"}]"
tap=ksc$$
if ip tuntap add dev "$tap" mode tap 2>/dev/null; then
	trap '[ -z "$kiln_pid" ] || kill -KILL "$kiln_pid" 2>/dev/null
		ip tuntap del dev "$tap" mode tap 2>/dev/null; rm -rf "$T"' EXIT
	device_case seccomp-net ",\"network-interfaces\":[{\"iface_id\":\"eth0\",
	\"host_dev_name\":\"$tap\",\"rx_rate_limiter\":{\"ops\":{\"size\":100,\"refill_time\":10}}}]"
else
	echo "SKIP host/seccomp-net: cannot create a TAP device"
fi
device_case seccomp-vsock ",\"vsock\":{\"guest_cid\":3,\"uds_path\":\"$T/v.sock\"}"

# stdin on a terminal: raw mode at start, restored (TCSETS) at teardown under the filter.
if command -v script >/dev/null; then
	tiny_cfg p 1 64 >"$T/seccomp-tty.json"
	timeout 30 script -qec "$KILN --config-file $T/seccomp-tty.json" /dev/null \
		>"$T/seccomp-tty.out" 2>&1 </dev/null
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q hello "$T/seccomp-tty.out"; then pass seccomp-tty; else
		fail seccomp-tty "exit $rc: $(tr -d '\r' <"$T/seccomp-tty.out")"; fi
fi

# thread_seccomp_modes PID: "<tid> <Seccomp> <Seccomp_filters>" per thread of kiln's own.
# KVM adds kernel-run workers to the process (kvm-nx-lpage-recovery, PF_USER_WORKER
# 0x4000): they never run user code, so no filter applies to them; they are skipped.
thread_seccomp_modes() {
	local task stat flags
	for task in /proc/"$1"/task/*; do
		stat=$(cat "$task/stat" 2>/dev/null) || continue
		read -r -a fields <<<"${stat##*) }"
		flags=${fields[6]}
		(((flags & 0x4000) || (flags & 0x200000))) && continue
		awk -v tid="${task##*/}" '
			/^Seccomp:/ { mode = $2 } /^Seccomp_filters:/ { n = $2 }
			END { print tid, mode, (n == "" ? "?" : n) }' "$task/status" 2>/dev/null
	done
}

# all_filtered PID THREADS: every one of THREADS threads is in filter mode with one filter.
all_filtered() {
	local modes
	modes=$(thread_seccomp_modes "$1")
	[ "$(printf '%s\n' "$modes" | grep -c .)" -eq "$2" ] &&
		! printf '%s\n' "$modes" | awk '$2 != 2 || ($3 != "?" && $3 != 1) { bad = 1 }
			END { exit !bad }'
}

# A waiting guest with logging, metrics and console input: while it runs every thread is
# filtered; SIGTERM then tears kiln down under the filters with exit 0.
running_case() {
	local name=seccomp-threads-and-teardown vcpus=3
	tiny_cfg w "$vcpus" 64 ",\"logger\":{\"log_path\":\"$T/log.txt\",\"level\":\"Debug\"},
	\"metrics\":{\"metrics_path\":\"$T/metrics.json\"}" >"$T/$name.json"
	mkfifo "$T/stdin"
	exec 3<>"$T/stdin"
	"$KILN" --config-file "$T/$name.json" <"$T/stdin" >"$T/$name.out" 2>"$T/$name.err" &
	kiln_pid=$!
	for _ in $(seq 100); do grep -qs hello "$T/$name.out" && break; sleep 0.05; done
	head -c 200 /dev/zero | tr '\0' x >&3 # more than the 16-byte FIFO: input pauses
	local ok=0 modes
	for _ in $(seq 40); do
		all_filtered "$kiln_pid" $((vcpus + 1)) && ok=1 && break
		sleep 0.05
	done
	modes=$(thread_seccomp_modes "$kiln_pid" | tr '\n' ';')
	kill -TERM "$kiln_pid"
	wait "$kiln_pid"
	rc=$?
	kiln_pid=
	exec 3>&-
	if [ "$ok" -ne 1 ]; then
		fail "$name" "threads (tid mode filters): $modes expected $((vcpus + 1)) with mode 2, 1 filter"
	elif [ "$rc" -ne 0 ]; then
		fail "$name" "SIGTERM: exit $rc: $(cat "$T/$name.err")"
	elif ! grep -q exit_reason "$T/metrics.json" 2>/dev/null; then
		fail "$name" "no metrics line written at teardown"
	else
		pass "$name"
	fi
}
running_case

# --no-seccomp (debugging only), once kiln has it: nothing is filtered.
if "$KILN" --help 2>&1 | grep -q -- --no-seccomp; then
	tiny_cfg w 1 64 >"$T/noseccomp.json"
	"$KILN" --no-seccomp --config-file "$T/noseccomp.json" </dev/null >"$T/noseccomp.out" 2>&1 &
	kiln_pid=$!
	for _ in $(seq 100); do grep -qs hello "$T/noseccomp.out" && break; sleep 0.05; done
	modes=$(thread_seccomp_modes "$kiln_pid" | awk '{ print $2 }' | sort -u | tr '\n' ' ')
	kill -TERM "$kiln_pid"
	wait "$kiln_pid"
	rc=$?
	kiln_pid=
	if [ "$modes" = "0 " ] && [ "$rc" -eq 0 ]; then pass seccomp-disabled; else
		fail seccomp-disabled "Seccomp modes '$modes', exit $rc"; fi
fi
exit $failed
