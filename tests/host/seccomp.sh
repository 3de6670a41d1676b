#!/bin/bash
# Host tests of the seccomp filters (docs/seccomp.md): build/kiln-testhooks (kiln built with
# -DKILN_TEST_HOOKS) runs the tiny test guest (tests/guest/tiny) on this host's /dev/kvm.
#   - KILN_TEST_FORBIDDEN=<role> makes a thread of that role issue a forbidden syscall right
#     after loading its filter: kiln must exit 148 with one stderr line naming it;
#   - without it the guest runs normally under the filters in every mode, including
#     console input, logging, metrics and a SIGTERM teardown with its state dump, starts
#     its APs, and does I/O through a block, a net (TAP) and a vsock device with the host
#     doing its side;
#   - KILN_TEST_FAIL_KVM_RUN=1 makes the first KVM_RUN fail: exit 1, reason=error;
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
	env "${envs[@]}" timeout -k 5 30 "$KILN" --no-api "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
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

# expect_runs NAME ACTION VCPUS [REASON [LINE]]: the guest runs and ends itself under the
# filters; exit 0 (1 for a triple fault, whose register dump needs the vcpu role's KVM_GET_*
# ioctls), the last stderr line names REASON (README, "Exit codes") and the guest printed
# LINE (default: its hello).
expect_runs() {
	local reason=${4:-poweroff} code=0
	[ "$reason" = triple-fault ] && code=1
	tiny_cfg "$2" "$3" 64 >"$T/$1.json"
	run_kiln "$1" KILN_TEST_FORBIDDEN=none -- --config-file "$T/$1.json"
	local last want="kiln: exit reason=$reason code=$code"
	last=$(printf '%s\n' "$err" | tail -n 1)
	if [ "$rc" -ne "$code" ]; then
		fail "$1" "exit $rc, expected $code: $err"
	elif [ "$last" != "$want" ]; then
		fail "$1" "last stderr line '$last', expected '$want'"
	elif [ "$2" != t ] && ! grep -qxF "kiln tiny guest: ${5:-hello}" <<<"$out"; then
		fail "$1" "no line 'kiln tiny guest: ${5:-hello}' on stdout: $(tr '\n' ';' <<<"$out")"
	elif [ "$2" = t ] && ! grep -q '^kiln: \[ERROR\] vCPU 0 triple fault: RIP=0x' <<<"$err"; then
		fail "$1" "no register dump: $err"
	else
		pass "$1"
	fi
}

# KILN_TEST_FAIL_KVM_RUN=1: vCPU 0's first KVM_RUN fails with EFAULT, as a KVM error would.
# kiln exits 1 with one error line naming KVM_RUN, then its reason line.
kvm_run_error_case() {
	local name=kvm-run-error
	tiny_cfg p 1 64 >"$T/$name.json"
	run_kiln "$name" KILN_TEST_FAIL_KVM_RUN=1 -- --config-file "$T/$name.json"
	local errors
	errors=$(printf '%s\n' "$err" | grep -c '^kiln: \[ERROR\] ')
	if [ "$rc" -ne 1 ]; then
		fail "$name" "exit $rc, expected 1: $err"
	elif [ "$errors" -ne 1 ] || ! grep -q '^kiln: \[ERROR\] vCPU 0: KVM_RUN: Bad address$' <<<"$err"; then
		fail "$name" "expected one error line 'vCPU 0: KVM_RUN: Bad address', got: $err"
	elif [ "$(printf '%s\n' "$err" | tail -n 1)" != "kiln: exit reason=error code=1" ]; then
		fail "$name" "last stderr line is not 'kiln: exit reason=error code=1': $err"
	else
		pass "$name"
	fi
}

expect_sigsys seccomp-forbidden-vmm vmm 1
expect_sigsys seccomp-forbidden-vcpu vcpu 1
expect_sigsys seccomp-forbidden-vcpu-smp vcpu 4 # several threads trap: still one line
expect_runs seccomp-poweroff p 1
expect_runs seccomp-reboot-i8042 r 1 reboot
expect_runs seccomp-reboot-acpi a 2 reboot
expect_runs seccomp-triple-fault t 1 triple-fault
expect_runs seccomp-smp-4 s 4 poweroff "all 4 cpus up" # the APs run too
kvm_run_error_case

