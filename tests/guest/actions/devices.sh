# Device discovery actions of the e2e test guest (sourced by /init).
# shellcheck shell=sh disable=SC2317 # actions are called by name

# The virtio devices the kernel found and how: "KILN-E2E: devices acpi=<on|off>
# virtio=<device ids> vda=<yes|no>" (ids from /sys/bus/virtio/devices/*/device: 2 is block,
# 1 net, 19 vsock). Ends with a reboot through the i8042: with acpi=off there is no poweroff.
action_devices() {
	i=0
	while [ ! -b /dev/vda ] && [ "$i" -lt 50 ]; do
		i=$((i + 1))
		sleep 0.1
	done
	acpi=off
	[ ! -d /sys/firmware/acpi/tables ] || acpi=on
	ids=$(cat /sys/bus/virtio/devices/*/device 2> /dev/null | sed 's/^0x0*//' | sort -n | tr '\n' ' ')
	vda=no
	[ ! -b /dev/vda ] || vda=yes
	say "devices acpi=$acpi virtio=${ids% } vda=$vda"
	say "devices mmio-args=$(tr ' ' '\n' < /proc/cmdline | grep '^virtio_mmio\.device=' | tr '\n' ' ')"
	# Debian's kernel is built without VIRTIO_MMIO_CMDLINE_DEVICES: it ignores the arguments.
	if dmesg | grep -q "virtio_mmio: unknown parameter 'device'"; then
		say "devices mmio-cmdline-support=no"
	else
		say "devices mmio-cmdline-support=yes"
	fi
	guest_finish reboot
}
