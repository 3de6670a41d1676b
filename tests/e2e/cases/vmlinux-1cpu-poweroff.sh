#!/bin/sh
# vmlinux-1cpu-poweroff: the vmlinux extracted from the Debian bzImage boots with 1 vCPU and 256 MiB
# to the test init, which must see all CPUs and the memory and print over the serial
# console, then runs 'poweroff -f': kiln must exit 0.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
expect_boots_and_does vmlinux-1cpu-poweroff.json poweroff poweroff
pass
