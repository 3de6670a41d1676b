# Snapshot actions of the e2e test guest (sourced by /init) for tests/e2e/cases/snapshot-*.
# The guest counts on its console ("tick <n>", once a second) while the host pauses it,
# snapshots it, kills kiln and restores it in a new process: the count must go on from
# where it stopped, with no second boot. Console lines from the host drive the rest.
# shellcheck shell=sh disable=SC2317 # actions are called by name

# The case's one drive: /dev/vda.
snap_dev=vda

# snap_write OFFSET_MIB NAME: 1 MiB of random data at that offset, flushed, reported as
# "snap NAME sha256=<sum>".
snap_write() {
	head -c 1048576 /dev/urandom > /tmp/snap.data
	if ! out=$(dd if=/tmp/snap.data of=/dev/$snap_dev bs=1048576 seek="$1" conv=fsync 2>&1); then
		say "error: snap $2: $out"
		return 1
	fi
	say "snap $2 sha256=$(sha256sum < /tmp/snap.data | cut -d' ' -f1)"
}

# A vsock echo server on port 5000 that keeps serving across the host's restores (a
# listening socket survives a transport reset; connections do not).
snap_vsock_server() {
	while :; do
		vsock-tool listen 5000 serve-echo > /tmp/vsock-echo.out 2>&1
		say "snap vsock-echo $(tail -n 1 /tmp/vsock-echo.out)"
	done
}

# Console commands: "after" writes 1 MiB at 1 MiB of the drive and pings the host again, "done"
# powers off. Without a drive (kiln.snap_disk=0) or network, those parts are skipped.
snap_command() {
	case $1 in
	after)
		[ "$(kernel_param kiln.snap_disk)" = 0 ] || snap_write 1 after
		[ -z "$net_peer" ] || {
			if out=$(ping -c 2 -W 5 "$net_peer" 2>&1); then
				say "snap ping ok"
			else
				say "error: snap ping: $(echo "$out" | tail -n 1)"
			fi
		}
		;;
	*) return 1 ;;
	esac
}

action_snap_ticks() {
	net_peer=
	if [ "$(kernel_param kiln.snap_disk)" != 0 ]; then
		blk_wait_dev "$snap_dev" || return 0
		snap_write 0 before || return 0
	fi
	[ -z "$(kernel_param kiln.net)" ] || net_each || return 0
	snap_vsock_server &
	say "snap ready"
	n=0
	while [ "$n" -lt 900 ]; do
		# shellcheck disable=SC3045 # busybox ash has read -t
		if read -r -t 1 line; then
			snap_command "$line" || break
			continue
		fi
		say "tick $n"
		n=$((n + 1))
	done
	say "snap done input=${line:-timeout}"
	guest_finish poweroff
}
