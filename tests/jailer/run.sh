#!/bin/bash
# kiln-jailer integration tests, as root on this host: jails tests/jailer/probe.c (a static
# program that prints what it sees from inside, then waits for SIGTERM) and checks it from
# both sides: ids, capabilities, no_new_privs, the root, device nodes, rlimits, arguments and
# environment, mount/pid/net namespaces, cgroups v1 and v2, the jail layout on disk, and the
# failure paths (bad arguments, a reused id, a missing --netns, exec failures and their undo).
# Prints "PASS jailer/<name>" or "FAIL jailer/<name>: why" per case; exits 1 if any failed.
set -u
# shellcheck disable=SC2317 # the cases are called by name from ALL_CASES
BUILD=${BUILD:-build}
JAILER=${JAILER:-$BUILD/kiln-jailer}
JUID=1000
JGID=1000
failed=0

pass() { echo "PASS jailer/$1"; }
fail() {
	echo "FAIL jailer/$1: $2"
	failed=1
}
check() { # check NAME WHY CONDITION...: PASS when the command succeeds
	local name=$1 why=$2
	shift 2
	if "$@"; then pass "$name"; else fail "$name" "$why"; fi
}

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP jailer/*: needs root"
	exit 0
fi
if [ ! -x "$JAILER" ]; then
	echo "FAIL jailer/build: $JAILER missing (make $JAILER)"
	exit 1
fi
JAILER=$(realpath "$JAILER")
T=$(mktemp -d /tmp/kiln-jailer-test.XXXXXX)
BASE=$T/base
TAG=kt$$
PIDS=()
CGDIRS=()
# mount_of FSTYPE [CONTROLLER]: the first mount point of that type (holding CONTROLLER).
mount_of() {
	awk -v t="$1" -v c="${2:-}" '{
		for (i = 7; i <= NF; i++) if ($i == "-") break
		if ($(i + 1) == t && (c == "" || ("," $(i + 3) ",") ~ ("," c ","))) { print $5; exit }
	}' /proc/self/mountinfo
}
V2=$(mount_of cgroup2)
V2_SUBTREE=""
[ -n "$V2" ] && V2_SUBTREE=$(cat "$V2/cgroup.subtree_control")

cleanup() {
	local p d c
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	sleep 0.2
	# Deepest first: the list holds ids before their parents.
	for d in "${CGDIRS[@]}"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
	if [ -n "$V2" ]; then
		for c in $(<"$V2/cgroup.subtree_control"); do
			[[ " $V2_SUBTREE " == *" $c "* ]] ||
				echo "-$c" >"$V2/cgroup.subtree_control" 2>/dev/null
		done
	fi
	mountpoint -q "$T/netns" 2>/dev/null && umount "$T/netns"
	rm -rf "$T"
}
trap cleanup EXIT

# The cases, in order; JAILER_CASES runs only some, JAILER_EXCLUDE leaves some out (on a
# host without KVM, scripts/check.sh runs kiln_in_jail inside the KVM test host instead).
ALL_CASES="bad_args kiln_in_jail basic pid_ns cgroup_v1 daemonized netns netns_missing exec_failures"
mkdir -p "$T/bin"
if [ "${JAILER_CASES:-}" != kiln_in_jail ] && ! gcc -static -O1 -o "$T/bin/probe" "$(dirname "$0")/probe.c"; then
	echo "FAIL jailer/build: cannot build tests/jailer/probe.c with gcc -static"
	exit 1
fi
PROBE=$T/bin/probe
cp /bin/true "$T/bin/dyn" # dynamically linked: its interpreter is not in the jail

# jail ID [flags...] [-- probe args]: runs the jailer in the foreground; sets rc, out, err.
# What it execs may ignore SIGTERM (kiln blocks it for its signalfd): SIGKILL 5 s after the
# SIGTERM at 20 s, so a hang ends as rc 124 or 137 rather than never.
jail() {
	local id=$1
	shift
	timeout -k 5 20 "$JAILER" --id "$id" --uid $JUID --gid $JGID --chroot-base-dir "$BASE" "$@" \
		>"$T/$id.out" 2>"$T/$id.err" </dev/null
	rc=$?
	out=$(cat "$T/$id.out")
	err=$(cat "$T/$id.err")
}

# start ID [flags...]: runs the jailer around the probe in the background and waits for
# READY; sets pid (the probe's host pid), jpid (the jailer's), out. Returns 1 on failure.
start() {
	local id=$1
	shift
	"$JAILER" --id "$id" --exec-file "$PROBE" --uid $JUID --gid $JGID \
		--chroot-base-dir "$BASE" "$@" >"$T/$id.out" 2>"$T/$id.err" </dev/null &
	jpid=$!
	PIDS+=("$jpid")
	local pidfile=$BASE/probe/$id/root/probe.pid
	for _ in $(seq 100); do
		grep -q READY "$T/$id.out" 2>/dev/null && break
		if [[ " $* " == *" --daemonize "* ]] && [ -s "$pidfile" ] &&
			grep -q '^Name:.*probe' "/proc/$(cat "$pidfile")/status" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	out=$(cat "$T/$id.out")
	pid=$(cat "$pidfile" 2>/dev/null)
	[ -n "$pid" ] && PIDS+=("$pid")
	[ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm")" = probe ]
}

stop() {
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 50); do
		[ -d "/proc/$pid" ] || break
		sleep 0.1
	done
	wait "$jpid" 2>/dev/null
}

# status_field KEY: that line of /proc/$pid/status without the key, blanks squeezed to one.
status_field() { sed -n "s/^$1:[[:space:]]*//p" "/proc/$pid/status" | tr -s '\t ' '  '; }
one_line() { [ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ]; }
has() { grep -qF -- "$1" <<<"$out"; }