# Device I/O under the filters: the tiny guest ('v') sets up the device and does I/O through
# it (MMIO exits on the vCPU threads, queue work on the event loop), the host does its side.
# Device setup runs before the filters, the I/O and the teardown under them. A device this
# kiln does not support yet is a SKIP.
# dev_start NAME EXTRA-JSON: starts kiln on the tiny guest 'v' in the background.
dev_start() {
	tiny_cfg v 2 64 "$2" >"$T/$1.json"
	timeout -k 5 30 "$KILN" --no-api --config-file "$T/$1.json" >"$T/$1.out" 2>"$T/$1.err" </dev/null &
	kiln_pid=$!
}
# dev_wait_line NAME TEXT: waits up to 10 s for a line of kiln's stdout holding TEXT.
dev_wait_line() {
	for _ in $(seq 200); do
		grep -qsF -- "$2" "$T/$1.out" && return 0
		kill -0 "$kiln_pid" 2>/dev/null || break
		sleep 0.05
	done
	grep -qsF -- "$2" "$T/$1.out"
}
# dev_end NAME: waits for kiln; sets rc, out, err. Returns 1 (after a SKIP line) if kiln
# does not support the device.
dev_end() {
	wait "$kiln_pid"
	rc=$?
	kiln_pid=
	out=$(cat "$T/$1.out")
	err=$(cat "$T/$1.err")
	if [ "$rc" -eq 2 ] && [[ $err == *"not supported"* ]]; then
		echo "SKIP host/$1: $err"
		return 1
	fi
}
has_line() { grep -qxF -- "kiln tiny guest: $1" <<<"$out"; }

# Block: the guest reads sector 0 (written here) and writes sector 1 (read back here).
# Block: the guest reads sector 0 (written here) and writes sector 1 (read back here), once
# per I/O engine (Async's io_uring syscalls run under the filters too).
# blk_case NAME ENGINE EXTRA-DRIVE-JSON
blk_case() {
	rm -f "$T/disk.img"
	truncate -s 1M "$T/disk.img"
	printf 'kiln disk sector 0\0' | dd of="$T/disk.img" conv=notrunc status=none
	dev_start "$1" ",\"drives\":[{\"drive_id\":\"d0\",\"path_on_host\":\"$T/disk.img\",
\"is_root_device\":false,\"is_read_only\":false,\"cache_type\":\"Writeback\",
\"io_engine\":\"$2\"$3}]"
	dev_end "$1" || return 0
	local sector1
	sector1=$(dd if="$T/disk.img" bs=512 skip=1 count=1 status=none | tr -d '\0')
	if [ "$rc" -ne 0 ]; then
		fail "$1" "exit $rc: $err"
	elif ! has_line "virtio-blk read sector 0, status 0: kiln disk sector 0" ||
		! has_line "virtio-blk wrote sector 1, status 0"; then
		fail "$1" "guest: $(tr '\n' ';' <<<"$out") $err"
	elif [ "$sector1" != "kiln tiny guest wrote sector 1" ]; then
		fail "$1" "sector 1 of the disk holds '$sector1'"
	else
		pass "$1"
	fi
}
blk_case seccomp-drive Sync ',"rate_limiter":{"bandwidth":{"size":1000000,"refill_time":100}}'
blk_case seccomp-drive-async Async ''

# Net: the guest's broadcast frame reaches the TAP (its rx_packets), and the host's frames
# (ARP for a neighbour on the TAP's link, or whatever the host sends first) reach the guest.
tap=ksc$$
if ip tuntap add dev "$tap" mode tap 2>/dev/null; then
	trap '[ -z "$kiln_pid" ] || kill -KILL "$kiln_pid" 2>/dev/null
		ip tuntap del dev "$tap" mode tap 2>/dev/null; rm -rf "$T"' EXIT
	ip addr add 169.254.213.1/30 dev "$tap" && ip link set "$tap" up
	tap_rx=$(cat "/sys/class/net/$tap/statistics/rx_packets")
	dev_start seccomp-net ",\"network-interfaces\":[{\"iface_id\":\"eth0\",
	\"host_dev_name\":\"$tap\",\"rx_rate_limiter\":{\"ops\":{\"size\":100,\"refill_time\":10}}}]"
	dev_wait_line seccomp-net "virtio-net sent a frame"
	tap_rx=$(($(cat "/sys/class/net/$tap/statistics/rx_packets") - tap_rx))
	for _ in $(seq 100); do
		kill -0 "$kiln_pid" 2>/dev/null || break
		echo x 2>/dev/null >/dev/udp/169.254.213.2/9
		sleep 0.1
	done
	if dev_end seccomp-net; then
		if [ "$rc" -ne 0 ]; then
			fail seccomp-net "exit $rc: $err"
		elif ! has_line "virtio-net sent a frame" || [ "$tap_rx" -lt 1 ]; then
			fail seccomp-net "guest's frame: $tap_rx on the TAP; $(tr '\n' ';' <<<"$out") $err"
		elif ! grep -q "^kiln tiny guest: virtio-net received a frame of" <<<"$out"; then
			fail seccomp-net "no frame from the TAP reached the guest: $(tr '\n' ';' <<<"$out")"
		else
			pass seccomp-net
		fi
	fi
