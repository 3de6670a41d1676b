# REST API actions of the e2e test guest (sourced by /init) for tests/e2e/cases/api-*.
# shellcheck shell=sh disable=SC2317 # actions are called by name

# api_vdb: "api vdb sectors=<n> sha256=<sum>" of /dev/vdb as the device has it now (direct
# reads: nothing from the page cache of an earlier backing file).
api_vdb() {
	sum=$(dd if=/dev/vdb iflag=direct bs=65536 2> /dev/null | sha256sum | cut -d' ' -f1)
	say "api vdb sectors=$(cat /sys/block/vdb/size) sha256=$sum"
}

# Checks the root drive kiln put on the command line (mounted read-only: it must be an ext4
# with /sbin/init), reports the data drive /dev/vdb and brings up the network (kiln.net=,
# see net.sh). Then prints "tick <n>" once a second (the host pauses and resumes the VM
# meanwhile and watches the ticks stop and go on) until the host's Ctrl+Alt+Del reboots it.
# A console line "reread" (after the host gave vdb a new backing file) waits for vdb's new
# size and reports it again; any other line, or 600 ticks, ends the guest too.
action_api_ticks() {
	root=$(kernel_param root)
	blk_wait_dev "${root#/dev/}" && blk_wait_dev vdb || return 0
	mkdir -p /apiroot
	if ! out=$(mount -t ext4 -o ro "$root" /apiroot 2>&1); then
		say "error: api: mount $root: $out"
		return 0
	fi
	[ -x /apiroot/sbin/init ] && say "api root $root has /sbin/init"
	umount /apiroot
	api_vdb
	net_each || return 0
	say "api ticking"
	n=0
	while [ "$n" -lt 600 ]; do
		# shellcheck disable=SC3045 # busybox ash has read -t
		if read -r -t 1 line; then
			[ "$line" = reread ] || break
			old=$(cat /sys/block/vdb/size)
			i=0
			while [ "$(cat /sys/block/vdb/size)" = "$old" ] && [ "$i" -lt 50 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			api_vdb
			continue
		fi
		say "tick $n"
		n=$((n + 1))
	done
	say "api done input=${line:-timeout}"
	guest_finish reboot
}