# ---- the basic jail: no fork, cgroup v2, rlimits, kiln arguments, a user-staged file ----
basic() {
	local id=basic-$TAG r
	mkdir -p "$BASE/probe/$id/root"
	echo '{}' >"$BASE/probe/$id/root/vm.json"
	local cg=()
	if [ -n "$V2" ]; then
		cg=(--cgroup-version 2 --parent-cgroup "$TAG" --cgroup cgroup.max.descendants=5)
		grep -qw hugetlb "$V2/cgroup.controllers" && [ -d /sys/kernel/mm/hugepages/hugepages-2048kB ] &&
			cg+=(--cgroup hugetlb.2MB.max=4194304)
		CGDIRS+=("$V2/$TAG/$id" "$V2/$TAG")
	fi
	if ! start "$id" "${cg[@]}" --resource-limit no-file=1234 --resource-limit fsize=1048576 \
		-- --config-file /vm.json --no-api; then
		fail basic "the probe did not start: $(cat "$T/$id.err")"
		return
	fi
	r=$BASE/probe/$id/root
	check basic/jailer-pid "kiln keeps the jailer's pid without --new-pid-ns" [ "$pid" = "$jpid" ]
	check basic/ids "$(grep ^uid <<<"$out")" has "uid=$JUID euid=$JUID gid=$JGID egid=$JGID groups=0 "
	check basic/caps-inside "$(grep cap <<<"$out" | tr '\n' ' ')" \
		has "capeff=0000000000000000 capprm=0000000000000000 capinh=0000000000000000"
	check basic/bounding-inside "$(grep capbnd <<<"$out")" has "capbnd_count=0"
	check basic/no-new-privs "$(grep nnp <<<"$out")" has "nnp=1 seccomp=0"
	local caps
	caps=$(for k in CapInh CapPrm CapEff CapBnd CapAmb; do status_field $k; done | sort -u)
	check basic/caps-host "/proc/$pid/status caps: $caps" [ "$caps" = 0000000000000000 ]
	check basic/status-host "NoNewPrivs $(status_field NoNewPrivs), Seccomp \
$(status_field Seccomp), Uid $(status_field Uid), Gid $(status_field Gid)" [ "$(status_field NoNewPrivs)" = 1 -a \
		"$(status_field Seccomp)" = 0 -a "$(status_field Uid)" = "$JUID $JUID $JUID $JUID" -a \
		"$(status_field Gid)" = "$JGID $JGID $JGID $JGID" ]
	local inside host_view
	inside=$(grep '^root:' <<<"$out" | tr ' ' '\n' | tail -n +2 | sort | tr '\n' ' ')
	host_view=$(ls -A "/proc/$pid/root" | sort | tr '\n' ' ')
	check basic/root "/ holds: $inside" [ "$inside" = "dev probe probe.pid run vm.json " -a \
		"$inside" = "$host_view" ]
	check basic/devices "$(grep ^dev <<<"$out" | tr '\n' ';')" \
		[ "$(grep -c -e "dev /dev/kvm c 10:232 $JUID:$JGID 0600" \
			-e "dev /dev/net/tun c 10:200 $JUID:$JGID 0600" \
			-e "dev /dev/urandom c 1:9 $JUID:$JGID 0600" <<<"$out")" -eq 3 ]
	check basic/rlimits "$(grep nofile <<<"$out")" has "nofile=1234/1234 fsize=1048576/1048576"
	check basic/exec "$(grep envc <<<"$out")" \
		has "envc=0 open_fds=0 argc=6 args: /probe --id $id --config-file /vm.json --no-api"
	check basic/mount-ns "own mount namespace, only the jail mounted" \
		[ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" -a \
		"$(wc -l <"/proc/$pid/mountinfo")" -eq 1 -a \
		"$(awk '{ print $4, $5 }' "/proc/$pid/mountinfo")" = "$r /" ]
	check basic/same-pid-net-ns "pid and net namespaces are the caller's" \
		[ "$(readlink "/proc/$pid/ns/pid")" = "$(readlink /proc/self/ns/pid)" -a \
		"$(readlink "/proc/$pid/ns/net")" = "$(readlink /proc/self/ns/net)" ]
	if [ "$(stat -c '%a %u:%g %h' "$r/probe")" = "755 0:0 1" ] &&
		[ "$(stat -c %i "$r/probe")" != "$(stat -c %i "$PROBE")" ] && cmp -s "$r/probe" "$PROBE" &&
		[ "$(stat -c '%a %u:%g' "$r")" = "700 $JUID:$JGID" ] &&
		[ "$(stat -c '%a %u:%g' "$BASE/probe/$id")" = "755 0:0" ] &&
		[ "$(cat "$r/probe.pid")" = "$pid" ]; then
		pass basic/layout
	else
		fail basic/layout "$(stat -c '%n %a %u:%g links %h' "$r/probe" "$r" "$BASE/probe/$id" |
			tr '\n' ';') pid file $(cat "$r/probe.pid")"
	fi
	if [ -n "$V2" ]; then
		local want="0::/$TAG/$id" hugetlb=ok
		if [[ " ${cg[*]} " == *hugetlb* ]] &&
			[ "$(cat "$V2/$TAG/$id/hugetlb.2MB.max")" != 4194304 ]; then hugetlb=bad; fi
		check basic/cgroup-v2 "$(grep ^0:: "/proc/$pid/cgroup"), hugetlb $hugetlb" \
			[ "$(grep ^0:: "/proc/$pid/cgroup")" = "$want" -a \
			"$(cat "$V2/$TAG/$id/cgroup.max.descendants")" = 5 -a $hugetlb = ok ]
	else
		echo "SKIP jailer/basic/cgroup-v2: no cgroup2 mount"
	fi
	stop
	# The same id again: refused with one line, the jail untouched.
	jail "$id" --exec-file "$PROBE"
	if [ $rc -eq 13 ] && one_line && [ -f "$r/probe" ] &&
		grep -q "probe.pid exists.*remove $BASE/probe/$id" <<<"$err"; then
		pass retry-used-id
	else
		fail retry-used-id "exit $rc: $err"
	fi
}

