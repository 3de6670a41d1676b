#!/bin/sh
# net-two-nics: two network interfaces, each a virtio-net device with its own window, IRQ
# and DSDT entry, on its own TAP and subnet; the guest finds both by MAC, and each pings
# its host side. The second has rate limiters configured (they must not get in the way).
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/net.inc
. "$E2E_CASES/net.inc"
tap_up kiln-nn0 10.77.1.1/24
tap_up kiln-nn1 10.77.2.1/24
run_kiln net-two-nics.json
expect_console "KILN-E2E: ready"
up0=$(net_result "net-up eth0")
up1=$(net_result "net-up eth1")
echo "eth0: $up0"
echo "eth1: $up1"
case $up0 in "06:00:0a:4d:01:02 "*) ;; *) fail "eth0 is not the first interface: $up0" ;; esac
case $up1 in "06:00:0a:4d:02:02 "*) ;; *) fail "eth1 is not the second interface: $up1" ;; esac
expect_end poweroff
pass
