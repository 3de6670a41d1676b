#!/bin/sh
# mmio-cmdline-acpi-off: --virtio-mmio-cmdline for kernels that do not read the DSDT: the
# guest boots with acpi=off and still finds the drive and the vsock device through the
# virtio_mmio.device= arguments kiln adds to its command line. Without the flag the same
# guest must find no virtio device (so the arguments, not ACPI, did it). Without ACPI the
# guest ends with a reboot through the i8042.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
cd "$E2E_WORK" || fail "cd $E2E_WORK"
dd if=/dev/zero of="$E2E_CASE.vda" bs=1048576 count=4 2> /dev/null || fail "cannot create the drive"
rm -f "$E2E_CASE.sock"
run_kiln mmio-cmdline-acpi-off.json --virtio-mmio-cmdline
expect_console "KILN-E2E: action=devices"
expect_end reboot
got=$(grep -a 'KILN-E2E: devices ' "$console" | tail -n 1 | tr -d '\r')
echo "with --virtio-mmio-cmdline: ${got#*KILN-E2E: }"
[ "${got#*KILN-E2E: }" = "devices acpi=off virtio=2 19 vda=yes" ] ||
	fail "expected 'devices acpi=off virtio=2 19 vda=yes', got '${got#*KILN-E2E: }'"
rm -f "$E2E_CASE.sock"
run_kiln mmio-cmdline-acpi-off.json
expect_end reboot
got=$(grep -a 'KILN-E2E: devices ' "$console" | tail -n 1 | tr -d '\r')
echo "without it: ${got#*KILN-E2E: }"
[ "${got#*KILN-E2E: }" = "devices acpi=off virtio= vda=no" ] ||
	fail "without --virtio-mmio-cmdline and ACPI the guest still found devices: '${got#*KILN-E2E: }'"
pass