# ---- --new-pid-ns: the probe is pid 1 of its own pid namespace --------------------------
pid_ns() {
	local id=pidns-$TAG
	if ! start "$id" --new-pid-ns; then
		fail pid-ns "the probe did not start: $(cat "$T/$id.err")"
		return
	fi
	wait "$jpid"
	local jrc=$?
	if [ $jrc -eq 0 ] && [ "$pid" != "$jpid" ] && [[ " $(grep ^uid <<<"$out") " == *" pid=1 "* ]] &&
		[ "$(readlink "/proc/$pid/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]; then
		pass pid-ns
	else
		fail pid-ns "exit $jrc, host pid $pid, jailer $jpid: $(grep ^uid <<<"$out")"
	fi
	stop
}

# ---- cgroup v1: three controllers, a nested parent, cpuset inherited ---------------------
cgroup_v1() {
	local id=v1-$TAG parent=$TAG/nested c d
	local -A mnt
	for c in cpu pids cpuset; do
		d=$(mount_of cgroup "$c")
		if [ -z "$d" ]; then
			echo "SKIP jailer/cgroup-v1: no cgroup v1 $c hierarchy"
			return
		fi
		CGDIRS+=("$d/$parent/$id" "$d/$parent" "$d/$TAG")
		mnt[$c]=$d
	done
	if ! start "$id" --parent-cgroup "$parent" --cgroup cpu.shares=512 --cgroup pids.max=64 \
		--cgroup cpuset.cpus=0; then
		fail cgroup-v1 "the probe did not start: $(cat "$T/$id.err")"
		return
	fi
	local cg
	cg=$(cat "/proc/$pid/cgroup")
	check cgroup-v1 "$(tr '\n' ' ' <<<"$cg")" \
		[ "$(grep -c -E "^[0-9]+:(cpu|pids|cpuset):/$parent/$id\$" <<<"$cg")" -eq 3 -a \
		"$(cat "${mnt[cpu]}/$parent/$id/cpu.shares")" = 512 -a \
		"$(cat "${mnt[pids]}/$parent/$id/pids.max")" = 64 -a \
		"$(cat "${mnt[cpuset]}/$parent/$id/cpuset.cpus")" = 0 -a \
		-n "$(cat "${mnt[cpuset]}/$parent/$id/cpuset.mems")" ]
	stop
}

