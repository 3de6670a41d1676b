#!/bin/sh
# vmlinux-2cpu-reboot: the vmlinux extracted from the Debian bzImage boots with 2 vCPUs and 320 MiB
# to the test init, which must see all CPUs and the memory and print over the serial
# console, then runs 'reboot -f': kiln must exit 0.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
expect_boots_and_does vmlinux-2cpu-reboot.json reboot reboot
pass
