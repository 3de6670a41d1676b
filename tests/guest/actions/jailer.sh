# jailer actions of the e2e test guest (sourced by /init), for tests/e2e/cases/jailer-*.
# shellcheck shell=sh disable=SC2317 # actions are called by name

# Keeps the guest running while the host inspects kiln from outside: says "waiting", reads
# one line from the console (the host writes it into kiln's stdin when its checks are done)
# for at most kiln.wait_secs seconds (default 90), reports "wait-done input=<line>" or
# "wait-done timeout", then reboots (kiln must exit 0).
action_wait_then_reboot() {
	secs=$(kernel_param kiln.wait_secs)
	say "waiting for a console line (${secs:-90} s)"
	# shellcheck disable=SC3045 # busybox ash has read -t
	if read -r -t "${secs:-90}" line; then
		say "wait-done input=$line"
	else
		say "wait-done timeout"
	fi
	guest_finish reboot
}
