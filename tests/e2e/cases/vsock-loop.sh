#!/bin/sh
# vsock-loop: 50 host connections to a guest listener, opened, echoed and closed one after
# the other, leave nothing behind in kiln: the same number of open files (/proc/<pid>/fd)
# and VmRSS within 2 MiB of what it was after a first warm-up connection. A last
# connection after the measurement lets the guest (52 in all) finish.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/vsock.inc
. "$E2E_CASES/vsock.inc"

# nr_fds PID: how many files PID has open.
nr_fds() {
	set -- "/proc/$1/fd"/*
	echo $#
}

# kiln_usage PID: "<open fds> <VmRSS kB>".
kiln_usage() {
	echo "$(nr_fds "$1") $(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status")"
}

# kiln_pid: the kiln running this case's config (other kilns may run on the host).
kiln_pid() {
	for p in $(pidof kiln); do
		if tr '\0' ' ' < "/proc/$p/cmdline" | grep -q "$E2E_CASE.json"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# settle PID FDS: waits up to 5 s for kiln's fd count to drop back to FDS (a connection
# is freed once the guest answered the SHUTDOWN with an RST).
settle() {
	i=0
	while [ "$(nr_fds "$1")" -gt "$2" ] && [ "$i" -lt 50 ]; do
		i=$((i + 1))
		sleep 0.1
	done
}

(
	"$UDS_TOOL" loop "$uds" 5004 1 || exit 1
	pid=$(kiln_pid) || exit 1
	sleep 1
	# shellcheck disable=SC2046 # two words wanted
	set -- $(kiln_usage "$pid")
	fds0=$1 rss0=$2
	"$UDS_TOOL" loop "$uds" 5004 50 || exit 1
	settle "$pid" "$fds0"
	echo "before $fds0 $rss0 after $(kiln_usage "$pid")"
	"$UDS_TOOL" loop "$uds" 5004 1 > /dev/null || exit 1 # the guest's last one: it ends
) > host.out 2>&1 &
host=$!
run_kiln vsock-loop.json
host_wait "$host" host.out
res=$(tail -n 1 host.out)
echo "kiln fds/rss: $res"
# shellcheck disable=SC2086 # six words wanted
set -- $res
[ "$1 $4" = "before after" ] || fail "host: $res"
[ "$5" = "$2" ] || fail "kiln had $2 open files before the 50 connections, $5 after"
[ "$6" -le $(($3 + 2048)) ] || fail "kiln's VmRSS grew from $3 kB to $6 kB"
guest_result vsock-loop
[ "$gres" = "served 52 connections, 212992 bytes" ] || fail "guest: $gres"
expect_uds_removed
expect_end poweroff
pass
