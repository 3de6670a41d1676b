#!/bin/sh
# mmio-cmdline-acpi-off: --virtio-mmio-cmdline for kernels that do not read the DSDT: the
# guest boots with acpi=off; kiln must put one virtio_mmio.device=4K@<base>:<irq> argument per
# device (the drive at the first window and IRQ, the vsock device at the second) on the
# command line, and a kernel built with VIRTIO_MMIO_CMDLINE_DEVICES then finds both devices.
# Without the flag the guest must find no virtio device and get no such argument (so the
# arguments, not ACPI, did it). Debian's stock kernel lacks VIRTIO_MMIO_CMDLINE_DEVICES: with
# it the arguments are checked and the discovery part is skipped (`make guest-kernel` builds
# a kernel that has it). Without ACPI the guest ends with a reboot through the i8042.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
cd "$E2E_WORK" || fail "cd $E2E_WORK"
dd if=/dev/zero of="$E2E_CASE.vda" bs=1048576 count=4 2> /dev/null || fail "cannot create the drive"

# devices_line KEY: the rest of the guest's last "KILN-E2E: devices KEY" line.
devices_line() {
	line=$(grep -a "KILN-E2E: devices $1" "$console" | tail -n 1 | tr -d '\r')
	echo "${line#*KILN-E2E: devices "$1"}"
}

rm -f "$E2E_CASE.sock"
run_kiln mmio-cmdline-acpi-off.json
expect_end reboot
echo "without --virtio-mmio-cmdline: $(devices_line acpi=)"
[ "$(devices_line acpi=)" = "off virtio= vda=no" ] ||
	fail "without --virtio-mmio-cmdline and ACPI the guest found devices: $(devices_line acpi=)"
[ "$(devices_line mmio-args=)" = "" ] ||
	fail "virtio_mmio.device= arguments without the flag: $(devices_line mmio-args=)"

rm -f "$E2E_CASE.sock"
run_kiln mmio-cmdline-acpi-off.json --virtio-mmio-cmdline
expect_console "KILN-E2E: action=devices"
expect_end reboot
args=$(devices_line mmio-args=)
echo "with --virtio-mmio-cmdline: arguments '$args', $(devices_line acpi=)"
[ "$args" = "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 " ] ||
	fail "unexpected virtio_mmio.device= arguments: '$args'"
if [ "$(devices_line mmio-cmdline-support=)" = no ]; then
	skip "the guest kernel ignores virtio_mmio.device= (no VIRTIO_MMIO_CMDLINE_DEVICES); the arguments were right"
fi
[ "$(devices_line acpi=)" = "off virtio=2 19 vda=yes" ] ||
	fail "expected 'acpi=off virtio=2 19 vda=yes', got '$(devices_line acpi=)'"
pass