else
	echo "SKIP host/seccomp-net: cannot create a TAP device"
fi

# Vsock: a host-side CONNECT on the socket; the guest answers and sends a line back, then
# receives the host's line (both directions of the data path run under the filter).
if command -v socat >/dev/null; then
	dev_start seccomp-vsock ",\"vsock\":{\"guest_cid\":3,\"uds_path\":\"$T/v.sock\"}"
	# The connection's input stays open (a FIFO) until kiln has ended it.
	mkfifo "$T/vsock-in"
	exec 4<>"$T/vsock-in"
	: >"$T/vsock-host.out"
	socat_pid=
	if dev_wait_line seccomp-vsock "virtio-vsock waiting for a connection, cid 3"; then
		timeout 20 socat - "UNIX-CONNECT:$T/v.sock" <"$T/vsock-in" >"$T/vsock-host.out" 2>&1 &
		socat_pid=$!
		printf 'CONNECT 1234\n' >&4
		printf 'kiln host over vsock\n' >&4
	fi
	ended=0
	dev_end seccomp-vsock && ended=1
	[ -z "$socat_pid" ] || wait "$socat_pid"
	exec 4>&-
	host=$(cat "$T/vsock-host.out")
	if [ "$ended" -eq 1 ]; then
		if [ "$rc" -ne 0 ]; then
			fail seccomp-vsock "exit $rc: $err"
		elif ! grep -q "^kiln tiny guest: virtio-vsock answered a connection to port 1234" \
			<<<"$out" || [[ $host != "OK "[0-9]*$'\n'"kiln tiny guest over vsock" ]]; then
			fail seccomp-vsock "host read '$host'; guest: $(tr '\n' ';' <<<"$out") $err"
		elif ! has_line "virtio-vsock received 21 bytes from the host: kiln host over vsock."; then
			fail seccomp-vsock "the host's line did not reach the guest: $(tr '\n' ';' <<<"$out") $err"
		elif [ -e "$T/v.sock" ]; then
			fail seccomp-vsock "the vsock socket $T/v.sock is still there after exit"
		else
			pass seccomp-vsock
		fi
	fi
else
	echo "SKIP host/seccomp-vsock: no socat for the host side of the connection"
fi

# stdin on a terminal: raw mode at start, restored (TCSETS) at teardown under the filter.
if command -v script >/dev/null; then
	tiny_cfg p 1 64 >"$T/seccomp-tty.json"
	timeout -k 5 30 script -qec "$KILN --no-api --config-file $T/seccomp-tty.json" /dev/null \
		>"$T/seccomp-tty.out" 2>&1 </dev/null
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q hello "$T/seccomp-tty.out"; then pass seccomp-tty; else
		fail seccomp-tty "exit $rc: $(tr -d '\r' <"$T/seccomp-tty.out")"; fi
else
	echo "SKIP host/seccomp-tty: no script(1) to give kiln a terminal (install util-linux)"
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
	"$KILN" --no-api --config-file "$T/$name.json" <"$T/stdin" >"$T/$name.out" 2>"$T/$name.err" &
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
	elif ! grep -q '"exit_reason":"signal"' "$T/metrics.json" 2>/dev/null; then
		fail "$name" "no metrics line with exit_reason signal written at teardown"
	elif [ "$(grep -c 'vCPU [0-9] state: RIP=0x' "$T/log.txt")" -ne "$vcpus" ]; then
		fail "$name" "SIGTERM: expected $vcpus vCPU state lines in the log: $(cat "$T/log.txt")"
	else
		pass "$name"
	fi
}
running_case

# --no-seccomp (debugging only), once kiln has it: nothing is filtered.
if "$KILN" --help 2>&1 | grep -q -- --no-seccomp; then
	tiny_cfg w 1 64 >"$T/noseccomp.json"
	"$KILN" --no-seccomp --no-api --config-file "$T/noseccomp.json" </dev/null >"$T/noseccomp.out" 2>&1 &
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
