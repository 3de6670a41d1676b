#!/bin/sh
# bzimage-2cpu-poweroff: the stock Debian bzImage boots with 2 vCPUs and 320 MiB
# to the test init, which must see all CPUs and the memory and print over the serial
# console, then runs 'poweroff -f': kiln must exit 0.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
expect_boots_and_does bzimage-2cpu-poweroff.json poweroff poweroff
pass
