# REST API actions of the e2e test guest (sourced by /init) for tests/e2e/cases/api-*.
# shellcheck shell=sh disable=SC2317 # actions are called by name

# Checks the root drive kiln put on the command line (mounted read-only: it must be an ext4
# with /sbin/init) and the network (kiln.net=, see net.sh), then prints "tick <n>" once a
# second (the host pauses and resumes the VM meanwhile and watches the ticks stop and go on)
# until the host's Ctrl+Alt+Del reboots it; a console line or 600 ticks end it too.
action_api_ticks() {
	root=$(kernel_param root)
	blk_wait_dev "${root#/dev/}" || return 0
	mkdir -p /apiroot
	if ! out=$(mount -t ext4 -o ro "$root" /apiroot 2>&1); then
		say "error: api: mount $root: $out"
		return 0
	fi
	[ -x /apiroot/sbin/init ] && say "api root $root has /sbin/init"
	umount /apiroot
	net_each || return 0
	say "api ticking"
	n=0
	# shellcheck disable=SC3045 # busybox ash has read -t
	while ! read -r -t 1 line; do
		say "tick $n"
		n=$((n + 1))
		[ "$n" -lt 600 ] || break
	done
	say "api done input=${line:-timeout}"
	guest_finish reboot
}