# ---- --daemonize --new-pid-ns: the jailer returns, the probe runs detached ---------------
daemonized() {
	local id=daemon-$TAG
	if ! start "$id" --daemonize --new-pid-ns; then
		fail daemonize "the probe did not start: $(cat "$T/$id.err")"
		return
	fi
	wait "$jpid"
	local jrc=$? fds sid
	fds=$(readlink "/proc/$pid/fd/0" "/proc/$pid/fd/1" "/proc/$pid/fd/2" | sort -u)
	sid=$(awk '{ print $6 }' "/proc/$pid/stat")
	check daemonize "exit $jrc, stdio $fds, session $sid" \
		[ $jrc -eq 0 -a "$fds" = /dev/null -a "$sid" = "$pid" ]
	stop
}

# ---- --netns: joins the namespace of a file ------------------------------------------------
netns() {
	local id=netns-$TAG
	touch "$T/netns"
	if ! unshare --net="$T/netns" true; then
		echo "SKIP jailer/netns: cannot create a network namespace"
		return
	fi
	if ! start "$id" --netns "$T/netns"; then
		fail netns "the probe did not start: $(cat "$T/$id.err")"
		return
	fi
	check netns "$(readlink "/proc/$pid/ns/net")" \
		[ "$(readlink "/proc/$pid/ns/net")" = "net:[$(stat -L -c %i "$T/netns")]" ]
	stop
}

