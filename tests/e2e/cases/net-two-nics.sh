#!/bin/sh
# net-two-nics: two network interfaces, each a virtio-net device with its own window, IRQ
# and DSDT entry, on its own TAP and subnet; the guest finds both by MAC, and each pings
# its host side. The second has rate limiters configured (they must not get in the way).
# Each negotiated the offloads kiln offers, as a Linux guest does (QEMU's set): checksums
# both ways, TSO4/6 both ways, mergeable rx buffers, MAC, status, indirect descriptors,
# EVENT_IDX and VERSION_1.
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
for ifc in eth0 eth1; do
	bits=$(net_result "net-features $ifc")
	echo "$ifc negotiated features: $bits"
	for pair in 0:CSUM 1:GUEST_CSUM 5:MAC 7:GUEST_TSO4 8:GUEST_TSO6 11:HOST_TSO4 \
		12:HOST_TSO6 15:MRG_RXBUF 16:STATUS 28:INDIRECT_DESC 29:EVENT_IDX 32:VERSION_1; do
		bit=${pair%%:*}
		[ "$(echo "$bits" | cut -c$((bit + 1)))" = 1 ] ||
			fail "$ifc: feature ${pair#*:} (bit $bit) not negotiated: $bits"
	done
done
expect_end poweroff
pass
