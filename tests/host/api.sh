#!/bin/bash
# Host tests of the REST API (docs/api.md): kiln configured and driven with curl on its Unix
# socket, running the tiny test guest on this host's /dev/kvm. Covers Firecracker's
# getting-started order of requests, the state machine (Not started -> Running -> Paused ->
# Running) with the guest's output stopping while paused, GET /vm/config, the pre/post-boot
# rule, --config-file with the API, the api seccomp role, and the socket file's life on
# every way out (exit 2 for an existing file or --no-api without a config).
# Prints "PASS host/<name>" or "FAIL host/<name>: why" per case; exits 1 if any failed.
set -u
BUILD=${BUILD:-build}
KILN=${KILN:-$BUILD/kiln}
KILN_TESTHOOKS=${KILN_TESTHOOKS:-$BUILD/kiln-testhooks}
TINY=${TINY:-$(realpath "$BUILD/tiny-guest.elf")}
T=$(mktemp -d /tmp/kiln-api.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
failed=0

pass() { echo "PASS host/$1"; }
fail() { echo "FAIL host/$1: $2"; failed=1; }

if [ ! -w /dev/kvm ]; then
	echo "SKIP host/api-*: no usable /dev/kvm"
	exit 0
fi
if ! command -v curl >/dev/null; then
	echo "SKIP host/api-*: no curl"
	exit 0
fi

SOCK=$T/api.sock
# api METHOD PATH [BODY]: one request; sets code (HTTP status) and body.
api() {
	local args=(-s -m 10 --unix-socket "$SOCK" -X "$1" -o "$T/resp" -w '%{http_code}')
	[ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' -d "$3")
	code=$(curl "${args[@]}" "http://localhost$2")
	body=$(cat "$T/resp" 2>/dev/null)
}

# start_kiln NAME [args...]: kiln in the background on $SOCK (pid in $pid).
start_kiln() {
	local name=$1
	shift
	rm -f "$SOCK"
	"${KILN_BIN:-$KILN}" --api-sock "$SOCK" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
}

ticks() { grep -c 'tick [0-9]' "$T/$1.out"; }

# wait_ticks NAME N: until the guest printed N ticks (10 s at most).
wait_ticks() {
	for _ in $(seq 200); do [ "$(ticks "$1")" -ge "$2" ] && return 0; sleep 0.05; done
	return 1
}

# wait_kiln SECS: waits for kiln to end by itself, SIGKILL after SECS; sets rc (137 then).
wait_kiln() {
	for _ in $(seq $(($1 * 20))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
}

# stop_kiln: SIGTERM, wait; sets rc.
stop_kiln() {
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
}

# ---- the getting-started sequence and the state machine -----------------------------------
gs=api-getting-started
start_kiln $gs --id host-api-1
steps=""
step() { # step WANT-CODE METHOD PATH [BODY]
	local want=$1
	shift
	api "$@"
	[ "$code" = "$want" ] || steps+="$1 $2 -> $code (want $want) $body; "
}
step 200 GET /
[[ "$body" == *'"id":"host-api-1","state":"Not started"'* ]] || steps+="state before: $body; "
step 204 PUT /logger "{\"log_path\":\"$T/$gs.log\",\"level\":\"Info\"}"
step 204 PUT /boot-source "{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"c\"}"
step 204 PUT /machine-config '{"vcpu_count":2,"mem_size_mib":64}'
step 204 PUT /metrics "{\"metrics_path\":\"$T/$gs.metrics\"}"
step 400 PUT /drives/rootfs '{"drive_id":"rootfs","path_on_host":"/nonexistent","is_root_device":true}'
head -c 1048576 /dev/zero >"$T/data1.img"
head -c 2097152 /dev/zero >"$T/data2.img"
step 204 PUT /drives/data "{\"drive_id\":\"data\",\"path_on_host\":\"$T/data1.img\",\"is_root_device\":false}"
step 200 GET /vm/config
sent=$body
step 204 PUT /actions '{"action_type":"InstanceStart"}'
step 200 GET /
[[ "$body" == *'"state":"Running"'* ]] || steps+="state after start: $body; "
wait_ticks $gs 3 || steps+="no ticks from the guest; "
names=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -v '^kvm-' | sort | tr '\n' ',') # not KVM's worker
[ "$names" = "$(basename "$KILN" | cut -c1-15),kiln_api,kiln_vcpu 0,kiln_vcpu 1," ] || steps+="threads named '$names'; "
step 400 PUT /boot-source "{\"kernel_image_path\":\"$TINY\"}"
[[ "$body" == *"not supported after starting"* ]] || steps+="post-boot PUT: $body; "
step 200 GET /vm/config
[ "$body" = "$sent" ] || steps+="config changed: $sent -> $body; "
step 204 PATCH /vm '{"state":"Paused"}'
step 200 GET /
[[ "$body" == *'"state":"Paused"'* ]] || steps+="state paused: $body; "
n1=$(ticks $gs)
sleep 1.5
n2=$(ticks $gs)
[ "$n1" = "$n2" ] || steps+="ticks went on while paused ($n1 -> $n2); "
step 204 PATCH /vm '{"state":"Resumed"}'
step 200 GET /
[[ "$body" == *'"state":"Running"'* ]] || steps+="state resumed: $body; "
wait_ticks $gs $((n2 + 3)) || steps+="no ticks after resume (still $(ticks $gs)); "
# A new backing file for the data drive (opened under the api filter); the config follows.
step 204 PATCH /drives/data "{\"drive_id\":\"data\",\"path_on_host\":\"$T/data2.img\"}"
step 200 GET /vm/config
[[ "$body" == *"\"path_on_host\":\"$T/data2.img\""* ]] || steps+="patched config: $body; "
step 400 PATCH /drives/data '{"drive_id":"data","path_on_host":"/nonexistent"}'
# A new rate limiter for the running drive (its device takes it, the config shows it).
step 204 PATCH /drives/data '{"drive_id":"data","rate_limiter":{"bandwidth":{"size":65536,"refill_time":100}}}'
step 200 GET /vm/config
[[ "$body" == *'"rate_limiter":{"bandwidth":{"size":65536'* ]] || steps+="limiter config: $body; "
step 400 PATCH /network-interfaces/eth0 '{"iface_id":"eth0","rx_rate_limiter":{"ops":{"size":1,"refill_time":1}}}'
step 204 PUT /actions '{"action_type":"FlushMetrics"}'
step 204 PUT /actions '{"action_type":"SendCtrlAltDel"}' # the tiny guest ignores the keyboard
stop_kiln
if [ -n "$steps" ]; then
	fail $gs "$steps $(tail -n 3 "$T/$gs.err")"
elif [ "$rc" -ne 0 ] || [ -e "$SOCK" ]; then
	fail $gs "exit $rc, socket $(ls "$SOCK" 2>&1): $(cat "$T/$gs.err")"
elif ! grep -q 'VM paused' "$T/$gs.log" || ! grep -q 'VM resumed' "$T/$gs.log" ||
	! grep -q 'drive data: new backing file, 4096 sectors' "$T/$gs.log" ||
	! grep -q 'drive data: new rate limiter' "$T/$gs.log"; then
	fail $gs "log: $(cat "$T/$gs.log")"
elif [ "$(grep -c . "$T/$gs.metrics")" -lt 2 ]; then
	fail $gs "metrics: $(cat "$T/$gs.metrics")"
else
	pass $gs
fi

# ---- --config-file with the API: boots at once, the API answers -----------------------------
printf '{"boot-source":{"kernel_image_path":"%s","boot_args":"c"}}\n' "$TINY" >"$T/cf.json"
start_kiln api-config-file --config-file "$T/cf.json"
wait_ticks api-config-file 1
api GET /
s1=$body
api PUT /machine-config '{"vcpu_count":2}'
c2=$code
stop_kiln
if [[ "$s1" != *'"state":"Running"'* ]] || [ "$c2" != 400 ] || [ "$rc" -ne 0 ] || [ -e "$SOCK" ]; then
	fail api-config-file "GET / '$s1', PUT $c2, exit $rc: $(cat "$T/api-config-file.err")"
else
	pass api-config-file
fi

# ---- a guest that ends by itself: kiln exits 0 and removes the socket -----------------------
start_kiln api-poweroff
api PUT /boot-source "{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"p\"}"
api PUT /actions '{"action_type":"InstanceStart"}'
c=$code
wait_kiln 20
if [ "$c" != 204 ] || [ "$rc" -ne 0 ] || [ -e "$SOCK" ] ||
	[ "$(tail -n 1 "$T/api-poweroff.err")" != "kiln: exit reason=poweroff code=0" ]; then
	fail api-poweroff "start $c, exit $rc: $(cat "$T/api-poweroff.err")"
else
	pass api-poweroff
fi

# ---- stopped before InstanceStart --------------------------------------------------------------
start_kiln api-stop-before-start
api GET /
stop_kiln
if [ "$code" != 200 ] || [ "$rc" -ne 0 ] || [ -e "$SOCK" ]; then
	fail api-stop-before-start "GET $code, exit $rc: $(cat "$T/api-stop-before-start.err")"
else
	pass api-stop-before-start
fi

# ---- a bad image at InstanceStart: 400 naming key and file, still configurable -------------
head -c 4096 /dev/zero >"$T/zero.img"
start_kiln api-bad-kernel
steps=""
step 204 PUT /boot-source "{\"kernel_image_path\":\"$T/zero.img\"}"
step 400 PUT /actions '{"action_type":"InstanceStart"}'
[[ "$body" == *"boot-source.kernel_image_path: $T/zero.img"* ]] || steps+="InstanceStart: $body; "
step 200 GET /
[[ "$body" == *'"state":"Not started"'* ]] || steps+="state after the 400: $body; "
step 204 PUT /boot-source "{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"c\"}"
step 204 PUT /actions '{"action_type":"InstanceStart"}'
wait_ticks api-bad-kernel 1 || steps+="no ticks from the guest after the second InstanceStart; "
stop_kiln
if [ -n "$steps" ] || [ -e "$SOCK" ]; then
	fail api-bad-kernel "exit $rc, socket $(ls "$SOCK" 2>&1): $steps $(cat "$T/api-bad-kernel.err")"
else
	pass api-bad-kernel
fi

# ---- a TAP that is not there: 400 at PUT /network-interfaces, before anything starts --------
start_kiln api-missing-tap
api PUT /network-interfaces/eth0 '{"iface_id":"eth0","host_dev_name":"kiln-notap0"}'
c1=$code b1=$body
api GET /vm/config
stop_kiln
if [ "$c1" != 400 ] || [[ "$b1" != *"host_dev_name: kiln-notap0: no such network device"* ]] ||
	[[ "$body" == *kiln-notap0* ]] || [ -e "$SOCK" ]; then
	fail api-missing-tap "PUT: $c1 $b1; config after: $body; socket $(ls "$SOCK" 2>&1)"
else
	pass api-missing-tap
fi

# ---- the api seccomp role: loaded once the VM runs ---------------------------------------------
if [ -x "$KILN_TESTHOOKS" ]; then
	export KILN_TEST_FORBIDDEN=api
	KILN_BIN=$KILN_TESTHOOKS start_kiln api-seccomp
	unset KILN_TEST_FORBIDDEN
	api PUT /boot-source "{\"kernel_image_path\":\"$TINY\",\"boot_args\":\"w\"}"
	api PUT /actions '{"action_type":"InstanceStart"}'
	wait_kiln 20
	if [ "$rc" -ne 148 ] || ! grep -q 'role api made forbidden syscall' "$T/api-seccomp.err"; then
		fail api-seccomp "exit $rc: $(cat "$T/api-seccomp.err")"
	else
		pass api-seccomp
	fi
fi

# ---- snapshots (docs/snapshots.md): the tiny guest's count goes on in a new process -------
# whole_lines FILE: FILE without a last line that has no newline yet.
whole_lines() {
	head -n "$(wc -l <"$1")" "$1"
}
# go_on BEFORE AFTER: the guest's "tick <n>" count on console BEFORE (up to the snapshot)
# then AFTER (the restored guest) goes on by one, nothing repeated or lost at the seam (a
# line the pause cut is whole once joined), past BEFORE's last; else prints why.
go_on() {
	local last now seam
	# Whole lines only: the pause may cut a line after "tick " or inside its number (the
	# restored guest prints the rest), and stopping kiln may cut the last one.
	last=$(whole_lines "$1" | grep -ao 'tick [0-9][0-9]*' | tail -n 1 | sed 's/tick //')
	cat "$1" "$2" >"$T/joined"
	whole_lines "$T/joined" | grep -ao 'tick [0-9][0-9]*' | sed 's/tick //' >"$T/seq"
	seam=$(awk 'NR > 1 && $1 != prev + 1 { print "tick " prev " then " $1; exit } { prev = $1 }' "$T/seq")
	now=$(tail -n 1 "$T/seq")
	if [ -n "$seam" ]; then
		echo "the count does not go on: $seam (before: ...$(tail -c 80 "$1" | tr '\n' '|'); after: $(head -c 120 "$2" | tr '\n' '|')...)"
	elif [ -z "$last" ] || [ "$now" -le "$last" ]; then
		echo "no tick after the restore (last before: ${last:-none})"
	fi
}
# counts_on NAME BEFORE: NAME's restored guest prints ticks and its count goes on from the
# console BEFORE; else the reason is added to $steps.
counts_on() {
	local why
	wait_ticks "$1" 3 || steps+="no ticks after the restore; "
	why=$(go_on "$2" "$T/$1.out")
	[ -z "$why" ] || steps+="$why; "
}
# verdict NAME: PASS unless a step went wrong ($steps) or kiln did not exit 0 ($rc).
verdict() {
	if [ -n "$steps" ] || [ "$rc" -ne 0 ]; then
		fail "$1" "exit $rc: $steps $(tail -n 2 "$T/$1.err")"
	else
		pass "$1"
	fi
}
load_body() { # load_body STATE MEM [File|Uffd] [resume]
	printf '{"snapshot_path":"%s","mem_backend":{"backend_type":"%s","backend_path":"%s"},"resume_vm":%s}' \
		"$1" "${3:-File}" "$2" "${4:-true}"
}
sn=snapshot-full
head -c 1048576 /dev/zero >"$T/snap-disk.img"
printf '{"boot-source":{"kernel_image_path":"%s","boot_args":"c"},"machine-config":{"vcpu_count":2,"mem_size_mib":64,"track_dirty_pages":true},"drives":[{"drive_id":"data","path_on_host":"%s","is_root_device":false}]}\n' \
	"$TINY" "$T/snap-disk.img" >"$T/snap.json"
start_kiln $sn --config-file "$T/snap.json"
steps=""
wait_ticks $sn 3 || steps+="no ticks; "
step 400 PUT /snapshot/create "{\"snapshot_path\":\"$T/full.state\",\"mem_file_path\":\"$T/full.mem\"}"
[[ "$body" == *"must be paused"* ]] || steps+="create while running: $body; "
step 204 PATCH /vm '{"state":"Paused"}'
step 204 PUT /snapshot/create "{\"snapshot_path\":\"$T/full.state\",\"mem_file_path\":\"$T/full.mem\"}"
cp "$T/$sn.out" "$T/full.console"
step 204 PATCH /vm '{"state":"Resumed"}'
wait_ticks $sn $(($(ticks $sn) + 3)) || steps+="no ticks after the Full snapshot; "
step 204 PATCH /vm '{"state":"Paused"}'
step 204 PUT /snapshot/create "{\"snapshot_path\":\"$T/diff.state\",\"mem_file_path\":\"$T/diff.mem\",\"snapshot_type\":\"Diff\"}"
cp "$T/$sn.out" "$T/diff.console"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
"$KILN" --describe-snapshot "$T/full.state" >"$T/describe.out" 2>&1 || steps+="describe: $(cat "$T/describe.out"); "
grep -q '^vCPUs: 2$' "$T/describe.out" || steps+="describe: $(cat "$T/describe.out"); "
start_kiln $sn-load
step 204 PUT /snapshot/load "$(load_body "$T/full.state" "$T/full.mem")"
step 200 GET /
[[ "$body" == *'"state":"Running"'* ]] || steps+="state after load: $body; "
counts_on $sn-load "$T/full.console"
stop_kiln
if [ -n "$steps" ] || [ "$rc" -ne 0 ]; then
	fail $sn "exit $rc: $steps $(tail -n 2 "$T/$sn.err" "$T/$sn-load.err")"
else
	pass $sn
fi

# A load that does not resume: Paused, nothing runs, then PATCH Resumed goes on.
sn=snapshot-load-paused
start_kiln $sn
steps=""
step 204 PUT /snapshot/load "$(load_body "$T/full.state" "$T/full.mem" File false)"
step 200 GET /
[[ "$body" == *'"state":"Paused"'* ]] || steps+="state after load: $body; "
sleep 0.5
[ "$(ticks $sn)" = 0 ] || steps+="ticks while paused; "
step 204 PATCH /vm '{"state":"Resumed"}'
counts_on $sn "$T/full.console"
stop_kiln
verdict $sn

# Diff: merged onto a copy of the Full memory file, it restores the later count.
sn=snapshot-diff
steps=""
cp "$T/full.mem" "$T/merged.mem"
"$BUILD/kiln-rebase-snap" --base-file "$T/merged.mem" --diff-file "$T/diff.mem" 2>"$T/rebase.err" ||
	steps+="rebase: $(cat "$T/rebase.err"); "
start_kiln $sn
step 204 PUT /snapshot/load "$(load_body "$T/diff.state" "$T/merged.mem")"
counts_on $sn "$T/diff.console"
stop_kiln
verdict $sn

# Uffd: the example page-fault handler serves the Full memory file.
sn=snapshot-uffd
steps=""
rm -f "$T/uffd.sock"
"$BUILD/kiln-uffd-handler" "$T/uffd.sock" "$T/full.mem" >"$T/uffd.out" 2>&1 &
handler=$!
pids+=("$handler")
for _ in $(seq 100); do [ -S "$T/uffd.sock" ] && break; sleep 0.05; done
start_kiln $sn
step 204 PUT /snapshot/load "$(load_body "$T/full.state" "$T/uffd.sock" Uffd)"
counts_on $sn "$T/full.console"
stop_kiln
wait "$handler" || steps+="handler: $(tail -n 2 "$T/uffd.out"); "
verdict $sn

# Without the API.
sn=snapshot-restore-from
"$KILN" --no-api --restore-from "$T/full.state" --mem-file "$T/full.mem" >"$T/$sn.out" 2>"$T/$sn.err" </dev/null &
pid=$!
pids+=("$pid")
steps=""
counts_on $sn "$T/full.console"
stop_kiln
verdict $sn

# Refused, each with a 400 and the process still able to load: a corrupt state file, a
# memory file shorter than the RAM, a load after configuring a boot.
sn=snapshot-refused
steps=""
cp "$T/full.state" "$T/bad.state"
printf 'X' | dd of="$T/bad.state" bs=1 seek=100 conv=notrunc status=none
head -c 65536 "$T/full.mem" >"$T/short.mem"
start_kiln $sn
step 400 PUT /snapshot/load "$(load_body "$T/bad.state" "$T/full.mem")"
[[ "$body" == *"checksum mismatch"* ]] || steps+="corrupt: $body; "
step 400 PUT /snapshot/load "$(load_body "$T/full.state" "$T/short.mem")"
[[ "$body" == *"shorter than the snapshot's"* ]] || steps+="short: $body; "
step 204 PUT /boot-source "{\"kernel_image_path\":\"$TINY\"}"
step 400 PUT /snapshot/load "$(load_body "$T/full.state" "$T/full.mem")"
[[ "$body" == *"not allowed after configuring boot-specific resources"* ]] || steps+="after config: $body; "
stop_kiln
"$KILN" --describe-snapshot "$T/bad.state" >/dev/null 2>"$T/describe.err"
drc=$?
[ "$drc" = 2 ] && [ "$(grep -c . "$T/describe.err")" = 1 ] || steps+="describe of a corrupt file: exit $drc $(cat "$T/describe.err"); "
verdict $sn

# ---- bad command lines: exit 2, one line -------------------------------------------------------
bad_cli() { # bad_cli NAME PATTERN args...
	local name=$1 pattern=$2
	shift 2
	timeout 10 "$KILN" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
	rc=$?
	if [ "$rc" -ne 2 ] || [ "$(grep -c . "$T/$name.err")" -ne 1 ] ||
		! grep -q -- "$pattern" "$T/$name.err"; then
		fail "$name" "exit $rc: $(cat "$T/$name.err")"
	else
		pass "$name"
	fi
}
touch "$T/exists.sock"
bad_cli api-socket-exists "--api-sock: $T/exists.sock: already exists" --api-sock "$T/exists.sock"
[ -e "$T/exists.sock" ] || fail api-socket-exists "kiln removed a file it did not create"
bad_cli api-no-api-needs-config "--no-api needs --config-file" --no-api
bad_cli api-bad-payload-size "--http-api-max-payload-size" --api-sock "$T/x.sock" \
	--http-api-max-payload-size 0
exit $failed