# ---- failure paths --------------------------------------------------------------------------
bad_args() {
	local bad_base=$T/bad-base
	local cases=(
		"--uid is required|--id x --exec-file $PROBE --gid 1"
		"--id: |--id a/b --exec-file $PROBE --uid 1 --gid 1"
		"--id: |--id .. --exec-file $PROBE --uid 1 --gid 1"
		"--id: |--id a.b --exec-file $PROBE --uid 1 --gid 1"
		"--uid: |--id x --exec-file $PROBE --uid abc --gid 1"
		"--exec-file: |--id x --exec-file probe --uid 1 --gid 1"
		"--exec-file: |--id x --exec-file $T/no-such-file --uid 1 --gid 1"
		"--chroot-base-dir: |--id x --exec-file $PROBE --uid 1 --gid 1 --chroot-base-dir rel"
		"--cgroup: |--id x --exec-file $PROBE --uid 1 --gid 1 --cgroup cpu.max"
		"--cgroup: |--id x --exec-file $PROBE --uid 1 --gid 1 --cgroup ../x.y=1"
		"--cgroup-version: |--id x --exec-file $PROBE --uid 1 --gid 1 --cgroup-version 3"
		"--resource-limit: |--id x --exec-file $PROBE --uid 1 --gid 1 --resource-limit foo=1"
		"--netns: |--id x --exec-file $PROBE --uid 1 --gid 1 --netns rel/ns"
	)
	local c n=0 args
	for c in "${cases[@]}"; do
		n=$((n + 1))
		read -r -a args <<<"${c#*|}"
		timeout 20 "$JAILER" --chroot-base-dir "$bad_base" "${args[@]}" \
			>"$T/bad.out" 2>"$T/bad.err" </dev/null
		rc=$?
		err=$(cat "$T/bad.err")
		if [ $rc -ne 2 ] || ! one_line || ! grep -qF -- "${c%%|*}" <<<"$err"; then
			fail "bad-args/$n" "exit $rc, expected 2 and one line with '${c%%|*}': $err"
		elif [ -e "$bad_base" ]; then
			fail "bad-args/$n" "$bad_base was created"
		else
			pass "bad-args/$n"
		fi
	done
}

netns_missing() {
	local id=nonetns-$TAG r
	r=$BASE/probe/$id/root
	jail "$id" --exec-file "$PROBE" --netns "$T/no-such-netns"
	if [ $rc -eq 16 ] && one_line && grep -q -- --netns <<<"$err" && [ ! -e "$BASE/probe/$id" ]
	then
		pass netns-missing
	else
		fail netns-missing "exit $rc, $(ls -A "$BASE/probe/$id" 2>&1): $err"
	fi
	# A staged root survives the undo with only the user's file in it.
	mkdir -p "$r" && echo '{}' >"$r/vm.json"
	jail "$id" --exec-file "$PROBE" --netns "$T/no-such-netns"
	check netns-missing-staged "exit $rc, left: $(ls -A "$r" | tr '\n' ' ')" \
		[ $rc -eq 16 -a "$(ls -A "$r")" = vm.json ]
	if start "$id"; then pass retry-after-failure; else
		fail retry-after-failure "$(cat "$T/$id.err")"
	fi
	stop
}

exec_failures() {
	local id=execfail-$TAG cg=()
	if [ -n "$V2" ]; then
		cg=(--cgroup-version 2 --cgroup cgroup.max.descendants=3)
		CGDIRS+=("$V2/dyn/$id" "$V2/dyn")
	fi
	# With --new-pid-ns the parent is still root when the child's execve fails: full undo.
	jail "$id" --exec-file "$T/bin/dyn" --new-pid-ns "${cg[@]}"
	if [ $rc -eq 28 ] && one_line && grep -q execve <<<"$err" && [ ! -e "$BASE/dyn/$id" ] &&
		{ [ -z "$V2" ] || [ ! -e "$V2/dyn" ]; }; then
		pass exec-fail-undone
	else
		fail exec-fail-undone "exit $rc, left $(ls "$BASE/dyn" "$V2/dyn" 2>&1 | tr '\n' ' '): $err"
	fi
	# Without a fork nothing can be undone after the ids changed: the jail stays and a retry
	# says so.
	id=execfail2-$TAG
	jail "$id" --exec-file "$T/bin/dyn"
	local first_rc=$rc first_err=$err
	jail "$id" --exec-file "$T/bin/dyn"
	check exec-fail-kept "exit $first_rc then $rc: $first_err / $err" \
		[ $first_rc -eq 28 -a $rc -eq 13 -a -e "$BASE/dyn/$id/root/dyn.pid" ]
}

