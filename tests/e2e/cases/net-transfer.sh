#!/bin/sh
# net-transfer: the guest's virtio-net interface on a host TAP (10.77.0.1/24) pings the
# host, sends it 16 MiB over TCP (busybox nc, host listener on port 5001), then fetches
# 16 MiB from it (port 5002); the sha256 on both ends must match.
# shellcheck source=tests/e2e/lib.sh
. "$E2E_LIB"
# shellcheck source=tests/e2e/cases/net.inc
. "$E2E_CASES/net.inc"
bytes=16777216
tap_up kiln-nt0 10.77.0.1/24
transfer_start "$bytes"
run_kiln net-transfer.json
expect_console "KILN-E2E: net-up"
transfer_check "$bytes"
expect_end poweroff
pass
