#!/bin/sh
# bzimage-2cpu-smt: "smt": true with 2 vCPUs: the guest sees one core with two threads
# (CPU 0's thread siblings are 0-1), then powers off.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
expect_boots_and_does bzimage-2cpu-smt.json poweroff poweroff
pass