# ---- the real kiln in a jail: boots the tiny test guest from files staged in the root ----
kiln_in_jail() {
	local kiln=${KILN:-$BUILD/kiln} tiny=${TINY:-$BUILD/tiny-guest.elf} id=kiln-$TAG r
	if [ ! -x "$kiln" ] || [ ! -f "$tiny" ] || [ ! -c /dev/kvm ]; then
		echo "SKIP jailer/kiln-in-jail: needs $kiln, $tiny and /dev/kvm"
		return
	fi
	r=$BASE/kiln/$id/root
	mkdir -p "$r"
	cp "$tiny" "$r/tiny.elf"
	printf '{"boot-source":{"kernel_image_path":"/tiny.elf","boot_args":"p"},
	"machine-config":{"vcpu_count":1,"mem_size_mib":64}}\n' >"$r/vm.json"
	# Without a fork the jailer becomes kiln: its exit status is kiln's.
	local nf=kilnnf-$TAG
	mkdir -p "$BASE/kiln/$nf/root"
	cp "$r/tiny.elf" "$r/vm.json" "$BASE/kiln/$nf/root/"
	jail "$nf" --exec-file "$(realpath "$kiln")" -- --no-api --config-file /vm.json
	if [ $rc -eq 0 ] && grep -qx "kiln tiny guest: hello" <<<"$out"; then
		pass kiln-in-jail-no-fork
	elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		fail kiln-in-jail-no-fork "timed out after 20 s (exit $rc): stdout '$out', stderr $err"
	else
		fail kiln-in-jail-no-fork "kiln exit $rc, stdout '$out', stderr $err"
	fi
	# With --new-pid-ns the jailer returns once kiln runs; a child subreaper
	# (tests/jailer/reaper.c) adopts kiln and reports its exit status.
	local reaper=${REAPER:-$BUILD/jailer-reaper}
	if [ ! -x "$reaper" ]; then
		reaper=$T/bin/reaper
		if ! gcc -static -O1 -o "$reaper" "$(dirname "$0")/reaper.c"; then
			fail kiln-in-jail "no $BUILD/jailer-reaper (make $BUILD/jailer-reaper) and no gcc"
			return
		fi
	fi
	timeout 30 "$reaper" "$T/$id.reaped" "$JAILER" --id "$id" --uid $JUID --gid $JGID \
		--chroot-base-dir "$BASE" --exec-file "$(realpath "$kiln")" --new-pid-ns \
		-- --no-api --config-file /vm.json >"$T/$id.out" 2>"$T/$id.err" </dev/null
	rc=$?
	local kpid kiln_status
	kpid=$(cat "$r/kiln.pid" 2>/dev/null)
	out=$(cat "$T/$id.out")
	if [ $rc -eq 124 ]; then
		[ -n "$kpid" ] && kill -KILL "$kpid" 2>/dev/null
		fail kiln-in-jail "timed out after 30 s: kiln (pid ${kpid:-?}) did not exit; stdout '$out'"
		return
	fi
	kiln_status=$(awk -v p="$kpid" '$1 == p { print $2, $3 }' "$T/$id.reaped" 2>/dev/null)
	if [ $rc -eq 0 ] && [ -n "$kpid" ] && [ "$kiln_status" = "exit 0" ] &&
		grep -qx "kiln tiny guest: hello" <<<"$out"; then
		pass kiln-in-jail
	else
		fail kiln-in-jail "jailer exit $rc, kiln pid '${kpid}' status '$kiln_status', reaped \
$(tr '\n' ';' <"$T/$id.reaped" 2>/dev/null) stdout '$out', stderr $(cat "$T/$id.err")"
	fi
}

for c in ${JAILER_CASES:-$ALL_CASES}; do
	[[ " ${JAILER_EXCLUDE:-} " == *" $c "* ]] || "$c"
done
exit $failed
