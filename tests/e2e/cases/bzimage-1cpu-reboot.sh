#!/bin/sh
# bzimage-1cpu-reboot: the stock Debian bzImage boots with 1 vCPU and 256 MiB
# to the test init, which must see all CPUs and the memory and print over the serial
# console, then runs 'reboot -f': kiln must exit 0.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
expect_boots_and_does bzimage-1cpu-reboot.json reboot reboot
pass
