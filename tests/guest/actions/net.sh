# virtio-net actions of the e2e test guest (sourced by /init) for tests/e2e/cases/net-*:
# the host side (a TAP with an address, busybox nc) is set up by the case. Interfaces are
# found by the guest_mac of the case's config. Results are "KILN-E2E: net-<what> ..."
# lines, failures "KILN-E2E: error: net-<what>: ...".
# Kernel parameters: kiln.net=<mac>,<addr/prefix>,<peer>[;...] one entry per interface
# (';'-separated), kiln.net_bytes=N for the transfers (default 64 MiB).
# shellcheck shell=sh disable=SC2317 # actions are called by name

# net_iface MAC: the name of the interface with that MAC address.
net_iface() {
	for d in /sys/class/net/*; do
		if [ "$(cat "$d/address" 2> /dev/null)" = "$1" ]; then
			basename "$d"
			return 0
		fi
	done
	return 1
}

# net_up MAC ADDR PEER: configures the interface and pings the peer; 0 or an error line.
net_up() {
	i=0
	while ! ifc=$(net_iface "$1"); do
		i=$((i + 1))
		if [ "$i" -gt 50 ]; then
			say "error: net-up: no interface with MAC $1 ($(cd /sys/class/net && echo *))"
			return 1
		fi
		sleep 0.1
	done
	if ! ip addr add "$2" dev "$ifc" || ! ip link set "$ifc" up; then
		say "error: net-up: cannot configure $ifc"
		return 1
	fi
	if ! out=$(ping -c 3 -W 5 "$3" 2>&1); then
		say "error: net-ping: $ifc -> $3: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
		return 1
	fi
	say "net-up $ifc $1 $2 ping $3 ok"
	# The virtio features the driver negotiated: one 0/1 character per bit, bit 0 first.
	say "net-features $ifc $(cat "/sys/class/net/$ifc/device/features")"
}

# net_each: runs net_up for every kiln.net entry; the first peer is left in $net_peer.
net_each() {
	net_peer=
	spec=$(kernel_param kiln.net)
	old_ifs=$IFS
	IFS=';'
	# shellcheck disable=SC2086 # split on ';' on purpose
	set -- $spec
	IFS=$old_ifs
	[ $# -gt 0 ] || {
		say "error: net-up: no kiln.net= on the command line"
		return 1
	}
	for entry in "$@"; do
		old_ifs=$IFS
		IFS=,
		# shellcheck disable=SC2086
		set -- $entry
		IFS=$old_ifs
		net_up "$1" "$2" "$3" || return 1
		[ -n "$net_peer" ] || net_peer=$3
	done
}

# Interfaces up, each pinging its peer.
action_net_up() {
	net_each
}

# kiln.net_bytes of random data to the peer's port 5001 (the host stores it), then from
# its port 5002 (the host serves a file): the sha256 of both sides are compared by the case.
action_net_transfer() {
	net_each || return 0
	bytes=$(kernel_param kiln.net_bytes)
	bytes=${bytes:-67108864}
	head -c "$bytes" /dev/urandom > /tmp/tx.bin
	sum=$(sha256sum < /tmp/tx.bin | cut -d' ' -f1)
	t0=$(uptime_cs)
	if ! nc "$net_peer" 5001 < /tmp/tx.bin; then
		say "error: net-tx: nc to $net_peer:5001 failed"
		return 0
	fi
	say "net-tx $bytes sha256=$sum in $(($(uptime_cs) - t0))0 ms"
	rm -f /tmp/tx.bin
	# nc must not see EOF on its stdin before the host has sent everything.
	mkfifo /tmp/nc.in
	t0=$(uptime_cs)
	sum=$(nc "$net_peer" 5002 <> /tmp/nc.in | sha256sum | cut -d' ' -f1)
	say "net-rx sha256=$sum in $(($(uptime_cs) - t0))0 ms"
}
